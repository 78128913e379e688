#!/bin/sh
# bench/run.sh - aigw's speed benchmark (`make bench`, or `sh bench/run.sh [options]`).
# Starts, on 127.0.0.1 only, a fixed upstream (nginx answering a recorded chat completion and a recorded
# SSE stream), nginx proxy_pass in front of it (the baseline) and aigw in front of it, loads all three
# with wrk in interleaved rounds, and prints medians, ratios to nginx and a PASS/FAIL per criterion.
# Every process it starts is stopped on exit; raw results go to bench/results/<stamp>/.

# The script uses bash (arrays, /dev/tcp); `make bench` runs it with sh.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ORIG_ARGS=("$@")

# ------------------------------------------------------------------------------------------ options
ROUNDS=3; DURATION=8; LAT_DURATION=5; WARMUP=2
CONNS=64; THREADS=1; STREAMS=1000; STREAMS_DURATION=10; STREAM_PACE=4096
WORKERS=1; SUT_CPUS=0; LOAD_CPUS=1; UPSTREAM_CPUS=1; PIN=1
ONLY="direct,nginx,aigw"; AIGW_BIN=$ROOT/build/aigw; OUT=""; STRICT=0; KEEP_TMP=0; ACCESS_LOG=0
BASE_PORT=28100; WAIT_QUIET=0; QUIET_MAX=30

usage() {
  cat <<'EOF'
Usage: sh bench/run.sh [options]      (make bench BENCH_ARGS="...")

Targets (each measured in the same run, interleaved in rounds A B C A B C ...):
  direct   wrk -> upstream nginx (the reference for added latency)
  nginx    wrk -> nginx proxy_pass (keepalive upstream, buffering off) -> upstream
  aigw     wrk -> build/aigw run -> upstream (OPENAI_BASE_URL = the upstream)

Options:
  --quick               1 round, 3 s runs, 5 s many-streams run (about a minute)
  --rounds N            interleaved rounds; medians are reported (default 3)
  --duration S          seconds per throughput run (default 8)
  --lat-duration S      seconds per concurrency-1 latency run (default 5)
  --warmup S            warm-up seconds per target and mode before round 1 (default 2)
  --conns N             wrk connections for throughput runs (default 64)
  --threads N           wrk threads for throughput runs (default 1)
  --streams N           concurrent streams in the many-streams run (default 1000; 0 = skip it)
  --streams-duration S  seconds of the many-streams run (default 10)
  --stream-pace B       upstream sends the paced SSE stream at B bytes/s, so each of the streams
                        stays open for seconds like a real one (default 4096; 0 = as fast as possible)
  --workers N           aigw --workers N and nginx worker_processes N (default 1)
  --sut-cpus LIST       taskset CPU list of the proxy under test (default 0)
  --load-cpus LIST      taskset CPU list of wrk (default 1)
  --upstream-cpus LIST  taskset CPU list of the upstream nginx (default 1)
  --no-pin              no taskset
  --only LIST           comma-separated subset of direct,nginx,aigw (default all three)
  --aigw PATH           aigw binary (default build/aigw)
  --access-log          both proxies write an access log line per request (nginx to a file, aigw its
                        JSON log on stdout to a file); default: both off
  --out DIR             results folder (default bench/results/<YYYYmmdd-HHMMSS>)
  --wait-quiet S        before each run, wait up to S s for the machine to be under 30% busy (other
                        tenants compiling, testing); the busy share seen is recorded either way (default 0)
  --strict              exit 1 when a criterion fails (default: exit 0, the verdicts are printed)
  --keep-tmp            keep the temporary folder (configs, nginx logs)
  -h, --help            this text
EOF
}

die() { echo "bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ROUNDS=1; DURATION=3; LAT_DURATION=2; WARMUP=1; STREAMS_DURATION=5; shift;;
    --rounds) ROUNDS=$2; shift 2;;
    --duration) DURATION=$2; shift 2;;
    --lat-duration) LAT_DURATION=$2; shift 2;;
    --warmup) WARMUP=$2; shift 2;;
    --conns) CONNS=$2; shift 2;;
    --threads) THREADS=$2; shift 2;;
    --streams) STREAMS=$2; shift 2;;
    --streams-duration) STREAMS_DURATION=$2; shift 2;;
    --stream-pace) STREAM_PACE=$2; shift 2;;
    --workers) WORKERS=$2; shift 2;;
    --sut-cpus) SUT_CPUS=$2; shift 2;;
    --load-cpus) LOAD_CPUS=$2; shift 2;;
    --upstream-cpus) UPSTREAM_CPUS=$2; shift 2;;
    --no-pin) PIN=0; shift;;
    --only) ONLY=$2; shift 2;;
    --aigw) AIGW_BIN=$2; shift 2;;
    --access-log) ACCESS_LOG=1; shift;;
    --out) OUT=$2; shift 2;;
    --strict) STRICT=1; shift;;
    --wait-quiet) WAIT_QUIET=$2; shift 2;;
    --keep-tmp) KEEP_TMP=1; shift;;
    -h|--help) usage; exit 0;;
    *) usage >&2; die "unknown option: $1";;
  esac
done
for v in WAIT_QUIET ROUNDS DURATION LAT_DURATION WARMUP CONNS THREADS STREAMS STREAMS_DURATION STREAM_PACE WORKERS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v,,} must be a whole number (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] && [ "$DURATION" -ge 1 ] && [ "$LAT_DURATION" -ge 1 ] && [ "$WORKERS" -ge 1 ] \
  || die "--rounds, --duration, --lat-duration and --workers must be at least 1"
