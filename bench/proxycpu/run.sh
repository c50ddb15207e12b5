#!/usr/bin/env bash
# Proxy CPU per request, side by side in one run on loopback: nginx, the bare
# Go reference proxies of bench/bareproxy (fasthttp and httputil), and sluice
# (a route without plugins; one with key-auth + rate-limiting + metrics).
#
# Usage (from the repository root):
#   bench/proxycpu/run.sh                          # MODE=pinned REPS=3 DUR=10 CONNS=50, every target
#   MODE=free REPS=5 bench/proxycpu/run.sh
#   TARGETS="nginx fasthttp plain" bench/proxycpu/run.sh   # some targets, in this order
#   GW_BIN=bin/sluice bench/proxycpu/run.sh        # measure an existing binary
#   SRC=/tmp/snapshot bench/proxycpu/run.sh        # build sluice from another tree
#   GW_BIN2=/tmp/sluice-old bench/proxycpu/run.sh  # also measure a second build (targets plain2, auth2;
#                                                  # TARGETS2 sets the list then)
#
# Targets (TARGETS, default "nginx fasthttp httputil plain auth"):
#   nginx     nginx (Debian nginx-light) as a reverse proxy with upstream keepalive
#             (perf-scripts/nginx.conf, generated into the temp dir); skipped with a
#             note when nginx is not installed
#   nginx-kong  the same nginx, location /kong/, sending upstream the headers Kong's
#             nginx template sets (X-Forwarded-*, X-Real-IP) plus Via: the same
#             header work Sluice does (not in the default list)
#   fasthttp  `sluice bench bareproxy -engine fasthttp` (bench/bareproxy, fasthttp.HostClient)
#   httputil  `sluice bench bareproxy -engine httputil` (bench/bareproxy, httputil.ReverseProxy)
#   plain     sluice, /plain: a route without plugins
#   auth      sluice, /auth: key-auth + rate-limiting (local policy, limits far above the
#             load) for a consumer created through the Admin API
#   plain2, auth2  the same on GW_BIN2
# The reference proxies are built from this repository's tree, whatever GW_BIN,
# GW_BIN2 and SRC are.
#
# MODE=pinned: the proxy under test alone on CPU1 (GOMAXPROCS=1, one nginx
#   worker); wrk -t1 and the upstream on CPU0 (perf.md §0's method).
# MODE=free:   nothing pinned, GOMAXPROCS=2 and two nginx workers.
#
# One sluice node per build (temp SQLite, metrics on: every request goes
# through the OnResponse hook) serves both routes to the same upstream.
# Targets are alternated inside each rep. CPU µs/req = utime+stime of the
# proxy process (nginx: master and workers) from /proc/<pid>/stat over the
# wrk run / requests served.
#
# Output: one TSV row per run; medians per target with the CPU ratio to
# nginx's median (vs_nginx); a markdown table `| target | CPU µs/request |
# vs nginx |` for bench/RESULTS.md. Needs wrk, curl, go, and taskset
# (util-linux) for MODE=pinned.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${SRC:-$ROOT} # tree to build sluice from (e.g. a `git archive` snapshot)
MODE=${MODE:-pinned}; REPS=${REPS:-3}; DUR=${DUR:-10}; CONNS=${CONNS:-50}
if [ -n "${GW_BIN2:-}" ]; then
  TARGETS=${TARGETS:-${TARGETS2:-"nginx fasthttp httputil plain plain2 auth auth2"}}
else
  TARGETS=${TARGETS:-"nginx fasthttp httputil plain auth"}
fi
UP=19001 HTTPUTIL=19100 FAST=19101 NGX=19150 PX=19200 ADM=19201 STS=19202 PX2=19300

die() { echo "proxycpu: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
case $MODE in
  pinned) command -v taskset >/dev/null || die "MODE=pinned needs taskset (apt-get install util-linux), or set MODE=free"
          PIN_LOAD="taskset -c 0"; PIN_PROXY="taskset -c 1"; GMP=1 ;;
  free)   PIN_LOAD=""; PIN_PROXY=""; GMP=2 ;;
  *)      die "MODE=$MODE: want pinned or free" ;;
esac
has() { [[ " $TARGETS " == *" $1 "* ]]; }
for t in $TARGETS; do
  case $t in
    nginx|nginx-kong|fasthttp|httputil|plain|auth) ;;
    plain2|auth2) [ -n "${GW_BIN2:-}" ] || die "TARGETS: $t needs GW_BIN2 (a second sluice binary)" ;;
    *) die "TARGETS: unknown target $t (valid: nginx nginx-kong fasthttp httputil plain auth plain2 auth2)" ;;
  esac
done
NOTES=()
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if has nginx && [ -z "$NGINX" ]; then
  NOTES+=("nginx skipped: not installed (apt-get install nginx-light); no vs nginx ratio")
  T=""; for t in $TARGETS; do [ "$t" = nginx ] || [ "$t" = nginx-kong ] || T+="$t "; done; TARGETS=$T
