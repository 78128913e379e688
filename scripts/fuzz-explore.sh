#!/bin/sh
# Exploratory fuzzing: every harness (or the ones named) for AIGW_FUZZ_SECONDS with a random seed,
# starting from tests/fuzz/corpus/<name> and growing build-fuzz/corpus/<name>. A finding is kept
# in build-fuzz/findings/<name>/; add it to tests/fuzz/corpus/<name>/ once it is fixed, so that
# make test replays it. make test itself runs short fixed-seed runs.
set -u
cd "$(dirname "$0")/.."
seconds=${AIGW_FUZZ_SECONDS:-300}
names=${*:-$(cd build-fuzz/fuzz && ls)}
found=0
for n in $names; do
    n=fuzz_${n#fuzz_}
    h=build-fuzz/fuzz/$n
    [ -x "$h" ] || { echo "no harness $h"; found=1; continue; }
    corpus=build-fuzz/corpus/${n#fuzz_}
    findings=build-fuzz/findings/${n#fuzz_}
    mkdir -p "$corpus" "$findings"
    [ -d "tests/fuzz/corpus/${n#fuzz_}" ] && cp -r "tests/fuzz/corpus/${n#fuzz_}"/. "$corpus"/
    if "$h" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" \
        >"build-fuzz/findings/$n.log" 2>&1; then
        echo "$n: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/findings/$n.log" |
            grep -o '[0-9]*$' || echo '?') inputs)"
    else
        echo "$n: FINDING in $findings (log: build-fuzz/findings/$n.log)"
        found=1
    fi
done
exit $found
