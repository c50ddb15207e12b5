#!/usr/bin/env bash
# Checks the Admin API against its own OpenAPI description with schemathesis
# (a real client from PyPI): starts one sluice node on a temporary SQLite
# file and free loopback ports, then lets schemathesis generate requests from
# GET /openapi.json and fail on any 5xx, any answer that does not match the
# documented schema or content type. Bounded for CI: a few examples per
# operation and a time budget.
#
#   bash tools/schemathesis.sh            # defaults below
#   ST_MAX_EXAMPLES=50 ST_MAX_TIME=600 bash tools/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=${ST_VERSION:-4.32.5}
ST_VENV=${ST_VENV:-${TMPDIR:-/tmp}/sluice-schemathesis-venv}
ST_MAX_EXAMPLES=${ST_MAX_EXAMPLES:-8}
ST_MAX_TIME=${ST_MAX_TIME:-100}
ST_SEED=${ST_SEED:-$RANDOM}
TOKEN=schemathesis-admin-token

if [ ! -x "$ST_VENV/bin/schemathesis" ] || ! "$ST_VENV/bin/schemathesis" --version | grep -q "$ST_VERSION"; then
	python3 -m venv "$ST_VENV"
	"$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-schemathesis.XXXXXX")
node_pid=
cleanup() {
	if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sluice" ./cmd/sluice
read -r proxy admin status < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*("127.0.0.1:%d" % s.getsockname()[1] for s in ss))')

SLUICE_PROXY_LISTEN=$proxy SLUICE_ADMIN_LISTEN=$admin SLUICE_STATUS_LISTEN=$status \
	SLUICE_SQLITE_PATH="$work/sluice.db" SLUICE_ADMIN_TOKEN=$TOKEN SLUICE_CACHE_BACKEND=lru \
	"$work/sluice" run >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 300); do
	curl -fsS "http://$status/status/ready" >/dev/null 2>&1 && break
	kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; echo "schemathesis: node exited" >&2; exit 1; }
	sleep 0.1
done

echo "schemathesis $ST_VERSION against http://$admin (seed $ST_SEED, $ST_MAX_EXAMPLES examples, ${ST_MAX_TIME}s)"
rc=0
# One worker: with two, CPython 3.11 sometimes fails inside hypothesis with "SystemError: AST
# constructor recursion depth mismatch" (its AST recursion guard is not thread-safe), a tool
# failure that says nothing about the API.
"$ST_VENV/bin/schemathesis" run "http://$admin/openapi.json" \
	-H "Authorization: Bearer $TOKEN" \
	--checks not_a_server_error,response_schema_conformance,content_type_conformance \
	--phases examples,coverage,fuzzing \
	--max-examples "$ST_MAX_EXAMPLES" --max-time "$ST_MAX_TIME" --seed "$ST_SEED" \
	--workers 1 --generation-database none --no-color --request-timeout 10 \
	--wait-for-schema 10 || rc=$?

if grep -E 'panic|level=ERROR' "$work/node.log"; then
	echo "schemathesis: the node logged errors (above)" >&2
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	echo "schemathesis: FAILED (seed $ST_SEED); node log tail:" >&2
	tail -n 50 "$work/node.log" >&2
fi
exit "$rc"
