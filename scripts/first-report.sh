#!/usr/bin/env bash
# Measures what a failing check's report and a checked clean suite cost in
# a real library's debug test binary: R1, R2 and S1 of the README's cost
# table. The binaries are the fixture library's (fixtures/reallib), whose
# dev-dependencies (tokio `full`, hyper, serde, regex, tracing, chrono and
# more, all used by tests/common/workload.rs) make them the size of a real
# library's test binaries.
#
#   scripts/first-report.sh [ROUNDS] [WHAT]
#     ROUNDS  rounds of each measure (default 5)
#     WHAT    `r` (R1 and R2), `s` (S1) or `all` (default)
#   JOBS=N    nextest's test threads for R1 and R2 (default: nextest's, the
#             number of cores)
#
# R1, R2: tests/first_report.rs holds 20 tests that leak (a task through
#   `leakcheck::spawn` or a plain thread of the library, alternately) and
#   fail through `#[leak_check]` with the default settle budget. Each round
#   runs all 20 under nextest, a process each, so every report is the first
#   of its process, once with `LEAKCHECK_BACKTRACE=site` (the default) and
#   once with `off`, in alternating order. Each test notes, inside its
#   process, the time from the end of its body to its report being written,
#   less the wait the report states: the time beyond the settle wait.
#   R1 is the median of that over every `site` test of every round; R2 the
#   sum over the 20 tests of a round, median over rounds. `off` is shown
#   for reference: a thread seen through the thread hook has a backtrace
#   whatever the setting, since it is the only record of where it started.
# S1: tests/clean_suite.rs holds 200 clean tests under `#[leak_check]`
#   (`with_check::`) and the same 200 under plain `#[tokio::test]`
#   (`without::`). Each pair runs both, ABBA order flipping from pair to
#   pair, and its ratio is with over without, in wall time: under nextest
#   (a process per test, nextest's own run time), under `cargo test`
#   (the test binary run directly, 2 test threads, process wall time), and
#   for one process running one test (what nextest pays per test, without
#   nextest's own variance; 30 pairs a round).
#
# Figures are medians with [min–max] over rounds or pairs. The load average
# is printed before and after: the machine is shared, and every figure here
# is wall time.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-5}
what=${2:-all}
case "$what" in r | s | all) ;; *)
    echo "WHAT must be r, s or all, not '$what'" >&2
    exit 2
    ;;
esac
case "$rounds" in '' | *[!0-9]* | 0)
    echo "ROUNDS must be a whole number of at least 1, not '$rounds'" >&2
    exit 2
    ;;
esac
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0
out=${OUT:-${CARGO_TARGET_DIR:-target}/leakcheck-first-report}
mkdir -p "$out"
# Absolute: nextest runs each test in its package's directory.
out=$(cd "$out" && pwd)

