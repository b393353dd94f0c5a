#!/usr/bin/env bash
# Quick start: set up, run the quickstart sweep on all cores, analyse it, draw the figures.
#
#   bash scripts/quickstart.sh
#
# Runs configs/quickstart.toml (Fashion-MNIST from the Debian package) under mpirun with one
# rank per core, into results/quickstart.h5, then `sharpsweep analyze` and `sharpsweep plot`
# (figures in results/figures/). Rerunning it resumes an interrupted sweep and only redoes
# the analysis of a finished one. To start over: rm results/quickstart.h5
#
# Environment: OUT (results file, default results/quickstart.h5), FIGURES (figure directory,
# default results/figures), NP (ranks, default $(nproc)), CONFIG (default
# configs/quickstart.toml), CARGO_TARGET_DIR (where the binary is built).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONFIG="${CONFIG:-configs/quickstart.toml}"
OUT="${OUT:-results/quickstart.h5}"
FIGURES="${FIGURES:-results/figures}"
NP="${NP:-$(nproc)}"
BIN="${CARGO_TARGET_DIR:-target}/release/sharpsweep"

say() { printf '==> quickstart: %s\n' "$*"; }

say "set-up (scripts/setup.sh)"
bash scripts/setup.sh
[ -x "$BIN" ] || {
  echo "quickstart.sh: error: $BIN was not built" >&2
  exit 1
}

# OpenMPI refuses to run as root unless told it may.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# One matmul thread per rank, and no binding: with np <= 2 OpenMPI would otherwise pin
# each rank to one core, which also pins the master's message loop next to its compute.
MPIRUN=(mpirun -np "$NP" --bind-to none)
# More ranks than OpenMPI counts slots (cores, not hardware threads) needs --oversubscribe.
if ! "${MPIRUN[@]}" true >/dev/null 2>&1; then
  MPIRUN+=(--oversubscribe)
fi

mkdir -p "$(dirname "$OUT")"
"$BIN" sweep "$CONFIG" --out "$OUT" --dry-run
say "${MPIRUN[*]} $BIN sweep $CONFIG --out $OUT --resume"
set +e
SHARPSWEEP_THREADS=1 "${MPIRUN[@]}" "$BIN" sweep "$CONFIG" --out "$OUT" --resume
rc=$?
set -e
case "$rc" in
  0) ;;
  3)
    say "the sweep stopped early (signal or deadline); finished runs are kept in $OUT."
    say "rerun 'bash scripts/quickstart.sh' to resume it."
    exit 3
    ;;
  *)
    echo "quickstart.sh: the sweep stopped with exit status $rc (see the messages above)." >&2
    echo "quickstart.sh: finished runs are kept in $OUT; once the cause is fixed, rerun to resume." >&2
    exit "$rc"
    ;;
esac

say "$BIN analyze $OUT"
"$BIN" analyze "$OUT"

say "$BIN plot $OUT --out-dir $FIGURES"
"$BIN" plot "$OUT" --out-dir "$FIGURES"

say "results: $OUT (inspect it with: $BIN inspect $OUT)"
say "phase diagram:"
echo "$FIGURES/phase_diagram.png"
