#!/usr/bin/env bash
# tools/redis.sh start|stop|env: a throwaway Redis for tests, on
# 127.0.0.1:${SLUICE_TEST_REDIS_PORT:-56379}, daemonized, with no persistence.
# Installs redis-server from Debian when it is missing (needs root).
set -euo pipefail

port="${SLUICE_TEST_REDIS_PORT:-56379}"
dir="${SLUICE_TEST_REDIS_DIR:-/tmp/sluice-redis-$port}"
pidfile="$dir/redis.pid"

install() {
	command -v redis-server >/dev/null && return
	echo "redis.sh: installing redis-server from Debian" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq redis-server >/dev/null
}

ping() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

start() {
	install
	if ping; then
		echo "redis.sh: already running on 127.0.0.1:$port" >&2
		return
	fi
	mkdir -p "$dir"
	redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
		--pidfile "$pidfile" --dir "$dir" --logfile "$dir/redis.log" \
		--save '' --appendonly no --maxmemory 256mb --maxmemory-policy allkeys-lru
	for _ in $(seq 100); do
		ping && { echo "redis.sh: ready on 127.0.0.1:$port" >&2; return; }
		sleep 0.1
	done
	echo "redis.sh: redis did not answer PING within 10s; see $dir/redis.log" >&2
	exit 1
}

stop() {
	if [ -f "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		rm -f "$pidfile"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) echo "export SLUICE_TEST_REDIS=127.0.0.1:$port" ;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
