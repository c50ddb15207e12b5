#!/usr/bin/env bash
# Proxy CPU per request: sluice (no plugins; key-auth + rate-limiting) vs a
# bare httputil.ReverseProxy, side by side in one run, on loopback.
#
# Usage (from the repository root):
#   bench/proxycpu/run.sh                      # MODE=pinned REPS=3 DUR=10 CONNS=50
#   MODE=free REPS=5 bench/proxycpu/run.sh
#   GW_BIN=bin/sluice bench/proxycpu/run.sh   # measure an existing binary
#   SRC=/tmp/snapshot bench/proxycpu/run.sh        # build sluice from another tree
#   GW_BIN2=/tmp/sluice-old bench/proxycpu/run.sh  # also measure a second build (targets plain2, auth2)
#
# MODE=pinned: the proxy under test alone on CPU1 with GOMAXPROCS=1; wrk and
#   the upstream on CPU0 (the perf notes' method; bare Go proxy = 27.8 us/req).
# MODE=free:   nothing pinned, GOMAXPROCS=2 everywhere.
#
# One sluice node (temp SQLite, metrics on: every request goes through the
# OnResponse hook) serves two routes to the same upstream: /plain without
# plugins and /auth with key-auth + rate-limiting (local policy, limits far
# above the load) for a consumer created through the Admin API. Targets are
# alternated inside each rep. CPU us/req = utime+stime of the proxy process
# from /proc/<pid>/stat over the wrk run / requests served. Output: one TSV
# row per run, then medians per target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${SRC:-$ROOT} # tree to build sluice from (e.g. a `git archive` snapshot)
MODE=${MODE:-pinned}; REPS=${REPS:-3}; DUR=${DUR:-10}; CONNS=${CONNS:-50}
TARGETS=${TARGETS:-"bare plain auth"}
W=$(mktemp -d /tmp/proxycpu.XXXXXX)
UP=19001 BARE=19100 PX=19200 ADM=19201 STS=19202
if [ "$MODE" = pinned ]; then
  PIN_LOAD="taskset -c 0"; PIN_PROXY="taskset -c 1"; GMP=1
else
  PIN_LOAD=""; PIN_PROXY=""; GMP=2
fi

pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

# The reference proxy is `sluice bench bareproxy` (bench/bareproxy) from this
# repository's tree, whatever GW_BIN and GW_BIN2 are.
(cd "$ROOT" && go build -o "$W/upstream" ./bench/proxycpu/upstream && go build -o "$W/sluice-ref" ./cmd/sluice)
if [ -z "${GW_BIN:-}" ]; then
  (cd "$SRC" && go build -o "$W/sluice" ./cmd/sluice); GW_BIN=$W/sluice
fi

GOMAXPROCS=2 $PIN_LOAD "$W/upstream" -addr 127.0.0.1:$UP & pids+=($!)
GOMAXPROCS=$GMP $PIN_PROXY "$W/sluice-ref" bench bareproxy -addr 127.0.0.1:$BARE -upstream http://127.0.0.1:$UP 2>"$W/bare.log" & pids+=($!); BAREPID=$!
start_node() { # bin proxy_port admin_port status_port dbfile -> configured node, pid in NODEPID
  env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
    GOMAXPROCS=$GMP SLUICE_SQLITE_PATH="$5" SLUICE_LOG_LEVEL=warn \
    SLUICE_PROXY_LISTEN=127.0.0.1:$2 SLUICE_ADMIN_LISTEN=127.0.0.1:$3 SLUICE_STATUS_LISTEN=127.0.0.1:$4 \
    $PIN_PROXY "$1" run >"$5.log" 2>&1 & pids+=($!); NODEPID=$!
  for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$4/status && break; sleep 0.1; done
  adm() { # method path json
    curl -sf -X "$1" "http://127.0.0.1:$ADMP$2" -H 'Content-Type: application/json' -d "$3" >/dev/null ||
      { echo "admin $1 $2 failed" >&2; cat "$DB.log" >&2; exit 1; }; }
  ADMP=$3 DB=$5
  adm POST /services '{"name":"up","url":"http://127.0.0.1:'$UP'"}'
  adm POST /services/up/routes '{"name":"plain","paths":["/plain"]}'
  adm POST /services/up/routes '{"name":"auth","paths":["/auth"]}'
  adm POST /consumers '{"username":"bench"}'
  adm POST /consumers/bench/key-auth '{"key":"bench-key"}'
  adm POST /routes/auth/plugins '{"name":"key-auth"}'
  adm POST /routes/auth/plugins '{"name":"rate-limiting","config":{"second":100000000,"hour":1000000000000}}'
}
start_node "$GW_BIN" $PX $ADM $STS "$W/sluice.db"; SLUICEPID=$NODEPID
if [ -n "${GW_BIN2:-}" ]; then # a second build (e.g. the baseline) measured in the same run
  start_node "$GW_BIN2" 19300 19301 19302 "$W/sluice2.db"; SLUICE2PID=$NODEPID
  TARGETS=${TARGETS2:-"bare plain plain2 auth auth2"}
