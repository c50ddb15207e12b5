#!/usr/bin/env bash
# cassandra.sh runs a single-node Apache Cassandra on 127.0.0.1 for Sluice's
# tests, without Docker or a tarball: Maven fetches the runtime classpath of
# org.apache.cassandra:cassandra-all (pom.xml next to this script) and this
# script writes cassandra.yaml, logback.xml and the JVM options itself.
#
#   cassandra.sh start   fetch jars (cached), start the node, wait for CQL
#   cassandra.sh stop    stop the node (SIGTERM, then SIGKILL) and delete its data
#   cassandra.sh env     print the export line the Go tests read
#   cassandra.sh status  say whether the node answers CQL
#
# Environment (all optional):
#   SLUICE_TEST_CASSANDRA_HOME          cache and state dir (default ~/.cache/sluice-cassandra)
#   SLUICE_TEST_CASSANDRA_PORT          CQL native port (default 59042)
#   SLUICE_TEST_CASSANDRA_STORAGE_PORT  inter-node port (default CQL port + 1)
#   SLUICE_TEST_CASSANDRA_VERSION       cassandra-all version (default 5.0.8)
#   SLUICE_TEST_CASSANDRA_HEAP          max heap (default 1g; initial heap is 512m)
#   SLUICE_TEST_CASSANDRA_JAVA          java 11 or 17 binary (default Debian's Java 17)
#   SLUICE_TEST_CASSANDRA_TIMEOUT       seconds to wait for CQL (default 180)
# Every start and stop is idempotent: start on a running node only checks it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${SLUICE_TEST_CASSANDRA_HOME:-$HOME/.cache/sluice-cassandra}
port=${SLUICE_TEST_CASSANDRA_PORT:-59042}
storage_port=${SLUICE_TEST_CASSANDRA_STORAGE_PORT:-$((port + 1))}
version=${SLUICE_TEST_CASSANDRA_VERSION:-5.0.8}
heap=${SLUICE_TEST_CASSANDRA_HEAP:-1g}
# Debian's Java 17 on any architecture (java-17-openjdk-amd64, -arm64, ...),
# else the java on PATH (Cassandra 5 runs on Java 11 or 17).
default_java() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/java-11-openjdk-*/bin/java; do
    [ -x "$j" ] && { echo "$j"; return; }
  done
  command -v java || echo java
}
java=${SLUICE_TEST_CASSANDRA_JAVA:-$(default_java)}
timeout=${SLUICE_TEST_CASSANDRA_TIMEOUT:-180}
lib=$home/lib-$version
state=$home/node-$port

