#!/usr/bin/env bash
# Runs leakcheck's benchmarks (benches/spawn.rs and benches/check.rs) one or
# more times and prints one markdown table: each measure's figure from every
# run side by side, its target, and whether every run met it.
#
# usage: scripts/bench-table.sh [RUNS] [FILTER]
#   RUNS    how many full runs (default 2), to show the figures are stable
#   FILTER  passed to the benches, e.g. B2 or B8/off (default: everything)
#
# Each run's full output is kept in $OUT (default target/leakcheck-bench/,
# or $CARGO_TARGET_DIR/leakcheck-bench/). A full run takes 2–3 minutes on
# 2 cores after the build. The benches set LEAKCHECK_BACKTRACE and
# LEAKCHECK_DETAIL themselves, per child process.
set -euo pipefail

runs=${1:-2}
filter=${2:-}
cd "$(dirname "$0")/.."
out=${OUT:-${CARGO_TARGET_DIR:-target}/leakcheck-bench}
mkdir -p "$out"

cargo bench --bench spawn --bench check --no-run

# Which leakcheck a run measured: a hash of the contents of src/ and
# Cargo.toml (a commit of unchanged files does not change it). cargo bench
# rebuilds when they change, so runs with different fingerprints measured
# different code.
fingerprint() {
    find src Cargo.toml -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-12
}

prints=()
for run in $(seq 1 "$runs"); do
    log="$out/run-$run.log"
    before=$(fingerprint)
    echo "run $run of $runs: $log (src $before)" >&2
    # shellcheck disable=SC2086
    cargo bench --bench spawn --bench check -- ${filter} >"$log" 2>&1 || {
        echo "run $run failed; see $log" >&2
        tail -20 "$log" >&2
        exit 1
    }
    # The rows of both tables: "| id | figure | spread | detail | target | met? |".
    grep -E '^\| B[0-9]' "$log" >"$out/run-$run.rows" || true
    after=$(fingerprint)
    if [ "$before" != "$after" ]; then
        echo "warning: src/ changed during run $run ($before → $after)" >&2
        prints+=("$before→$after")
    else
        prints+=("$before")
    fi
done

echo "src fingerprint per run: ${prints[*]}"
if [ "$(printf '%s\n' "${prints[@]}" | sort -u | wc -l)" -gt 1 ]; then
    echo "warning: the runs did not all measure the same src/; compare them with care"
fi
echo

awk -F' [|] ' -v runs="$runs" -v out="$out" '
    BEGIN {
        for (r = 1; r <= runs; r++) {
            file = out "/run-" r ".rows"
            while ((getline line < file) > 0) {
                sub(/^\| /, "", line); sub(/ \|$/, "", line)
                n = split(line, f, / [|] /)
                id = f[1]
                if (!(id in seen)) { seen[id] = 1; order[++count] = id }
                figure[id, r] = f[2]; spread[id, r] = f[3]
                target[id] = f[5]; met[id, r] = f[6]
            }
            close(file)
        }
        printf "| id |"
        for (r = 1; r <= runs; r++) printf " run %d (median; spread) |", r
        printf " target | met? |\n|---|"
        for (r = 1; r <= runs; r++) printf "---|"
        printf "---|---|\n"
        for (i = 1; i <= count; i++) {
            id = order[i]
            printf "| %s |", id
            verdict = ""
            for (r = 1; r <= runs; r++) {
                printf " %s; %s |", figure[id, r], spread[id, r]
                v = met[id, r]
                if (verdict == "") verdict = v
                else if (verdict != v) verdict = verdict " / " v
            }
            printf " %s | %s |\n", target[id], verdict
        }
    }'
