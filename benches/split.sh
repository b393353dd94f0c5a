#!/usr/bin/env bash
# Ranks x threads on one node: the same sweep with every split R x T of CORES cores
# (R ranks under mpirun, T = CORES / R threads each, `--threads T`), per width, interleaved
# REPEATS times; prints the median wall time of each split and its ratio to the fastest.
# The sweep: depth 4, synthetic 3072-d inputs (n = 4096, measurement set 2048, B = 512),
# SEEDS seeds x 2 values of c per width (default SEEDS = CORES: two runs per rank when every
# core is a rank), STEPS steps, sharpness every step, f32.
#
#   cargo build --release && bash benches/split.sh          # CORES = nproc, widths 256 1024
#   CORES=16 WIDTHS="256 512 1024 2048" bash benches/split.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/sharpsweep}
CORES=${CORES:-$(nproc)}
WIDTHS=${WIDTHS:-"256 1024"}
STEPS=${STEPS:-5}
REPEATS=${REPEATS:-3}
SEEDS=${SEEDS:-$CORES}
seeds=$(seq -s ', ' 1 "$SEEDS")
mpi_env=()
# A bundled binary finds its libraries through LD_LIBRARY_PATH: hand it to the ranks.
[ -n "${LD_LIBRARY_PATH:-}" ] && mpi_env=(-x LD_LIBRARY_PATH)
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
splits=()
for ((r = 1; r <= CORES; r *= 2)); do
  (( CORES % r == 0 )) && splits+=("$r")
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "== $("$BIN" --version); $CORES cores; $((2 * SEEDS)) runs per width; $(mpirun --version 2>&1 | head -1); $STEPS steps, $REPEATS repeats"
printf '%6s %6s %8s %10s %9s\n' width ranks threads median_s vs_best
for w in $WIDTHS; do
  cat > "$work/w$w.toml" <<TOML
[data]
dataset = "synthetic"
n_train = 4096
[model]
depth = [4]
width = [$w]
[train]
batch_size = 512
steps = $STEPS
seeds = [$seeds]
[sharpness]
measure_n = 2048
[grid]
c = [2.0, 4.0]
TOML
  declare -A times=()
  for ((i = 0; i < REPEATS; i++)); do
    for r in "${splits[@]}"; do
      t=$((CORES / r))
      start=$(date +%s.%N)
      # Each rank gets T cores of its own (--map-by slot:PE=T binds it to them).
      mpirun "${mpi_env[@]}" -np "$r" --map-by "slot:PE=$t" --bind-to core "$BIN" sweep "$work/w$w.toml" \
        --threads "$t" --out "$work/w$w-r$r.h5" --force --quiet 2> "$work/log"
      end=$(date +%s.%N)
      times[$r]="${times[$r]:-} $(awk "BEGIN{print $end - $start}")"
    done
  done
  best=
  for r in "${splits[@]}"; do
    m=$(echo "${times[$r]}" | median)
    [ -z "$best" ] || awk "BEGIN{exit !($m < $best)}" && best=$m
  done
  for r in "${splits[@]}"; do
    m=$(echo "${times[$r]}" | median)
    printf '%6d %6d %8d %10.2f %9.2f\n' "$w" "$r" $((CORES / r)) "$m" "$(awk "BEGIN{print $m / $best}")"
  done
  unset times
done