log() { printf 'cassandra.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# fetch_jars copies cassandra-all and its runtime dependencies to $lib once.
fetch_jars() {
	[[ -f $lib/.complete ]] && return
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
	log "fetching cassandra-all $version and its dependencies with Maven into $lib"
	local t0=$SECONDS
	rm -rf "$lib" "$lib.tmp"
	mkdir -p "$home"
	if ! mvn -B -Dstyle.color=never -f "$here/pom.xml" -Dcassandra.version="$version" -Dlib.dir="$lib.tmp" \
		package >"$home/maven.log" 2>&1; then
		tail -30 "$home/maven.log" >&2
		die "maven failed to fetch org.apache.cassandra:cassandra-all:$version; full log: $home/maven.log"
	fi
	rm -rf "$here/target" # the pom-packaged build leaves an empty target dir behind
	mv "$lib.tmp" "$lib"
	touch "$lib/.complete"
	log "jars fetched in $((SECONDS - t0))s ($(du -sh "$lib" | cut -f1))"
}

# write_conf writes cassandra.yaml, logback.xml and jvm.args into $state/conf.
write_conf() {
	local conf=$state/conf data=$1
	mkdir -p "$conf"
	cat >"$conf/cassandra.yaml" <<YAML
cluster_name: sluice-test
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters: [{seeds: "127.0.0.1:$storage_port"}]
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $storage_port
native_transport_port: $port
start_native_transport: true
data_file_directories: [$data/data]
commitlog_directory: $data/commitlog
saved_caches_directory: $data/saved_caches
hints_directory: $data/hints
cdc_raw_directory: $data/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
commitlog_total_space: 256MiB
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
file_cache_size: 32MiB
concurrent_reads: 4
concurrent_writes: 4
concurrent_counter_writes: 4
auto_snapshot: false
snapshot_before_compaction: false
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
YAML
	cat >"$conf/logback.xml" <<'XML'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
XML
	# The union of Cassandra 5.0's conf/jvm17-server.options module flags.
	cat >"$conf/jvm.args" <<'ARGS'
-Djdk.attach.allowAttachSelf=true
-Dio.netty.tryReflectionSetAccessible=true
-Dio.netty.allocator.useCacheForAllThreads=true
-Dio.netty.allocator.maxOrder=11
--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
--add-exports java.base/jdk.internal.ref=ALL-UNNAMED
--add-exports java.base/sun.nio.ch=ALL-UNNAMED
--add-exports java.base/java.lang.ref=ALL-UNNAMED
--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
--add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
--add-exports java.sql/java.sql=ALL-UNNAMED
--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
--add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
--add-opens java.base/java.lang.module=ALL-UNNAMED
--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
--add-opens java.base/jdk.internal.math=ALL-UNNAMED
--add-opens java.base/jdk.internal.module=ALL-UNNAMED
--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
--add-opens java.base/sun.nio.ch=ALL-UNNAMED
--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
--add-opens java.base/java.io=ALL-UNNAMED
--add-opens java.base/java.nio=ALL-UNNAMED
--add-opens java.base/java.lang.reflect=ALL-UNNAMED
--add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
--add-opens java.base/java.lang=ALL-UNNAMED
--add-opens java.base/java.util=ALL-UNNAMED
--add-opens java.base/java.util.concurrent=ALL-UNNAMED
--add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED
ARGS
}

pid_alive() { [[ -f $state/pid ]] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

# cql_ready sends a native-protocol v4 OPTIONS frame and expects SUPPORTED
# (response version 0x84, opcode 0x06) back: the node answers CQL.
cql_ready() {
	local reply
	reply=$(timeout 3 bash -c '
		exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
		printf "\x04\x00\x00\x01\x05\x00\x00\x00\x00" >&3
		head -c 5 <&3 | od -An -tx1' 2>/dev/null) || return 1
	[[ $(echo $reply) == "84 00 00 01 06" ]]
}

rss() { awk '/VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

start() {
	if pid_alive && cql_ready; then
		log "already running (pid $(cat "$state/pid"), CQL on 127.0.0.1:$port)"
		return
	fi
	pid_alive && stop
	cql_ready && die "port $port answers CQL but is not ours: set SLUICE_TEST_CASSANDRA_PORT"
	[[ -x $java ]] || die "java not found at $java: install openjdk-17-jre-headless or set SLUICE_TEST_CASSANDRA_JAVA"
	fetch_jars
	mkdir -p "$state"
	local data
	data=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cassandra-$port.XXXXXX")
	echo "$data" >"$state/data"
	mkdir -p "$data/data" "$data/commitlog" "$data/saved_caches" "$data/hints" "$data/cdc_raw" \
		"$data/logs" "$data/triggers" "$data/tmp"
	write_conf "$data"
	local agent=()
	local jamm
	jamm=$(ls "$lib"/jamm-*.jar 2>/dev/null | head -1 || true)
	[[ -n $jamm ]] && agent=(-javaagent:"$jamm")
	local t0
	t0=$(date +%s.%N)
	# setsid detaches the node from the caller's process group and terminal.
	setsid "$java" @"$state/conf/jvm.args" \
		-Xms512m -Xmx"$heap" -Xss256k -XX:+UseG1GC \
		-XX:MaxDirectMemorySize=256m -XX:+ExitOnOutOfMemoryError \
		-Djava.net.preferIPv4Stack=true -Djava.security.manager=allow \
		-Dchronicle.analytics.disable=true "${agent[@]}" \
		-Dcassandra-foreground=yes \
		-Dcassandra.config="file://$state/conf/cassandra.yaml" \
		-Dcassandra.storagedir="$data" -Dcassandra.logdir="$data/logs" \
		-Dlogback.configurationFile="file://$state/conf/logback.xml" \
		-Dcassandra.triggers_dir="$data/triggers" -Djna.tmpdir="$data/tmp" -Djava.io.tmpdir="$data/tmp" \
		-Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.superuser_setup_delay_ms=0 \
		-cp "$state/conf:$lib/*" \
		org.apache.cassandra.service.CassandraDaemon \
		>"$state/cassandra.log" 2>&1 </dev/null &
	echo $! >"$state/pid"
	log "started pid $! (log $state/cassandra.log, data $data); waiting up to ${timeout}s for CQL on 127.0.0.1:$port"
	local deadline=$((SECONDS + timeout))
	until cql_ready; do
		if ! pid_alive; then
			tail -40 "$state/cassandra.log" >&2
			die "cassandra exited during start-up; full log: $state/cassandra.log"
		fi
		if grep -q 'Failed to bind port\|Address already in use' "$state/cassandra.log"; then
			tail -20 "$state/cassandra.log" >&2
			die "a port is taken: set SLUICE_TEST_CASSANDRA_PORT / SLUICE_TEST_CASSANDRA_STORAGE_PORT"
		fi
		((SECONDS < deadline)) || { tail -40 "$state/cassandra.log" >&2; stop; die "no CQL answer after ${timeout}s"; }
		sleep 0.5
	done
	local pid
	pid=$(cat "$state/pid")
	log "CQL ready on 127.0.0.1:$port after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s, RSS $(rss "$pid")"
}

stop() {
	if pid_alive; then
		local pid
		pid=$(cat "$state/pid")
		kill -TERM "$pid"
		for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && { log "no exit after 20s, sending SIGKILL"; kill -KILL "$pid"; }
		log "stopped pid $pid"
	else
		log "not running"
	fi
	if [[ -f $state/data ]]; then
		rm -rf "$(cat "$state/data")"
		rm -f "$state/data"
	fi
	rm -f "$state/pid"
}

case ${1:-} in
start) start ;;
stop) stop ;;
env) echo "export SLUICE_TEST_CASSANDRA=127.0.0.1:$port" ;;
status) if cql_ready; then log "CQL answers on 127.0.0.1:$port"; else log "no CQL on 127.0.0.1:$port"; exit 1; fi ;;
*) die "usage: cassandra.sh start|stop|env|status" ;;
esac
