#!/usr/bin/env bash
# Builds and tests leakcheck with every direct dependency at the minimum
# version that Cargo.toml declares, in the default cfg and with
# `--cfg tokio_unstable`: a user whose lock file holds an older release that
# still matches our requirement gets exactly that release.
#
#   scripts/min-versions.sh [--clean]
#
# --clean removes each cfg's build once its tests have run, and the copy at
# the end (CI, where disk is short; a later run then starts cold).
#
# Works on a copy of the workspace under the target directory
# (`${CARGO_TARGET_DIR:-target}/min-versions`), so the real Cargo.lock is
# never touched; the copy keeps its path and file times between runs, so a
# second run rebuilds only what changed.
#
# Measured on 2 cores: about 19 minutes on a cold target directory with two
# other builds running (both cfgs build every test target, and the trybuild UI
# test builds the dependencies once more), 3.5 minutes warm.
#
# Ends with a plain `N passed, N failed` line counting the two cfgs.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0

clean=false
case "${1-}" in
    "") ;;
    --clean) clean=true ;;
    *) echo "min-versions.sh: unknown argument '$1'; accepted: --clean" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "min-versions.sh: one argument at most (--clean), got $#" >&2; exit 2; }

base=$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")
work="$base/min-versions/workspace"
export CARGO_TARGET_DIR="$base/min-versions/target"

# The declared minimums, read from the manifests rather than repeated here,
# so that raising a floor in Cargo.toml is enough. `dep = "X"` and
# `dep = { version = "X", ... }` are both understood; a requirement of "1" or
# "0.12" means 1.0.0 or 0.12.0, as cargo reads it.
floor() { # floor MANIFEST NAME
    local req
    req=$(sed -nE "s/^$2 = (\\{ *version = )?\"[=^]?([0-9.]+)\".*/\\2/p" "$1" | sort -V | tail -n 1)
    [ -n "$req" ] || { echo "no requirement for $2 in $1" >&2; exit 1; }
    case "$req" in
        *.*.*) echo "$req" ;;
        *.*) echo "$req.0" ;;
        *) echo "$req.0.0" ;;
    esac
}

echo "==> copying the workspace to $work"
mkdir -p "$work"
# tar keeps file times, so cargo sees unchanged files as unchanged.
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
    | tar --null -T - -cf -) | tar -C "$work" -xf -
cd "$work" || exit 1

# The order matters: `cargo update --precise` refuses a version that another
# locked crate rules out, so a crate that holds another one up is moved down
# first. Crates named here that are not direct dependencies of leakcheck are
# moved only as far as the floors below need:
#
# - tokio-metrics before tokio: tokio-metrics 0.5.2 asks for a newer tokio
#   than 0.5.0 does.
# - tokio-util, a dev-dependency, to 0.7.19 before tokio: 0.7.20 asks for
#   tokio 1.51; 0.7.19 is the newest that takes tokio 1.47+.
# - syn 3 sets the floor of proc-macro2 and quote. quote is also reached by
#   the dev-dependency criterion (criterion -> ciborium -> half -> zerocopy),
#   and zerocopy-derive 0.8.63 asks for quote 1.0.40: zerocopy goes down to
#   0.8.26, the lowest that half accepts, whose derive takes older quotes.
# - libc last: tokio 1.49 itself asks for libc 0.2.168 on Unix (so no user of
#   leakcheck can lock anything older, whatever we declare), and mio 1.1.1+
#   asks for newer still, so mio goes down to 1.1.0 first. The dev-dependency
#   tokio's `net` feature brings socket2 0.6, which asks for libc 0.2.172:
#   that is as low as this workspace can lock libc, four patch releases above
#   the declared 0.2.168. leakcheck uses only long-standing libc items.
# - Other dev-dependencies (trybuild, criterion, serde_json) stay as
#   resolved: they are not part of what a user compiles.
at_least() { printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1; }
pins=(
    "tokio-metrics $(floor Cargo.toml tokio-metrics)"
    "tokio-util 0.7.19"
    "tokio $(floor Cargo.toml tokio)"
    "backtrace $(floor Cargo.toml backtrace)"
    "parking_lot $(floor Cargo.toml parking_lot)"
    "ctor $(floor Cargo.toml ctor)"
    "syn@3 $(floor macros/Cargo.toml syn)"
    "proc-macro2 $(floor macros/Cargo.toml proc-macro2)"
    "zerocopy 0.8.26"
    "quote $(floor macros/Cargo.toml quote)"
    "mio 1.1.0"
    "libc $(at_least "$(floor Cargo.toml libc)" 0.2.172)"
)
for pin in "${pins[@]}"; do
    set -- $pin
    echo "==> cargo update -p $1 --precise $2"
    if ! cargo update --quiet -p "$1" --precise "$2"; then
        echo "cannot lock $1 at its declared minimum $2"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

passed=0 failed=0
run() { # run LABEL TARGET_DIR [ENV...]
    local label=$1 target=$2
    shift 2
    echo "==> cargo test --lib --tests ($label)"
    if env CARGO_TARGET_DIR="$target" "$@" cargo test --workspace --lib --tests; then
        passed=$((passed + 1))
    else
        echo "FAILED: $label"
        failed=$((failed + 1))
    fi
    if $clean; then rm -rf "$target"; fi
}
# `leakcheck_min_versions` leaves out the few tests of features that need a
# newer tokio than the floor (`flavor = "local"`, a runtime's `name`).
run "default cfg" "$CARGO_TARGET_DIR/default" RUSTFLAGS="--cfg leakcheck_min_versions"
run "--cfg tokio_unstable" "$CARGO_TARGET_DIR/tokio-unstable" \
    RUSTFLAGS="--cfg tokio_unstable --cfg leakcheck_min_versions"
if $clean; then rm -rf "$base/min-versions"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
