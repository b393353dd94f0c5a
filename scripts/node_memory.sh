#!/usr/bin/env bash
# Memory and start-up time of a sweep on one node, per rank and for the node.
#
#   scripts/node_memory.sh BIN NP CONFIG [extra sweep args...]
#
# Starts `mpirun -np NP BIN sweep CONFIG --out <tmp> --quiet` (NP = 0: BIN without mpirun),
# samples every rank's /proc/PID/status (VmHWM: peak RSS) and /proc/PID/smaps_rollup (Pss:
# resident memory with each shared page divided among the processes that map it) every
# 50 ms, and prints one line:
#   np=NP wall_s=.. peak_rss_mb_per_rank=max,.. peak_pss_mb_per_rank=max,.. node_pss_mb=..
# node_pss_mb is the largest sum of the ranks' PSS seen at one sample: the node's memory.
# RSS counts a shared page in every process that maps it; PSS and the node sum do not.
# Set SHARPSWEEP_DATA_PER_RANK=1 to measure per-rank dataset copies.
set -euo pipefail
bin=$(realpath "$1"); np=$2; cfg=$(realpath "$3"); shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
start=$(date +%s.%N)
if [ "$np" = 0 ]; then
  "$bin" sweep "$cfg" --out out.h5 --quiet "$@" &
else
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_btl_vader_single_copy_mechanism=none \
    mpirun -np "$np" --oversubscribe --bind-to none \
    -x SHARPSWEEP_DATA_PER_RANK "$bin" sweep "$cfg" --out out.h5 --quiet "$@" &
fi
launcher=$!
declare -A hwm pss
node=0
# The ranks: processes running BIN that descend from the launcher (mpirun forks them).
ranks() {
  local all=$launcher frontier=$launcher kids
  while [ -n "$frontier" ]; do
    kids=$(for p in $frontier; do cat /proc/"$p"/task/*/children 2>/dev/null; done | xargs)
    all="$all $kids"; frontier=$kids
  done
  for p in $all; do
    [ "$(readlink /proc/"$p"/exe 2>/dev/null)" = "$bin" ] && echo "$p"
  done
  return 0
}
while kill -0 "$launcher" 2>/dev/null; do
  sum=0
  for p in $(ranks); do
    h=$(awk '/^VmHWM:/ {print $2}' /proc/"$p"/status 2>/dev/null || true)
    s=$(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || true)
    [ -n "$h" ] && [ "$h" -gt "${hwm[$p]:-0}" ] && hwm[$p]=$h
    [ -n "$s" ] && { [ "$s" -gt "${pss[$p]:-0}" ] && pss[$p]=$s; sum=$((sum + s)); }
  done
  [ "$sum" -gt "$node" ] && node=$sum
  sleep 0.05
done
wait "$launcher"
end=$(date +%s.%N)
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
list() { local out="" v; for v in "$@"; do out="$out$(mb "$v"),"; done; echo "${out%,}"; }
echo "np=$np wall_s=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')" \
  "peak_rss_mb_per_rank=$(list "${hwm[@]}")" "peak_pss_mb_per_rank=$(list "${pss[@]}")" \
  "node_pss_mb=$(mb "$node")"
