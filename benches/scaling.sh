#!/usr/bin/env bash
# MPI scaling of a sweep whose tasks differ >= 10x in cost (widths 16 and 128, depths 2
# and 4 on Fashion-MNIST: P from 12.7k to 134k parameters). Runs the same grid with
# 1, 2, ... ranks (RANKS="1 2" by default; e.g. RANKS="1 2 4 8 16" on a 16-core node) and
# prints wall time, speed-up, parallel efficiency T1/(N*TN) and the busiest rank's busy
# time over the mean, as reported by sharpsweep itself.
#
#   cargo build --release && bash benches/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/sharpsweep}
RANKS=${RANKS:-"1 2"}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/scaling.toml" <<'TOML'
[data]
n_train = 2048
[model]
depth = [2, 4]
width = [16, 128]
[train]
batch_size = 512
steps = 10
seeds = [1, 2]
[sharpness]
measure_n = 1024
[grid]
log2_c = { start = 0.0, stop = 3.5, step = 0.5 }
TOML
"$BIN" sweep "$work/scaling.toml" --dry-run
printf '%6s %9s %8s %11s %12s\n' ranks wall_s speedup efficiency busiest/mean
t1=
for n in $RANKS; do
  start=$(date +%s.%N)
  mpirun -np "$n" --oversubscribe --bind-to none "$BIN" sweep "$work/scaling.toml" \
    --out "$work/r$n.h5" --force --quiet 2> "$work/log$n"
  end=$(date +%s.%N)
  wall=$(awk "BEGIN{print $end - $start}")
  [ -z "$t1" ] && t1=$wall
  ratio=$(sed -n 's/.*busiest\/mean = \([0-9.]*\).*/\1/p' "$work/log$n")
  printf '%6d %9.2f %8.2f %10.1f%% %12s\n' "$n" "$wall" "$(awk "BEGIN{print $t1/$wall}")" \
    "$(awk "BEGIN{print 100*$t1/($n*$wall)}")" "${ratio:-1 (one rank)}"
done