TARGETS=()
for t in direct nginx aigw; do [[ ",$ONLY," == *",$t,"* ]] && TARGETS+=("$t"); done
[ ${#TARGETS[@]} -gt 0 ] || die "--only selects no target (use direct,nginx,aigw)"

for tool in nginx wrk curl taskset setsid timeout ps ss awk sort; do
  command -v $tool >/dev/null 2>&1 || die "$tool not found (run 'make deps')"
done
NGINX=$(command -v nginx)
FIX=$HERE/fixtures
for f in chat_request.json chat_request_stream.json chat_response.json chat_stream.sse; do
  [ -s "$FIX/$f" ] || die "missing fixture bench/fixtures/$f"
done

OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/wrk" "$OUT/logs" "$OUT/conf" "$OUT/checks" || die "cannot create $OUT"
# nginx workers started by root run as nobody: the runtime folder must be readable by them.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/aigw-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }

# ------------------------------------------------------------------------------------------ processes
# Each server starts in its own session (setsid without fork, so its pid is the session id); CPU time
# and RSS are summed over the session (nginx master + workers), and the session is stopped as a group.
STARTED=()
SAMPLER_PID=""
start_server() {   # start_server NAME CPUS LOGFILE CMD... -> sets SERVER_PID
  local name=$1 cpus=$2 logf=$3; shift 3
  local pin=()
  [ "$PIN" = 1 ] && [ -n "$cpus" ] && pin=(taskset -c "$cpus")
  setsid "${pin[@]}" "$@" > "$logf" 2>&1 < /dev/null &
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
}
session_pids() { ps -s "$1" -o pid= 2>/dev/null; }
session_ticks() {  # utime+stime in clock ticks, summed over the session's processes (all threads)
  local p files=()
  for p in $(session_pids "$1"); do files+=("/proc/$p/stat"); done
  [ ${#files[@]} -gt 0 ] || { echo 0; return; }
  cat "${files[@]}" 2>/dev/null | awk '{sub(/^.*\) /, ""); t += $12 + $13} END {printf "%.0f\n", t}'
}
session_rss_kb() { # VmRSS summed over the session's processes, KiB
  local p files=()
  for p in $(session_pids "$1"); do files+=("/proc/$p/status"); done
  [ ${#files[@]} -gt 0 ] || { echo 0; return; }
  cat "${files[@]}" 2>/dev/null | awk '/^VmRSS:/ {t += $2} END {printf "%.0f\n", t}'
}
stop_session() {
  local sid=$1 i
  [ -n "$(session_pids "$sid")" ] || { wait "$sid" 2>/dev/null; return 0; }
  kill -TERM -- "-$sid" 2>/dev/null
  for i in $(seq 50); do [ -z "$(session_pids "$sid")" ] && break; sleep 0.1; done
  [ -n "$(session_pids "$sid")" ] && kill -KILL -- "-$sid" 2>/dev/null
  wait "$sid" 2>/dev/null
  return 0
}
cleanup() {
  local i
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  for ((i=${#STARTED[@]}-1; i>=0; i--)); do stop_session "${STARTED[i]}"; done
  STARTED=()
  if [ -d "$TMP" ]; then
    cp "$TMP"/*.log "$OUT/logs/" 2>/dev/null
    if [ "$KEEP_TMP" = 1 ]; then echo "bench: temporary folder kept: $TMP" >&2; else rm -rf "$TMP"; fi
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  ss -Htln 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$1\$"
}
NEXT_PORT=$BASE_PORT
pick_port() {      # pick_port -> prints a free port at or above NEXT_PORT (call without $(...))
  while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PICKED=$NEXT_PORT; NEXT_PORT=$((NEXT_PORT + 1))
}
wait_port() {      # wait_port PORT PID SECONDS
  local i
  for ((i=0; i<$3*10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 2
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------------ CPU use
# cpuN:busy:total:softirq:steal (ticks); busy counts user, nice, system, irq, softirq and steal
cpu_snap() { awk '/^cpu[0-9]+ / {b = $2+$3+$4+$7+$8+$9; printf "%s:%.0f:%.0f:%.0f:%.0f ", $1, b, b+$5+$6, $8, $9}' /proc/stat; }
busy_pct() {       # busy_pct SNAP1 SNAP2 CPULIST [FIELD] -> % busy (or FIELD 4 = softirq, 5 = steal) of those CPUs
  awk -v A="$1" -v B="$2" -v L="$3" -v K="${4:-2}" 'BEGIN {
    n = split(L, parts, ","); m = 0
    for (i = 1; i <= n; i++) {
      if (split(parts[i], r, "-") == 2) { for (c = r[1]; c <= r[2]; c++) want["cpu" c] = 1 }
      else want["cpu" parts[i]] = 1
    }
    n = split(A, a, " "); for (i = 1; i <= n; i++) { split(a[i], f, ":"); ab[f[1]] = f[K]; at[f[1]] = f[3] }
    n = split(B, b, " "); db = 0; dt = 0
    for (i = 1; i <= n; i++) { split(b[i], f, ":"); if (f[1] in want) { db += f[K] - ab[f[1]]; dt += f[3] - at[f[1]] } }
    if (dt > 0) printf "%.0f", 100 * db / dt; else printf "NA" }'
}
ALL_CPUS="0-$(( $(getconf _NPROCESSORS_ONLN) - 1 ))"
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------------------------------ ulimit
# 1,000 streams need about 1,000 sockets in wrk, 2,000 in a proxy and 1,000 in the upstream.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ "$STREAMS" -eq 0 ] || [ "$NOFILE" = unlimited ] || [ "$NOFILE" -ge $((STREAMS * 2 + 200)) ] \
  || die "open-file limit $NOFILE is too low for --streams $STREAMS"

# ------------------------------------------------------------------------------------------ configs
pick_port; UP_PORT=$PICKED
pick_port; NGX_PORT=$PICKED
pick_port; GW_PORT=$PICKED
pick_port; GW_ADMIN_PORT=$PICKED
UP_ORIGIN=http://127.0.0.1:$UP_PORT

cp "$FIX/chat_stream.sse" "$TMP/chat_stream.sse"; chmod 644 "$TMP/chat_stream.sse"
mkdir -p "$TMP/up-tmp" "$TMP/ngx-tmp"
RESPONSE_JSON=$(tr -d '\n' < "$FIX/chat_response.json")
case "$RESPONSE_JSON" in *"'"*|*'$'*|*'\'*) die "fixtures/chat_response.json must not contain ' \$ or \\ (it is inlined in nginx 'return')";; esac
if [ "$ACCESS_LOG" = 1 ]; then NGX_ACCESS_LOG="access_log $TMP/nginx-proxy-access.log;"; else NGX_ACCESS_LOG="access_log off;"; fi
if [ "$STREAM_PACE" -gt 0 ]; then PACE_DIRECTIVE="limit_rate $STREAM_PACE;"; else PACE_DIRECTIVE=""; fi

temp_paths() {     # temp_paths DIR -> nginx *_temp_path directives inside DIR
  local k
  for k in client_body proxy fastcgi uwsgi scgi; do printf '    %s_temp_path %s/%s;\n' "$k" "$1" "$k"; done
}

# The upstream: POST /v1/chat/completions answers the recorded completion; with header
# X-Bench-Stream: 1 the recorded SSE stream at full speed, with X-Bench-Stream: paced the same
# stream at --stream-pace bytes/s. Static files answer POST with 405, so the SSE locations turn
# that 405 into an internal GET of the same file answered with 200.
cat > "$OUT/conf/upstream.conf" <<EOF
# generated by bench/run.sh: the fixed upstream
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $TMP/upstream.pid;
error_log $TMP/upstream-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    server_tokens off;
    etag off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
    client_body_buffer_size 64k;
    client_max_body_size 1m;
    open_file_cache max=8 inactive=600s;
    open_file_cache_valid 600s;
$(temp_paths "$TMP/up-tmp")
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;

        location = /v1/chat/completions {
            if (\$http_x_bench_stream = "1") { rewrite ^ /_bench/stream last; }
            if (\$http_x_bench_stream = "paced") { rewrite ^ /_bench/stream-paced last; }
            add_header x-request-id "req_7f3c1d2e9a" always;
            add_header openai-processing-ms "412" always;
            default_type application/json;
            return 200 '$RESPONSE_JSON';
        }
        location = /_bench/stream {
            internal;
            alias $TMP/chat_stream.sse;
            default_type text/event-stream;
            add_header Cache-Control "no-cache" always;
            add_header x-request-id "req_7f3c1d2e9b" always;
            error_page 405 =200 \$uri;
        }
        location = /_bench/stream-paced {
            internal;
            alias $TMP/chat_stream.sse;
            default_type text/event-stream;
            add_header Cache-Control "no-cache" always;
            sendfile off;
            $PACE_DIRECTIVE
            error_page 405 =200 \$uri;
        }
        location / {
            default_type application/json;
            return 404 '{"error":{"message":"bench upstream: unknown path","type":"invalid_request_error","code":"not_found"}}';
        }
    }
}
EOF

# The baseline: nginx proxy_pass with upstream keepalive and buffering off. It also sets the
# Authorization header, the one change aigw makes to the request on this route.
cat > "$OUT/conf/nginx-proxy.conf" <<EOF
# generated by bench/run.sh: the nginx proxy_pass baseline
daemon off;
master_process on;
worker_processes $WORKERS;
worker_rlimit_nofile 16384;
pid $TMP/nginx-proxy.pid;
error_log $TMP/nginx-proxy-error.log warn;
events { worker_connections 8192; }
http {
    $NGX_ACCESS_LOG
    server_tokens off;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
    client_body_buffer_size 64k;
    client_max_body_size 1m;
$(temp_paths "$TMP/ngx-tmp")
    upstream bench_upstream {
        server 127.0.0.1:$UP_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:$NGX_PORT backlog=4096;
        location /v1/ {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer bench";
            proxy_buffering off;
        }
    }
}
EOF
for c in upstream nginx-proxy; do
  "$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-t.log" -c "$OUT/conf/$c.conf" > "$OUT/logs/nginx-t-$c.log" 2>&1 \
    || { cat "$OUT/logs/nginx-t-$c.log" >&2; die "generated $c.conf is invalid"; }
done

# ------------------------------------------------------------------------------------------ start
declare -A T_URL T_PID T_STATUS T_RSS_IDLE T_NOTE T_DIED
AIGW_SHA=""
log "results -> $OUT"
log "starting upstream nginx on 127.0.0.1:$UP_PORT (cpus $UPSTREAM_CPUS)"
start_server upstream "$UPSTREAM_CPUS" "$OUT/logs/upstream.out" \
  "$NGINX" -p "$TMP" -e "$TMP/upstream-error.log" -c "$OUT/conf/upstream.conf"
UP_PID=$SERVER_PID
wait_port "$UP_PORT" "$UP_PID" 10 || die "upstream nginx did not start (see $OUT/logs/upstream-error.log)"

for t in "${TARGETS[@]}"; do
  T_STATUS[$t]=ok; T_NOTE[$t]=""
  case $t in
    direct)
      T_URL[$t]=$UP_ORIGIN/v1/chat/completions; T_PID[$t]=$UP_PID ;;
    nginx)
      T_URL[$t]=http://127.0.0.1:$NGX_PORT/v1/chat/completions
      log "starting nginx proxy_pass on 127.0.0.1:$NGX_PORT (cpus $SUT_CPUS, $WORKERS worker(s))"
      start_server nginx "$SUT_CPUS" "$OUT/logs/nginx-proxy.out" \
        "$NGINX" -p "$TMP" -e "$TMP/nginx-proxy-error.log" -c "$OUT/conf/nginx-proxy.conf"
      T_PID[$t]=$SERVER_PID ;;
    aigw)
      T_URL[$t]=http://127.0.0.1:$GW_PORT/v1/chat/completions
      if [ ! -x "$AIGW_BIN" ]; then T_STATUS[$t]="not measured: $AIGW_BIN not found"; T_PID[$t]=""; continue; fi
      # bind to loopback only, and log like the nginx baseline does (off unless --access-log)
      gw_help=$("$AIGW_BIN" run --help 2>&1)
      GW_ARGS=(run --port "$GW_PORT" --admin-port "$GW_ADMIN_PORT" --workers "$WORKERS")
      [[ "$gw_help" == *--listen-address* ]] && GW_ARGS+=(--listen-address 127.0.0.1)
      [ "$ACCESS_LOG" = 0 ] && [[ "$gw_help" == *--no-access-log* ]] && GW_ARGS+=(--no-access-log)
      log "starting aigw ${GW_ARGS[*]} (cpus $SUT_CPUS)"
      # Run a snapshot of the binary: a rebuild (or `make clean`) by someone else during the run
      # cannot change or remove what is being measured, nor can a kill aimed at "build/aigw".
      cp "$AIGW_BIN" "$TMP/bench-gateway" || die "cannot copy $AIGW_BIN"
      AIGW_SHA=$(sha256sum "$TMP/bench-gateway" | cut -c1-16)
      start_server aigw "$SUT_CPUS" "$OUT/logs/aigw.log" \
        env OPENAI_API_KEY=bench OPENAI_BASE_URL="$UP_ORIGIN/v1" "$TMP/bench-gateway" "${GW_ARGS[@]}"
      T_PID[$t]=$SERVER_PID ;;
  esac
done
for t in "${TARGETS[@]}"; do
  [ "${T_STATUS[$t]}" = ok ] && [ "$t" != direct ] || continue
  port=${T_URL[$t]#http://127.0.0.1:}; port=${port%%/*}
  wait_port "$port" "${T_PID[$t]}" 20; rc=$?
  if [ $rc -ne 0 ]; then
    T_STATUS[$t]="not measured: no listener on $port ($([ $rc = 2 ] && echo exited || echo timeout); see logs/$t*)"
    stop_session "${T_PID[$t]}"
    continue
  fi
  # every listener of the target must be on loopback
  pids=$(session_pids "${T_PID[$t]}" | paste -sd'|' -)
  bad=$(ss -Htlnp 2>/dev/null | grep -E "pid=($pids)," | awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]):[0-9]+$' | sort -u | paste -sd' ' -)
  if [ -n "$bad" ]; then
    T_STATUS[$t]="not measured: listens on non-loopback $bad"; stop_session "${T_PID[$t]}"
  fi
done

# ------------------------------------------------------------------------------------------ checks
# Each target must answer both requests correctly before it is measured.
check() {          # check TARGET MODE -> rc 0 when the answer is right, else a reason on stdout
  local t=$1 mode=$2 f=$OUT/checks/$1-$2 code hdr=() body=$FIX/chat_request.json n
  if [ "$mode" = stream ]; then hdr=(-H 'X-Bench-Stream: 1' -H 'Accept: text/event-stream'); body=$FIX/chat_request_stream.json; fi
  code=$(curl -sS -m 10 -o "$f.body" -D "$f.headers" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
         "${hdr[@]}" --data-binary "@$body" "${T_URL[$t]}" 2> "$f.err")
  [ "$code" = 200 ] || { echo "HTTP ${code:-none} $(head -c 300 "$f.body" 2>/dev/null) $(head -c 200 "$f.err")"; return 1; }
  if [ "$mode" = stream ]; then
    n=$(grep -c '"chat.completion.chunk"' "$f.body")
    grep -q '^data: \[DONE\]' "$f.body" && [ "$n" -ge 20 ] && grep -q '"usage":{' "$f.body" \
      || { echo "stream incomplete: $n chunks, [DONE] $(grep -c 'DONE' "$f.body")"; return 1; }
  else
    grep -q '"chat.completion"' "$f.body" && grep -q '"usage"' "$f.body" || { echo "unexpected body: $(head -c 200 "$f.body")"; return 1; }
  fi
}
for t in "${TARGETS[@]}"; do
  [ "${T_STATUS[$t]}" = ok ] || { log "$t: ${T_STATUS[$t]}"; continue; }
  for mode in json stream; do
    if ! msg=$(check "$t" "$mode"); then
      T_STATUS[$t]="not measured: $mode check failed: $msg"; log "$t: ${T_STATUS[$t]}"
      [ "$t" = direct ] && die "the upstream itself answers wrongly"
      stop_session "${T_PID[$t]}"; break
    fi
  done
done
MEASURED=()
for t in "${TARGETS[@]}"; do [ "${T_STATUS[$t]}" = ok ] && MEASURED+=("$t"); done
[ ${#MEASURED[@]} -gt 0 ] || die "no target answers correctly"
sleep 1
for t in "${MEASURED[@]}"; do T_RSS_IDLE[$t]=$(session_rss_kb "${T_PID[$t]}"); done

# ------------------------------------------------------------------------------------------ environment
CPU_MODEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
NPROC=$(getconf _NPROCESSORS_ONLN)
AIGW_VER=$([ -x "$TMP/bench-gateway" ] && "$TMP/bench-gateway" version 2>/dev/null | head -1)
CMDLINE="make bench${ORIG_ARGS[*]:+ BENCH_ARGS=\"${ORIG_ARGS[*]}\"}"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command: $CMDLINE"
  echo "machine: $NPROC CPUs, $CPU_MODEL, kernel $(uname -r), $(awk '/^MemTotal/ {printf "%.0f MiB RAM", $2/1024}' /proc/meminfo)"
  echo "aigw: ${AIGW_VER:-?} (tree at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null), binary sha256 ${AIGW_SHA:-?}...), OPENAI_API_KEY=bench OPENAI_BASE_URL=$UP_ORIGIN/v1 aigw ${GW_ARGS[*]:-}"
  echo "access logs: $([ "$ACCESS_LOG" = 1 ] && echo "on in both proxies" || echo "off in both proxies")"
  echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "pinning: $([ "$PIN" = 1 ] && echo "proxy under test on CPU $SUT_CPUS, wrk on CPU $LOAD_CPUS, upstream nginx on CPU $UPSTREAM_CPUS" || echo none)"
  echo "load: wrk -t$THREADS -c$CONNS ${DURATION}s per throughput run, wrk -t1 -c1 ${LAT_DURATION}s per latency run, $ROUNDS round(s), ${WARMUP}s warm-up"
  echo "streams: wrk -t1 -c$STREAMS ${STREAMS_DURATION}s, upstream pace ${STREAM_PACE} B/s ($(wc -c < "$FIX/chat_stream.sse") B per stream)"
  echo "ports: upstream $UP_PORT, nginx $NGX_PORT, aigw $GW_PORT (admin $GW_ADMIN_PORT); open-file limit $NOFILE"
  for t in "${TARGETS[@]}"; do echo "target $t: ${T_STATUS[$t]} url=${T_URL[$t]} rss_idle_kb=${T_RSS_IDLE[$t]:-}"; done
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# ------------------------------------------------------------------------------------------ load
run_wrk() {        # run_wrk OUTFILE URL MODE(json|stream|paced) THREADS CONNS SECONDS TIMEOUT [check]
  local pin=() body=$FIX/chat_request.json stream=""
  [ "$PIN" = 1 ] && pin=(taskset -c "$LOAD_CPUS")
  case $3 in stream) stream=1; body=$FIX/chat_request_stream.json;; paced) stream=paced; body=$FIX/chat_request_stream.json;; esac
  BENCH_BODY=$body BENCH_STREAM=$stream BENCH_CHECK=${8:-0} timeout -k 5 $(( $6 + 60 )) "${pin[@]}" \
    wrk -t"$4" -c"$5" -d"$6"s --timeout "$7" --latency -s "$HERE/post.lua" "$2" > "$1" 2>&1
}
rfield() { sed -nE "s/.* $2=([^ ]+).*/\1/p" <<< " $1"; }

CSV=$OUT/runs.csv
echo "round,target,kind,mode,conns,rps,p50_us,p90_us,p99_us,max_us,requests,sock_errors,non2xx,bad_body,cpu_us_per_req,proxy_cpu_pct,rss_kb,upstream_cpu_pct,sut_core_busy_pct,load_core_busy_pct,box_busy_before_pct,others_on_sut_core_pct,sut_core_softirq_pct,sut_core_steal_pct" > "$CSV"
measure() {        # measure ROUND TARGET KIND(tput|c1) MODE
  local round=$1 t=$2 kind=$3 mode=$4 conns threads secs f pid k1 k2 u1 u2 s1 s2 t1 t2 bg r el
  if [ "$kind" = c1 ]; then conns=1; threads=1; secs=$LAT_DURATION; else conns=$CONNS; threads=$THREADS; secs=$DURATION; fi
  pid=${T_PID[$t]}
  if ! kill -0 "$pid" 2>/dev/null; then
    [ -n "${T_DIED[$t]:-}" ] || { T_DIED[$t]="stopped during round $round ($kind $mode); see logs/$t*"; log "$t: ${T_DIED[$t]}"; }
    return
  fi
  f=$OUT/wrk/$t-$kind-$mode-r$round.txt
  local w0=$SECONDS
  while :; do   # the servers are idle between runs: what keeps the box busy now is someone else
    s1=$(cpu_snap); sleep 0.5; s2=$(cpu_snap); bg=$(busy_pct "$s1" "$s2" "$ALL_CPUS")
    [ "$bg" = NA ] || [ "$bg" -le "$QUIET_MAX" ] || [ $((SECONDS - w0)) -ge "$WAIT_QUIET" ] && break
    sleep 1
  done
  s1=$(cpu_snap); k1=$(session_ticks "$pid"); u1=$(session_ticks "$UP_PID"); t1=$(date +%s.%N)
  run_wrk "$f" "${T_URL[$t]}" "$mode" "$threads" "$conns" "$secs" 5s
  t2=$(date +%s.%N); k2=$(session_ticks "$pid"); u2=$(session_ticks "$UP_PID"); s2=$(cpu_snap)
  r=$(grep -m1 '^RESULT' "$f") || { log "$t $kind $mode round $round: no wrk result (see $f)"; return; }
  local req rps rss se cpr pcpu ucpu sb others
  req=$(rfield "$r" requests); rps=$(rfield "$r" rps); rss=$(session_rss_kb "$pid")
  se=$(( $(rfield "$r" err_connect) + $(rfield "$r" err_read) + $(rfield "$r" err_write) + $(rfield "$r" err_timeout) ))
  el=$(awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}')
  cpr=$(awk -v d=$((k2 - k1)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN {if (n > 0) printf "%.1f", d * 1e6 / hz / n; else print "NA"}')
  pcpu=$(awk -v d=$((k2 - k1)) -v hz="$CLK_TCK" -v e="$el" 'BEGIN {printf "%.0f", 100 * d / hz / e}')
  ucpu=$(awk -v d=$((u2 - u1)) -v hz="$CLK_TCK" -v e="$el" 'BEGIN {printf "%.0f", 100 * d / hz / e}')
  # what else ran on the proxy's core during the run: its busy share minus the target's own CPU
  # (softirq work done on that core for the target's sockets is not in the process's CPU time)
  sb=$(busy_pct "$s1" "$s2" "$SUT_CPUS")
  others=$(awk -v b="$sb" -v p="$pcpu" -v d="$t" 'BEGIN {if (b == "NA") print "NA"; else if (d == "direct") print b; else {v = b - p; print (v < 0) ? 0 : v}}')
  echo "$round,$t,$kind,$mode,$conns,$rps,$(rfield "$r" p50_us),$(rfield "$r" p90_us),$(rfield "$r" p99_us),$(rfield "$r" max_us),$req,$se,$(rfield "$r" non2xx),$(rfield "$r" bad_body),$cpr,$pcpu,$rss,$ucpu,$sb,$(busy_pct "$s1" "$s2" "$LOAD_CPUS"),$bg,$others,$(busy_pct "$s1" "$s2" "$SUT_CPUS" 4),$(busy_pct "$s1" "$s2" "$SUT_CPUS" 5)" >> "$CSV"
  log "round $round/$ROUNDS $(printf '%-6s %-4s %-6s' "$t" "$kind" "$mode") $(printf '%8.0f' "$rps") req/s  p50 $(rfield "$r" p50_us)us  p99 $(rfield "$r" p99_us)us  cpu ${cpr}us/req  rss ${rss}KiB  errors $se+$(rfield "$r" non2xx)  (box busy before ${bg}%, others on CPU $SUT_CPUS ${others}%)"
}

est=$(( ${#MEASURED[@]} * (2 * WARMUP + ROUNDS * (2 * DURATION + 2 * LAT_DURATION + 3)) + (STREAMS > 0 ? ${#MEASURED[@]} * (STREAMS_DURATION + 4) : 0) ))
log "measuring ${MEASURED[*]}: about $((est / 60)) min $((est % 60)) s"
if [ "$WARMUP" -gt 0 ]; then
  for t in "${MEASURED[@]}"; do for mode in json stream; do
    run_wrk "$OUT/wrk/$t-warmup-$mode.txt" "${T_URL[$t]}" "$mode" "$THREADS" "$CONNS" "$WARMUP" 5s
  done; done
fi
for ((round=1; round<=ROUNDS; round++)); do
  for kind in tput c1; do for mode in json stream; do
    for t in "${MEASURED[@]}"; do measure "$round" "$t" "$kind" "$mode"; done
  done; done
done

# Many concurrent streams: every connection holds one paced stream open for seconds; peak RSS and
# open client connections are sampled while it runs. wrk checks that every body ends with [DONE].
SCSV=$OUT/streams.csv
echo "target,streams,requests,sock_errors,non2xx,bad_body,p50_us,p99_us,max_us,rss_before_kb,rss_peak_kb,rss_after_kb,peak_client_conns" > "$SCSV"
if [ "$STREAMS" -gt 0 ]; then
  for t in "${MEASURED[@]}"; do
    pid=${T_PID[$t]}
    kill -0 "$pid" 2>/dev/null || { [ -n "${T_DIED[$t]:-}" ] || T_DIED[$t]="stopped before the many-streams run"; continue; }
    port=${T_URL[$t]#http://127.0.0.1:}; port=${port%%/*}
    f=$OUT/wrk/$t-streams-c$STREAMS.txt; samp=$OUT/wrk/$t-streams-samples.txt
    rss0=$(session_rss_kb "$pid")
    ( while :; do
        printf '%s %s\n' "$(session_rss_kb "$pid")" "$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)"
        sleep 0.25
      done ) > "$samp" 2>/dev/null &
    SAMPLER_PID=$!
    run_wrk "$f" "${T_URL[$t]}" paced 1 "$STREAMS" "$STREAMS_DURATION" 30s 1
    kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""
    sleep 1; rss1=$(session_rss_kb "$pid")
    r=$(grep -m1 '^RESULT' "$f") || { log "$t streams: no wrk result (see $f)"; continue; }
    se=$(( $(rfield "$r" err_connect) + $(rfield "$r" err_read) + $(rfield "$r" err_write) + $(rfield "$r" err_timeout) ))
    peak=$(awk 'BEGIN {m = 0} $1 > m {m = $1} END {print m}' "$samp")
    conns=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$samp")
    echo "$t,$STREAMS,$(rfield "$r" requests),$se,$(rfield "$r" non2xx),$(rfield "$r" bad_body),$(rfield "$r" p50_us),$(rfield "$r" p99_us),$(rfield "$r" max_us),$rss0,$peak,$rss1,$conns" >> "$SCSV"
    log "streams $t: $(rfield "$r" requests) streams completed, errors socket $se non-2xx $(rfield "$r" non2xx) incomplete $(rfield "$r" bad_body), p50 $(rfield "$r" p50_us)us, peak RSS ${peak}KiB, peak client connections $conns"
  done
fi

# ------------------------------------------------------------------------------------------ summary
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() {            # col TARGET KIND MODE FIELD# -> one value per round
  awk -F, -v t="$1" -v k="$2" -v m="$3" -v c="$4" 'NR > 1 && $2 == t && $3 == k && $4 == m && $c != "" && $c != "NA" {print $c}' "$CSV"
}
med() { col "$@" | median; }
# per-round pairs: f(a, b) computed within each round, then the median over rounds
paired() {         # paired KIND MODE FIELD# TARGET_A TARGET_B EXPR(a,b)
  awk -F, -v k="$1" -v m="$2" -v c="$3" -v A="$4" -v B="$5" -v op="$6" '
    NR > 1 && $3 == k && $4 == m && ($2 == A || $2 == B) {v[$1, $2] = $c; r[$1] = 1}
    END {for (i in r) if (((i, A) in v) && ((i, B) in v)) {
      a = v[i, A]; b = v[i, B]
      if (op == "ratio") { if (b > 0) printf "%.4f\n", a / b } else printf "%.1f\n", a - b }}' "$CSV" | median
}
sfield() { awk -F, -v t="$1" -v c="$2" 'NR > 1 && $1 == t {print $c}' "$SCSV"; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN {if (v == "" || v == "NA") print "n/a"; else printf f, v}'; }
mib() { awk -v v="$1" 'BEGIN {if (v == "" || v == "NA") print "n/a"; else printf "%.1f", v / 1024}'; }
has() { [[ " ${MEASURED[*]} " == *" $1 "* ]]; }

TABLE=$OUT/table.md
{
  echo "| target | mode | req/s (c=$CONNS) | p50 ms | p99 ms | proxy CPU us/req | RSS under load MiB | p50 us (c=1) | p99 us (c=1) | added p99 us (c=1) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for mode in json stream; do
    for t in "${MEASURED[@]}"; do
      rps=$(med "$t" tput "$mode" 6); p50=$(med "$t" tput "$mode" 7); p99=$(med "$t" tput "$mode" 9)
      cpr=$(med "$t" tput "$mode" 15); rss=$(col "$t" tput "$mode" 17 | sort -g | tail -1)
      l50=$(med "$t" c1 "$mode" 7); l99=$(med "$t" c1 "$mode" 9)
      if [ "$t" = direct ]; then add="-"; elif has direct; then add=$(fmt "$(paired c1 "$mode" 9 "$t" direct diff)" "%.0f"); else add="n/a"; fi
      label=$t; [ "$t" = direct ] && label="direct (upstream)"
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$mode" "$(fmt "$rps" "%.0f")" \
        "$(fmt "$p50" "%.0f" | awk '{if ($1 == "n/a") print; else printf "%.3f", $1 / 1000}')" \
        "$(fmt "$p99" "%.0f" | awk '{if ($1 == "n/a") print; else printf "%.3f", $1 / 1000}')" \
        "$(fmt "$cpr" "%.1f")" "$(mib "$rss")" "$(fmt "$l50" "%.0f")" "$(fmt "$l99" "%.0f")" "$add"
    done
  done
  if [ "$STREAMS" -gt 0 ]; then
    echo
    echo "| target | concurrent streams | streams completed | socket errors | non-2xx | incomplete bodies | stream p50 ms | RSS idle MiB | RSS peak MiB | peak client connections |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${MEASURED[@]}"; do
      [ -n "$(sfield "$t" 1)" ] || continue
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$STREAMS" "$(sfield "$t" 3)" "$(sfield "$t" 4)" \
        "$(sfield "$t" 5)" "$(sfield "$t" 6)" "$(awk -v v="$(sfield "$t" 7)" 'BEGIN {printf "%.0f", v / 1000}')" \
        "$(mib "${T_RSS_IDLE[$t]}")" "$(mib "$(sfield "$t" 11)")" "$(sfield "$t" 13)"
    done
  fi
} > "$TABLE"

# Criteria (from the issue). A criterion whose inputs were not measured is "n/a", never PASS.
VERDICTS=$OUT/verdicts.md; ANY_FAIL=0
verdict() {        # verdict NAME VALUE_TEXT PASS(1/0/"") LIMIT_TEXT
  local v
  case $3 in 1) v=PASS;; 0) v=FAIL; ANY_FAIL=1;; *) v="n/a"; ANY_FAIL=1;; esac
  printf '| %s | %s | %s | %s |\n' "$1" "$2" "$4" "$v" >> "$VERDICTS"
}
cmpv() { awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN {if (a == "" || a == "NA" || b == "" || b == "NA") print ""; else if (op == "ge") print (a >= b) ? 1 : 0; else print (a <= b) ? 1 : 0}'; }
{ echo "| criterion | measured | required | verdict |"; echo "|---|---|---|---|"; } > "$VERDICTS"
for mode in json stream; do
  r=""; [ "$mode" = json ] && label="non-streaming" || label="streaming"
  if has aigw && has nginx; then r=$(paired tput "$mode" 6 aigw nginx ratio); fi
  verdict "throughput aigw / nginx, $label (c=$CONNS)" "$(fmt "$r" "%.3fx")" "$(cmpv "$r" 0.9 ge)" ">= 0.9x"
done
for mode in json stream; do
  a=""; n=""; [ "$mode" = json ] && label="non-streaming" || label="streaming"
  if has aigw && has nginx && has direct; then a=$(paired c1 "$mode" 9 aigw direct diff); n=$(paired c1 "$mode" 9 nginx direct diff); fi
  lim=$(awk -v n="$n" 'BEGIN {if (n == "" || n == "NA") print ""; else print n + 50}')
  verdict "added p99 at c=1, $label: aigw vs nginx" "aigw +$(fmt "$a" "%.0f") us, nginx +$(fmt "$n" "%.0f") us" \
    "$(cmpv "$a" "$lim" le)" "aigw <= nginx + 50 us ($(fmt "$lim" "%.0f") us)"
done
if [ "$STREAMS" -gt 0 ] && has aigw && [ -n "$(sfield aigw 1)" ]; then
  req=$(sfield aigw 3); err=$(( $(sfield aigw 4) + $(sfield aigw 5) + $(sfield aigw 6) ))
  ok=$([ "$err" -eq 0 ] && [ "$req" -ge "$STREAMS" ] && echo 1 || echo 0)
  verdict "$STREAMS concurrent streams through aigw" "$req completed, $err errors (peak $(sfield aigw 13) client connections)" "$ok" "0 errors"
  verdict "aigw RSS idle" "$(mib "${T_RSS_IDLE[aigw]}") MiB" "$(cmpv "${T_RSS_IDLE[aigw]}" 10240 le)" "<= 10 MiB"
  verdict "aigw RSS peak under $STREAMS streams" "$(mib "$(sfield aigw 11)") MiB" "$(cmpv "$(sfield aigw 11)" 102400 le)" "<= 100 MiB"
else
  verdict "$STREAMS concurrent streams through aigw" "not measured" "" "0 errors"
  verdict "aigw RSS idle" "$(mib "${T_RSS_IDLE[aigw]:-}") MiB" "$(has aigw && cmpv "${T_RSS_IDLE[aigw]}" 10240 le)" "<= 10 MiB"
  verdict "aigw RSS peak under $STREAMS streams" "not measured" "" "<= 100 MiB"
fi

# Context for the verdicts: CPU per request says which proxy does more work, whatever saturates.
NOTES=$OUT/notes.md
{
  for mode in json stream; do
    if has aigw && has nginx; then
      echo "- proxy CPU per request, $mode: aigw / nginx = $(fmt "$(paired tput "$mode" 15 aigw nginx ratio)" "%.2fx")"
    fi
  done
  for t in "${MEASURED[@]}"; do
    [ "$t" = direct ] && continue
    echo "- $t during throughput runs: CPU $SUT_CPUS (proxy) busy $(fmt "$(med "$t" tput json 19)" "%.0f")% / $(fmt "$(med "$t" tput stream 19)" "%.0f")%, CPU $LOAD_CPUS (wrk + upstream) busy $(fmt "$(med "$t" tput json 20)" "%.0f")% / $(fmt "$(med "$t" tput stream 20)" "%.0f")% (json / stream)"
  done
  for mode in json stream; do
    line=""
    for t in "${MEASURED[@]}"; do line+="${line:+; }$t $(col "$t" tput "$mode" 6 | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')"; done
    echo "- req/s per round, $mode: $line"
  done
  for mode in json stream; do
    line=""
    for t in "${MEASURED[@]}"; do line+="${line:+; }$t $(col "$t" c1 "$mode" 9 | paste -sd' ' -)"; done
    echo "- p99 at c=1 per round (us), $mode: $line"
  done
  echo "- the proxy's core (CPU $SUT_CPUS) used by anything but the target during its runs, max: $(awk -F, 'NR > 1 && $2 != "direct" && $22 != "NA" && $22 > m {m = $22} END {print m + 0}' "$CSV")% (softirq and other tenants); per run in runs.csv"
  for t in "${TARGETS[@]}"; do [ "${T_STATUS[$t]}" = ok ] || echo "- $t: ${T_STATUS[$t]}"; done
  for t in "${MEASURED[@]}"; do [ -z "${T_DIED[$t]:-}" ] || echo "- $t: NOT RUNNING ANY MORE - ${T_DIED[$t]}; its later runs are missing"; done
  echo "- box busy before a run (max over runs, other tenants): $(awk -F, 'NR > 1 && $21 != "NA" && $21 > m {m = $21} END {print m + 0}' "$CSV")%"
} > "$NOTES"

{
  echo "### Run of $(date -u +%Y-%m-%d) ($(date -u +%H:%M) UTC)"
  echo
  echo '```'
  echo "$CMDLINE"
  echo '```'
  echo
  sed -n 's/^\(machine\|aigw\|nginx\|wrk\|pinning\|load\|streams\|access logs\): /- \1: /p' "$OUT/env.txt"
  echo
  cat "$TABLE"
  echo
  cat "$VERDICTS"
  echo
  cat "$NOTES"
} > "$OUT/summary.md"

echo
echo "==================== results ($OUT)"
cat "$TABLE"; echo; cat "$VERDICTS"; echo; cat "$NOTES"
echo
echo "==================== markdown for docs/benchmarks.md"
cat "$OUT/summary.md"
echo "===================="
[ "$STRICT" = 1 ] && [ "$ANY_FAIL" = 1 ] && exit 1
exit 0
