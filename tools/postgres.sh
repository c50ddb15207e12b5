#!/usr/bin/env bash
# postgres.sh starts a throwaway PostgreSQL cluster for Sluice's tests.
#
#   bash tools/postgres.sh start   # install (Debian) if missing, initdb, start, create db+user
#   bash tools/postgres.sh stop    # stop the cluster (data stays in $SLUICE_TEST_PG_DIR)
#   bash tools/postgres.sh env     # print: export SLUICE_TEST_PG_DSN=...
#
# Environment: SLUICE_TEST_PG_DIR (default /tmp/sluice-pg), SLUICE_TEST_PG_PORT (55432).
# The cluster listens on 127.0.0.1 only, with trust auth: never use it for
# anything but tests. start is idempotent.
set -euo pipefail

DIR=${SLUICE_TEST_PG_DIR:-/tmp/sluice-pg}
PORT=${SLUICE_TEST_PG_PORT:-55432}
DATA=$DIR/data
LOG=$DIR/postgres.log
RUN_USER=postgres

pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_pg() {
	if pg_bindir >/dev/null; then return; fi
	echo "postgres.sh: installing postgresql from apt" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql >/dev/null
	pg_bindir >/dev/null || { echo "postgres.sh: postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2; exit 1; }
}

# as runs a command as the unprivileged cluster owner (postgres refuses root).
as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$RUN_USER" -- "$@"
	else
		"$@"
	fi
}

psql_admin() {
	as "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

is_ready() {
	"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1
}

start() {
	install_pg
	BIN=$(pg_bindir)
	if [ "$(id -u)" != 0 ]; then RUN_USER=$(id -un); fi
	mkdir -p "$DIR"
	if [ "$(id -u)" = 0 ]; then chown "$RUN_USER": "$DIR"; fi
	if [ ! -f "$DATA/PG_VERSION" ]; then
		as "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 ||
			{ cat "$DIR/initdb.log" >&2; exit 1; }
	fi
	if ! as "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
		as "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			start >/dev/null || { tail -n 30 "$LOG" >&2; exit 1; }
	fi
	for _ in $(seq 1 60); do is_ready && break; sleep 0.5; done
	is_ready || { echo "postgres.sh: server on 127.0.0.1:$PORT not ready; see $LOG" >&2; exit 1; }
	if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname='sluice'")" != 1 ]; then
		psql_admin -c "CREATE ROLE sluice LOGIN SUPERUSER"
	fi
	if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname='sluice'")" != 1 ]; then
		psql_admin -c "CREATE DATABASE sluice OWNER sluice"
	fi
	echo "postgres.sh: ready on 127.0.0.1:$PORT (data $DATA)" >&2
}

stop() {
	BIN=$(pg_bindir) || { echo "postgres.sh: postgresql not installed" >&2; return 0; }
	if [ "$(id -u)" != 0 ]; then RUN_USER=$(id -un); fi
	if [ -f "$DATA/PG_VERSION" ] && as "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
		as "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
	fi
	echo "postgres.sh: stopped" >&2
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) echo "export SLUICE_TEST_PG_DSN=postgres://sluice@127.0.0.1:$PORT/sluice?sslmode=disable" ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