fi
[ -n "${TARGETS// /}" ] || die "TARGETS: nothing left to measure"

W=$(mktemp -d /tmp/proxycpu.XXXXXX)
chmod 755 "$W" # nginx's workers run as nobody when started by root
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

(cd "$ROOT" && go build -o "$W/upstream" ./bench/proxycpu/upstream && go build -o "$W/sluice-ref" ./cmd/sluice)
if [ -z "${GW_BIN:-}" ]; then
  (cd "$SRC" && go build -o "$W/sluice" ./cmd/sluice); GW_BIN=$W/sluice
  REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "$SRC")
  [ -z "$(git -C "$SRC" status --porcelain 2>/dev/null)" ] || REV="$REV+changes"
else
  REV=$GW_BIN
fi

GOMAXPROCS=2 $PIN_LOAD "$W/upstream" -addr 127.0.0.1:$UP & pids+=($!)

start_nginx() { # nginx in the foreground, master pid in NGXPID
  local d=$W/ngx nw=$GMP
  mkdir -p "$d/tmp"
  cat >"$d/nginx.conf" <<EOF
daemon off;
worker_processes $nw;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $d/tmp;
    proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp;
    scgi_temp_path $d/tmp;
    upstream backend {
        server 127.0.0.1:$UP;
        keepalive 256;
        keepalive_requests 100000;
    }
    server {
        listen 127.0.0.1:$NGX reuseport backlog=4096;
        keepalive_requests 100000;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
        location /kong/ {
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Forwarded-Port \$server_port;
            proxy_set_header X-Forwarded-Path \$request_uri;
            proxy_set_header X-Forwarded-Prefix /kong;
            proxy_set_header Via "1.1 kong/3.9.0";
            proxy_buffering on;
        }
    }
}
EOF
  $PIN_PROXY "$NGINX" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >"$d/nginx.out" 2>&1 & pids+=($!); NGXPID=$!
}
start_bare() { # engine port -> pid in BAREPID
  GOMAXPROCS=$GMP $PIN_PROXY "$W/sluice-ref" bench bareproxy -engine "$1" -addr 127.0.0.1:$2 \
    -upstream http://127.0.0.1:$UP 2>"$W/$1.log" & pids+=($!); BAREPID=$!
}
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
if has nginx || has nginx-kong; then start_nginx; fi
if has fasthttp; then start_bare fasthttp $FAST; FASTPID=$BAREPID; fi
if has httputil; then start_bare httputil $HTTPUTIL; HTTPUTILPID=$BAREPID; fi
if has plain || has auth; then start_node "$GW_BIN" $PX $ADM $STS "$W/sluice.db"; SLUICEPID=$NODEPID; fi
if has plain2 || has auth2; then start_node "$GW_BIN2" $PX2 19301 19302 "$W/sluice2.db"; SLUICE2PID=$NODEPID; fi

url_of() { case $1 in nginx) echo http://127.0.0.1:$NGX/ ;; nginx-kong) echo http://127.0.0.1:$NGX/kong/ ;; fasthttp) echo http://127.0.0.1:$FAST/ ;;
  httputil) echo http://127.0.0.1:$HTTPUTIL/ ;; plain) echo http://127.0.0.1:$PX/plain ;; auth) echo http://127.0.0.1:$PX/auth ;;
  plain2) echo http://127.0.0.1:$PX2/plain ;; auth2) echo http://127.0.0.1:$PX2/auth ;; esac; }
pids_of() { # the processes whose CPU a target's requests cost
  case $1 in nginx|nginx-kong) echo "$NGXPID" $(pgrep -P "$NGXPID") ;; fasthttp) echo "$FASTPID" ;; httputil) echo "$HTTPUTILPID" ;;
  *2) echo "$SLUICE2PID" ;; *) echo "$SLUICEPID" ;; esac; }
hdr_of() { case $1 in auth*) echo "apikey: bench-key" ;; *) echo "X-Bench: 1" ;; esac; }
label_of() { # the target's name in the markdown table
  case $1 in
    nginx) local pkg=""
           dpkg-query -W -f '${Status}' nginx-light 2>/dev/null | grep -q "ok installed" && pkg=" (Debian \`nginx-light\`)"
           echo "nginx $("$NGINX" -v 2>&1 | sed 's#.*/##')$pkg, $GMP worker(s)" ;;
    nginx-kong) echo "the same nginx sending Kong's upstream headers (X-Forwarded-*, X-Real-IP, Via)" ;;
    fasthttp) echo "bare fasthttp proxy (\`bench/bareproxy\`, fasthttp $(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/valyala/fasthttp), \`HostClient\`)" ;;
    httputil) echo "bare \`httputil.ReverseProxy\` (\`bench/bareproxy\`)" ;;
    plain) echo "Sluice $REV, route without plugins" ;;
    auth) echo "Sluice $REV, key-auth + rate-limiting (local) + metrics" ;;
    plain2) echo "Sluice $GW_BIN2, route without plugins" ;;
    auth2) echo "Sluice $GW_BIN2, key-auth + rate-limiting (local) + metrics" ;;
  esac; }
