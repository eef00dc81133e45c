#!/usr/bin/env bash
# Runs the stress suite (tests/stress.rs) RUNS times, 50 by default, and
# checks each run:
#   - the failing tests are exactly the `leaky` ones, every time;
#   - each failure's report is about its own test, and names only work that
#     its own test spawned (all work is named after the test's module).
# Ends with a plain `N passed, N failed` line counting runs.
#
#   scripts/stress.sh [RUNS] [THREADS]
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-50}
threads=${2:-64}
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

echo "==> building the stress suite"
if ! cargo test --test stress --no-run; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

checker=$(mktemp)
trap 'rm -f "$checker"' EXIT
cat >"$checker" <<'PY'
import re, sys

log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
listed = set(re.findall(r"^test (\S+) \.\.\. ", log, re.M))
failed = set(re.findall(r"^test (\S+) \.\.\. FAILED$", log, re.M))
leaky = {t for t in listed if t.endswith("::leaky")}
problems = []
if len(listed) != 260:
    problems.append(f"{len(listed)} tests ran, expected 260")
for t in sorted(failed - leaky):
    problems.append(f"clean test failed: {t}")
for t in sorted(leaky - failed):
    problems.append(f"leaky test passed: {t}")
sections = re.split(r"^---- (\S+) stdout ----$", log, flags=re.M)
for test, body in zip(sections[1::2], sections[2::2]):
    body = body.split("\nfailures:\n")[0]
    own = "stress::" + test.rsplit("::", 1)[0]
    if f"test `{test}` leaked" not in body:
        problems.append(f"{test}: the report does not name its own test")
    # A test that leaks the runtime it built leaks that runtime's workers
    # too, reported with a note saying so.
    kept_runtime = "::attribute_sync_own_runtime::" in "::" + test
    if kept_runtime and "workers of a tokio runtime built during the test" not in body:
        problems.append(f"{test}: its kept runtime's workers are not reported")
    for names in re.findall(r"^  names?: (.*)$", body, re.M):
        for name in re.split(r", | and ", names):
            if kept_runtime and name in ("tokio-rt-worker", "tokio-runtime-w"):
                continue
            if name != own and not re.fullmatch(r"\d+ more", name):
                problems.append(f"{test}: its report names {name!r}, which is not its own work")
    # Plain tasks are only counted without task hooks.
    if "untracked" in body and not test.startswith("plain_tasks::"):
        problems.append(f"{test}: its report counts untracked work")
    if "cross-talk" in body:
        problems.append(f"{test}: its report holds another test's work")
for p in problems:
    print("   ", p)
sys.exit(1 if problems else 0)
PY

passed=0
failed=0
for run in $(seq 1 "$runs"); do
    log=$(mktemp)
    start=$(date +%s%N)
    cargo test --test stress -- --ignored --test-threads="$threads" >"$log" 2>&1
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    if python3 "$checker" "$log"; then
        passed=$((passed + 1))
        echo "run $run: ok (${ms} ms)"
        rm -f "$log"
    else
        failed=$((failed + 1))
        echo "run $run: FAILED (${ms} ms); output kept in $log"
    fi
done
echo "stress: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
