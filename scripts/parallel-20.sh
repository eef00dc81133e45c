#!/usr/bin/env bash
# Runs the `parallel` test binary (tests/parallel.rs) RUNS times in a row, 20
# by default, with all of its tests on parallel threads at once. Builds once
# first, stops at the first failing run, and ends with `N passed, N failed`.
#
#   scripts/parallel-20.sh [RUNS] [extra libtest arguments...]
#
# CARGO_TARGET_DIR and other cargo settings are taken from the environment.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
shift || true
# One thread per test, so that every test is running when the rendezvous in
# tests/parallel.rs fill: see its module docs.
threads=32

export CARGO_TERM_COLOR=never
# Every test must meet every other at both rendezvous points, or the run fails.
export PARALLEL_STRICT=1

echo "==> building the parallel test binary"
if ! cargo test --test parallel --no-run; then
    echo "build failed"
    echo "0 passed, 0 failed"
    exit 2
fi

passed=0
failed=0
for run in $(seq 1 "$runs"); do
    log=$(mktemp)
    started=$(date +%s%N)
    if cargo test -q --test parallel -- --test-threads="$threads" "$@" >"$log" 2>&1; then
        status=ok
        passed=$((passed + 1))
    else
        status=FAILED
        failed=$((failed + 1))
    fi
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    summary=$(grep -E '^test result:' "$log" | tail -n 1)
    echo "run $run/$runs: $status in ${elapsed_ms} ms: ${summary:-no test result line}"
    if [ "$status" = FAILED ]; then
        echo "---- output of the failing run ----"
        cat "$log"
        rm -f "$log"
        break
    fi
    rm -f "$log"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
