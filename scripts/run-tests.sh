#!/bin/sh
# Runs every test suite and ends with one closing line "N passed, N failed".
#   1. C unit tests (cmocka), normal build and ASan+UBSan build
#   2. end-to-end tests (node:test, official SDKs, real aigw binary), normal and ASan+UBSan build
#   3. libFuzzer harnesses, a short bounded run each (AIGW_FUZZ_SECONDS, default 10)
# Exit status is non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
failures=""

note_fail() { failed=$((failed + 1)); failures="$failures\n  - $1"; }

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"; count those.
run_unit_dir() {
    dir=$1; label=$2
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$("$t" 2>&1); rc=$?
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        passed=$((passed + ${p:-0}))
        if [ "$rc" -ne 0 ] || [ "${f:-0}" -ne 0 ]; then
            printf '%s\n' "$out" | tail -40
            note_fail "$label $(basename "$t") (exit $rc, ${f:-?} failed)"
            [ "${f:-0}" -gt 1 ] && failed=$((failed + f - 1))
        fi
        printf '%s\n' "$out" | grep -i 'skipped' | sed "s|^|  $label $(basename "$t"): |" | head -20
        echo "  $label $(basename "$t"): ${p:-0} passed"
    done
}

# node --test with the TAP reporter ends with "# pass N" / "# fail N".
run_e2e() {
    bin=$1; label=$2
    [ -d tests/e2e ] && ls tests/e2e/*.test.mjs >/dev/null 2>&1 || return 0
    out=$(cd tests/e2e && AIGW_BIN="$PWD/../../$bin" node --test --test-reporter=tap --test-concurrency=1 *.test.mjs 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)/\1/p' | tail -1)
    printf '%s\n' "$out" | grep -E '# SKIP' | sed "s|^ *|  $label: |" | head -100
    echo "  $label: ${p:-0} passed, ${f:-0} failed"
    passed=$((passed + ${p:-0}))
    if [ "$rc" -ne 0 ] || [ "${f:-0}" -ne 0 ]; then
        printf '%s\n' "$out" | grep -B2 -A30 '^not ok' | head -300
        note_fail "$label (exit $rc, ${f:-?} failed)"
        [ "${f:-0}" -gt 1 ] && failed=$((failed + f - 1))
    fi
}

echo "== build"
if ! make -s -j"$JOBS" all unit >/tmp/aigw-build.log 2>&1; then
    cat /tmp/aigw-build.log; echo "0 passed, 1 failed"; exit 1
fi
if ! make -s -j"$JOBS" asan >/tmp/aigw-build-asan.log 2>&1; then
    cat /tmp/aigw-build-asan.log; echo "0 passed, 1 failed"; exit 1
fi

echo "== unit tests"
run_unit_dir build unit
echo "== unit tests (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1 run_unit_dir build-asan unit-asan

echo "== end-to-end tests"
run_e2e build/aigw e2e
echo "== end-to-end tests (ASan+UBSan build)"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    AIGW_E2E_SANITIZED=1 run_e2e build-asan/aigw e2e-asan

echo "== MCP conformance (official suite, aigw in front of the project's fixture server)"
if [ -x tests/mcp-conformance/run.sh ] || [ -f tests/mcp-conformance/run.sh ]; then
    out=$(bash tests/mcp-conformance/run.sh --target aigw 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E '^(FAIL|XFAIL|SKIP)' | head -50
    p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' | tail -1)
    echo "  mcp-conformance: ${p:-0} passed, ${f:-0} failed"
    passed=$((passed + ${p:-0}))
    if [ "$rc" -ne 0 ] || [ "${f:-0}" -ne 0 ]; then
        printf '%s\n' "$out" | tail -40
        note_fail "mcp-conformance (exit $rc, ${f:-?} failed)"
        [ "${f:-0}" -gt 1 ] && failed=$((failed + f - 1))
    fi
fi

echo "== fuzz (short runs)"
if ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
    if make -s fuzz >/tmp/aigw-build-fuzz.log 2>&1; then
        for h in build-fuzz/fuzz/fuzz_*; do
            n=$(basename "$h"); corpus=tests/fuzz/corpus/${n#fuzz_}
            work=$(mktemp -d); [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
            # Short runs from the checked-in corpus (past findings included); long runs with random
            # seeds are make fuzz-explore. A finding prints its input as base64 below.
            if "$h" -max_total_time="${AIGW_FUZZ_SECONDS:-10}" -rss_limit_mb=2048 -print_final_stats=0 "$work" \
                >/tmp/aigw-$n.log 2>&1; then
                passed=$((passed + 1)); echo "  fuzz $n: ok"
            else
                tail -40 /tmp/aigw-$n.log; note_fail "fuzz $n"
            fi
            rm -rf "$work"
        done
    else
        cat /tmp/aigw-build-fuzz.log; note_fail "fuzz build"
    fi
fi

[ "$failed" -gt 0 ] && printf "failures:$failures\n"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