for t in $TARGETS; do # sanity: every target answers 200 through the proxy (nginx and Go start in the background)
  for _ in $(seq 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "$(hdr_of $t)" "$(url_of $t)" || true)
    [ "$code" = 200 ] && break; sleep 0.1
  done
  [ "$code" = 200 ] || { echo "target $t answered $code" >&2; cat "$W"/*.log "$W"/ngx/error.log 2>/dev/null >&2; exit 1; }
done
if has auth; then
  code=$(curl -s -o /dev/null -w '%{http_code}' "$(url_of auth)")
  [ "$code" = 401 ] || die "auth route without a key answered $code, want 401"
fi

ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $s; }
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
MACHINE="$(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2);print $2}'), nproc $(nproc)"
echo "# $MACHINE, mode $MODE, wrk -t1 -c$CONNS -d${DUR}s"
for n in "${NOTES[@]:-}"; do [ -n "$n" ] && echo "# note: $n"; done
printf "mode\ttarget\trep\trps\tp50_us\tp99_us\tcpu_us_per_req\tbusy_before%%(foreign)\n" | tee "$W/rows.tsv"
for rep in $(seq 1 "$REPS"); do
  for t in $TARGETS; do
    bg=$(quiet); url=$(url_of $t); ps=$(pids_of $t)
    $PIN_LOAD wrk -t1 -c$CONNS -d2s -H "$(hdr_of $t)" "$url" >/dev/null 2>&1 # warm-up
    c0=$(ticks $ps)
    out=$($PIN_LOAD wrk -t1 -c$CONNS -d${DUR}s --latency -H "$(hdr_of $t)" "$url")
    c1=$(ticks $ps)
    grep -q "Non-2xx" <<<"$out" && echo "WARN $t: non-2xx responses" >&2
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); n=$(awk '/requests in/{print $1}' <<<"$out")
    p50=$(to_us "$(awk '$1=="50%"{print $2}' <<<"$out")"); p99=$(to_us "$(awk '$1=="99%"{print $2}' <<<"$out")")
    cpu=$(awk -v d=$((c1-c0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", d/hz*1e6/n}')
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$MODE" "$t" "$rep" "$rps" "$p50" "$p99" "$cpu" "$bg" | tee -a "$W/rows.tsv"
  done
done

for t in $TARGETS; do # medians: target rps p50_us p99_us cpu_us_per_req
  awk -F'\t' -v t="$t" '$2==t' "$W/rows.tsv" | awk -F'\t' -v t="$t" '
    { rps[NR]=$4; p50[NR]=$5; p99[NR]=$6; cpu[NR]=$7 }
    function med(a, n,   i,j,x) { for(i=2;i<=n;i++){x=a[i];for(j=i-1;j>0&&a[j]>x;j--)a[j+1]=a[j];a[j+1]=x}
      return (n%2)?a[(n+1)/2]:(a[n/2]+a[n/2+1])/2 }
    END { printf "%s\t%.0f\t%.0f\t%.0f\t%.2f\n", t, med(rps,NR), med(p50,NR), med(p99,NR), med(cpu,NR) }'
done >"$W/med.tsv"
NGXCPU=$(awk -F'\t' '$1=="nginx"{print $5}' "$W/med.tsv")
ratio() { awk -v c="$1" -v n="$NGXCPU" 'BEGIN{ if (n > 0) printf "%.2f", c/n; else print "-" }'; }
echo "# medians of $REPS runs; vs_nginx = cpu_us_per_req / nginx's median"
printf "target\trps\tp50_us\tp99_us\tcpu_us_per_req\tvs_nginx\n"
while IFS=$'\t' read -r t rps p50 p99 cpu; do
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$t" "$rps" "$p50" "$p99" "$cpu" "$(ratio "$cpu")"
done <"$W/med.tsv"
echo
echo "# for bench/RESULTS.md ($(date -u '+%Y-%m-%d %H:%M UTC'), $MACHINE, mode $MODE, wrk -t1 -c$CONNS, medians of $REPS runs of ${DUR}s)"
echo "| target | CPU µs/request | vs nginx |"
echo "|---|---|---|"
sort -t$'\t' -k5,5g "$W/med.tsv" | while IFS=$'\t' read -r t rps p50 p99 cpu; do
  printf "| %s | %.1f | %s |\n" "$(label_of "$t")" "$cpu" "$(ratio "$cpu")"
done
