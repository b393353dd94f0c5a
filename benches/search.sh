#!/usr/bin/env bash
# The adaptive search against fixed grids, on configs/paper-cifar10-d8.toml scaled to a
# small machine: depth 8, widths 32..256 (d/w = 1/4 .. 1/32), 3 seeds, 10 SGD steps on
# 2048 real Fashion-MNIST images (sharpness on 1024), c = 2^x for x in [0, 6]. The search
# resolves c_loss, c_sharp and c_max to Δlog2 c = 0.05 (coarse step 0.8, lattice
# 0.8/16 = 0.05, so the fixed grid of step 0.05 has the same c values and the step-0.1
# grid every other one).
#
# Prints: the dry run's bound, the search's runs, wall time and parallel efficiency on
# RANKS ranks (default 2), and, from the search's own file, the runs and core-hours of the
# fixed grids at step 0.05 and 0.1, with and without stop_after_divergence: the fixed grid
# makes every lattice point of a line (up to its first divergence with
# stop_after_divergence), and the search knows where that divergence is to 0.05. Core-hours
# of a fixed grid are its runs times the mean measured seconds of the search's runs of the
# same (width, trained or diverged). RUN_FIXED=1 also runs the step-0.1 grid with
# stop_after_divergence for real, to check that estimate (a few more minutes).
#
#   cargo build --release && bash benches/search.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/sharpsweep}
RANKS=${RANKS:-2}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common='
[data]
n_train = 2048
[model]
depth = [8]
width = [32, 64, 128, 256]
[train]
batch_size = 512
steps = 10
seeds = [1, 2, 3]
[sharpness]
measure_n = 1024
'
printf '%s\n[grid]\nsearch = "adaptive"\nlog2_c = { start = 0.0, stop = 6.0, step = 0.8 }\nresolution = 0.05\n' \
  "$common" > "$work/search.toml"
printf '%s\n[grid]\nlog2_c = { start = 0.0, stop = 6.0, step = 0.1 }\nstop_after_divergence = true\n' \
  "$common" > "$work/fixed01.toml"

"$BIN" sweep "$work/search.toml" --dry-run | head -2
mpirun -np "$RANKS" --oversubscribe --bind-to none "$BIN" sweep "$work/search.toml" \
  --out "$work/search.h5" --quiet 2>&1 | tail -2
"$BIN" analyze "$work/search.h5" --no-write | sed -n '1,8p'

python3 - "$work/search.h5" <<'PY'
import sys
from collections import defaultdict
import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    c = f["c"][:]
    width = f["width"][:]
    seed = f["seed"][:]
    status = f["status"][:]
    secs = f["seconds"][:]
x = np.round(np.log2(c) / 0.05).astype(int)  # lattice index, spacing 0.05
n_lattice = 121  # x = 0, 0.05, ..., 6.0
lines = defaultdict(list)
for i in range(len(c)):
    lines[(width[i], seed[i])].append(i)
# mean seconds per (width, diverged?) from the search's own runs
mean = {}
for w in set(width):
    for div in (False, True):
        sel = (width == w) & ((status == 2) == div)
        mean[(w, div)] = secs[sel].mean() if sel.any() else secs[width == w].mean()
search_runs, search_s = len(c), secs.sum()
rows = []
for step, name in ((1, "0.05"), (2, "0.1")):
    for stop in (False, True):
        runs = 0
        s = 0.0
        for (w, _), idx in lines.items():
            div = [x[i] for i in idx if status[i] == 2]
            first_div = min(div) if div else n_lattice
            for k in range(0, n_lattice, step):
                if stop and k > first_div:
                    # stop_after_divergence: nothing above the grid's first divergence
                    grid_first = min(j for j in range(0, n_lattice, step) if j >= first_div)
                    if k > grid_first:
                        continue
                diverged = k >= first_div
                runs += 1
                s += mean[(w, diverged)]
        rows.append((f"fixed grid step {name}" + (" + stop_after_divergence" if stop else ""), runs, s))
print(f"{'':45s} {'runs':>6s} {'core-h':>8s} {'runs/search':>12s} {'core-h/search':>14s}")
print(f"{'adaptive search (resolution 0.05)':45s} {search_runs:6d} {search_s/3600:8.4f} {1:12.2f} {1:14.2f}")
for name, runs, s in rows:
    print(f"{name:45s} {runs:6d} {s/3600:8.4f} {runs/search_runs:12.2f} {s/search_s:14.2f}")
PY

if [ "${RUN_FIXED:-0}" = 1 ]; then
  echo "fixed grid step 0.1 + stop_after_divergence, for real:"
  mpirun -np "$RANKS" --oversubscribe --bind-to none "$BIN" sweep "$work/fixed01.toml" \
    --out "$work/fixed01.h5" --quiet 2>&1 | tail -2
  python3 -c "
import h5py, sys
f = h5py.File('$work/fixed01.h5', 'r')
st = f['status'][:]
print(f'  runs made: {(st != 0).sum()}, core-hours: {f[\"seconds\"][:][st != 0].sum() / 3600:.4f}')
"
fi