fi
sleep 0.5

url_of() { case $1 in bare) echo http://127.0.0.1:$BARE/ ;; plain) echo http://127.0.0.1:$PX/plain ;; auth) echo http://127.0.0.1:$PX/auth ;;
  plain2) echo http://127.0.0.1:19300/plain ;; auth2) echo http://127.0.0.1:19300/auth ;; esac; }
pid_of() { case $1 in bare) echo $BAREPID ;; *2) echo $SLUICE2PID ;; *) echo $SLUICEPID ;; esac; }
hdr_of() { case $1 in auth*) echo "apikey: bench-key" ;; *) echo "X-Bench: 1" ;; esac; }
for t in $TARGETS; do # sanity: every target answers 200 through the proxy
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$(hdr_of $t)" "$(url_of $t)")
  [ "$code" = 200 ] || { echo "target $t answered $code" >&2; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url_of auth)")
[ "$code" = 401 ] || { echo "auth route without a key answered $code, want 401" >&2; exit 1; }

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
to_us() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v+0}
  else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1e6} }'; }
busy() { local a b; a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN{split(a,x," ");split(b,y," ");t=0;
    for(i=2;i<=9;i++)t+=y[i]-x[i]; idle=(y[5]-x[5])+(y[6]-x[6]); printf "%.0f", (t>0)?100*(t-idle)/t:0}'; }
QUIET_MAX=${QUIET_MAX:-10}; QUIET_WAIT=${QUIET_WAIT:-120}
quiet() { # wait until foreign load is <= QUIET_MAX% (other tenants), at most QUIET_WAIT s
  local b t0=$SECONDS; b=$(busy)
  while [ "$b" -gt "$QUIET_MAX" ] && [ $((SECONDS - t0)) -lt "$QUIET_WAIT" ]; do sleep 2; b=$(busy); done
  echo "$b"; }
HZ=$(getconf CLK_TCK)
echo "# $(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2);print $2}'), nproc $(nproc), mode $MODE, wrk -t1 -c$CONNS -d${DUR}s"
printf "mode\ttarget\trep\trps\tp50_us\tp99_us\tcpu_us_per_req\tbusy_before%%(foreign)\n" | tee "$W/rows.tsv"
for rep in $(seq 1 "$REPS"); do
  for t in $TARGETS; do
    bg=$(quiet); url=$(url_of $t); pid=$(pid_of $t)
    $PIN_LOAD wrk -t1 -c$CONNS -d2s -H "$(hdr_of $t)" "$url" >/dev/null 2>&1 # warm-up
    c0=$(ticks $pid)
    out=$($PIN_LOAD wrk -t1 -c$CONNS -d${DUR}s --latency -H "$(hdr_of $t)" "$url")
    c1=$(ticks $pid)
    grep -q "Non-2xx" <<<"$out" && echo "WARN $t: non-2xx responses" >&2
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
    p50=$(to_us "$(awk '$1=="50%"{print $2}' <<<"$out")"); p99=$(to_us "$(awk '$1=="99%"{print $2}' <<<"$out")")
    cpu=$(awk -v d=$((c1-c0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", d/hz*1e6/n}')
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$MODE" "$t" "$rep" "$rps" "$p50" "$p99" "$cpu" "$bg" | tee -a "$W/rows.tsv"
  done
done
echo "# medians"
for t in $TARGETS; do
  awk -F'\t' -v t="$t" '$2==t' "$W/rows.tsv" | awk -F'\t' -v t="$t" '
    { rps[NR]=$4; p50[NR]=$5; p99[NR]=$6; cpu[NR]=$7 }
    function med(a, n,   i,j,x) { for(i=2;i<=n;i++){x=a[i];for(j=i-1;j>0&&a[j]>x;j--)a[j+1]=a[j];a[j+1]=x}
      return (n%2)?a[(n+1)/2]:(a[n/2]+a[n/2+1])/2 }
    END { printf "%s\trps %.0f\tp50 %.0f us\tp99 %.0f us\tcpu %.2f us/req\n", t, med(rps,NR), med(p50,NR), med(p99,NR), med(cpu,NR) }'
done