echo "==> building the fixture's test binaries"
cargo test -p reallib --test first_report --test clean_suite --no-run
clean_suite=$(cargo test -p reallib --test clean_suite --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "clean_suite":
        print(m["executable"])')
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

OUT_DIR="$out" ROUNDS="$rounds" WHAT="$what" CLEAN_SUITE="$clean_suite" python3 - <<'PY'
import os, re, statistics, subprocess, sys, time

out, rounds, what = os.environ["OUT_DIR"], int(os.environ["ROUNDS"]), os.environ["WHAT"]
clean_suite = os.environ["CLEAN_SUITE"]
jobs = ["-j", os.environ["JOBS"]] if os.environ.get("JOBS") else []

def spread(values, fmt):
    values = sorted(values)
    return f"{fmt(statistics.median(values))} [{fmt(values[0])}–{fmt(values[-1])}]"

def ms(us):
    return f"{us / 1000:.1f} ms"

def nextest(args, env):
    """Runs nextest, returns (its output, its own run time in seconds)."""
    run = subprocess.run(
        ["cargo", "nextest", "run", "-p", "reallib", "--no-fail-fast", *args],
        env={**os.environ, **env}, capture_output=True, text=True)
    text = run.stdout + run.stderr
    summary = re.search(r"Summary \[\s*([0-9.]+)s\]", text)
    if not summary:
        sys.exit(f"nextest printed no summary:\n{text[-3000:]}")
    return text, float(summary.group(1))

if what in ("r", "all"):
    beyond = {"site": [], "off": []}
    by_kind = {"site": {"task": [], "thread": []}, "off": {"task": [], "thread": []}}
    sums = {"site": [], "off": []}
    wall = {"site": [], "off": []}
    for r in range(rounds):
        for mode in (("site", "off") if r % 2 == 0 else ("off", "site")):
            log = f"{out}/r{r + 1}-{mode}.log"
            if os.path.exists(log):
                os.remove(log)
            text, seconds = nextest(
                ["--test", "first_report", "--run-ignored", "only", "-E", "test(/^leaks_/)", *jobs],
                {"LEAKCHECK_BACKTRACE": mode, "REALLIB_FIRST_REPORT_LOG": log})
            open(f"{out}/r{r + 1}-{mode}.out", "w").write(text)
            if "20 tests run: 0 passed, 20 failed" not in text:
                sys.exit(f"round {r + 1} ({mode}): expected 20 failing tests; see {out}/r{r + 1}-{mode}.out")
            at_library = re.findall(r"^ *1 thread spawned at fixtures/reallib/src/lib.rs:\d+:\d+$", text, re.M)
            if len(at_library) != 10:
                sys.exit(f"round {r + 1} ({mode}): the 10 thread leaks must name the library's line")
            lines = open(log).read().split("\n")[:-1]
            if len(lines) != 20:
                sys.exit(f"round {r + 1} ({mode}): {len(lines)} figures logged, expected 20")
            figures = []
            for line in lines:
                test = line.split()[0]
                us = int(re.search(r"beyond_us=(\d+)", line).group(1))
                figures.append(us)
                kind = "task" if int(test.rsplit("_", 1)[1]) % 2 else "thread"
                by_kind[mode][kind].append(us)
            beyond[mode] += figures
            sums[mode].append(sum(figures))
            wall[mode].append(seconds)
            print(f"round {r + 1} {mode:4}: sum beyond settle {ms(sum(figures))}, "
                  f"largest {ms(max(figures))}, nextest {seconds:.2f}s", flush=True)
    print()
    print("| # | measure | LEAKCHECK_BACKTRACE=site (default) | off, for reference |")
    print("|---|---|---|---|")
    print(f"| R1 | first report in a process, beyond the settle wait: median [min–max] of {len(beyond['site'])} processes "
          f"| {spread(beyond['site'], ms)} | {spread(beyond['off'], ms)} |")
    for kind in ("task", "thread"):
        print(f"| R1 | … a leaked {kind} only | {spread(by_kind['site'][kind], ms)} | {spread(by_kind['off'][kind], ms)} |")
    print(f"| R2 | sum over 20 failing tests, 20 processes (nextest): median [min–max] of {rounds} rounds "
          f"| {spread(sums['site'], ms)} | {spread(sums['off'], ms)} |")
    print(f"| | nextest's run time for the 20 | {spread(wall['site'], lambda s: f'{s:.2f} s')} "
          f"| {spread(wall['off'], lambda s: f'{s:.2f} s')} |")
    print()

if what in ("s", "all"):
    def direct(prefix):
        started = time.perf_counter()
        run = subprocess.run([clean_suite, "--test-threads=2", "-q", prefix],
                             capture_output=True, text=True,
                             env={**os.environ, "RUST_TEST_THREADS": "2"})
        elapsed = time.perf_counter() - started
        if run.returncode != 0 or "200 passed" not in run.stdout:
            sys.exit(f"{prefix} did not pass 200 tests:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        return elapsed

    def under_nextest(prefix):
        text, seconds = nextest(["--test", "clean_suite", "-E", f"test(/^{prefix}/)"], {})
        if "200 tests run: 200 passed" not in text:
            sys.exit(f"{prefix} did not pass 200 tests under nextest:\n{text[-2000:]}")
        return seconds

    def one_process(prefix):
        # What nextest pays per test, without nextest's own variance: one
        # process running one test of the 200.
        started = time.perf_counter()
        run = subprocess.run([clean_suite, "--exact", f"{prefix}g00::t0", "--test-threads=1", "-q"],
                             capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if run.returncode != 0 or "1 passed" not in run.stdout:
            sys.exit(f"{prefix}g00::t0 did not pass:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        return elapsed

    for name, run, pairs in (("nextest", under_nextest, 2 * rounds), ("cargo test", direct, 6 * rounds),
                             ("1 process", one_process, 30 * rounds)):
        ratios, with_times, without_times = [], [], []
        run("without::")  # warm the page cache and cargo's fingerprints
        for pair in range(pairs):
            # ABBA: the order flips from one pair to the next.
            if pair % 2 == 0:
                a = run("with_check::"); b = run("without::")
            else:
                b = run("without::"); a = run("with_check::")
            ratios.append(a / b); with_times.append(a); without_times.append(b)
        secs = lambda s: f"{s * 1000:.2f} ms" if name == "1 process" else f"{s:.3f} s"
        print(f"S1 {name:10}: with/without {spread(ratios, lambda x: f'{x:.3f}×')} over {pairs} pairs; "
              f"with {spread(with_times, secs)}, without {spread(without_times, secs)}", flush=True)
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
