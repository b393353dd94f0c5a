#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#
#   bash scripts/test.sh
#
# 1. scripts/setup.sh --python   system and Python packages (only what is missing), release build
# 2. cargo fmt --check           formatting
# 3. cargo clippy -D warnings    lints, every target, release profile
# 4. cargo test --release        unit tests, integration tests (they launch the built binary,
#                                some under mpirun) and doc tests
# 5. cargo bench --no-run        the benchmarks compile
#
# Stops at the first failing stage with its exit status. Everything runs in the release
# profile so that the dependencies are compiled once (debug faer is also far too slow).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stage() { printf '\n==> test: %s\n' "$*"; }
started=$(date +%s)

stage "set-up (scripts/setup.sh --python)"
bash scripts/setup.sh --python

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
# rustfmt and clippy are rustup components; add them when rustup manages the toolchain.
for component in rustfmt clippy; do
  sub=$([ "$component" = rustfmt ] && echo fmt || echo clippy)
  if ! cargo "$sub" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      stage "rustup component add $component"
      rustup component add "$component"
    else
      echo "test.sh: error: 'cargo $sub' is not available and there is no rustup to add it" >&2
      exit 1
    fi
  fi
done

# OpenMPI's mpirun refuses to run as root unless told it may; the tests launch mpirun.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

stage "cargo fmt --all -- --check"
cargo fmt --all -- --check

stage "cargo clippy --release --all-targets --locked -- -D warnings"
cargo clippy --release --all-targets --locked -- -D warnings

stage "cargo test --release --locked"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --release --locked 2>&1 | tee "$test_log"

stage "cargo bench --no-run --locked"
cargo bench --no-run --locked

stage "all passed in $(($(date +%s) - started)) s"
# One closing line for the whole suite (the last cargo line is the empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$test_log"
