#!/usr/bin/env bash
# Runs the ignored test in tests/frames.rs: it builds four small crates that
# depend on leakcheck by path (one is the crate `test` that `tests/test.rs`
# makes; the others are `tokio_app`, `std_ext` and `core_utils`), each
# leaking a thread through a helper, with `[profile.dev] debug` set to
# `true`, "line-tables-only" and "limited", and checks that each report
# shows the helper's frame and no frame of std, tokio or leakcheck.
#
#   scripts/frames-check.sh
#
# The first run builds leakcheck and its dependencies three times (about
# four minutes on 2 busy cores); later runs reuse the crates' target
# directory under target/tmp/frames-check and take about 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

cargo test --test frames -- --ignored --nocapture
