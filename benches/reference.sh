#!/usr/bin/env bash
# sharpsweep's whole trajectory (benches/trajectory.rs, k = 1, warm and cold) against an
# independent JAX reference with the authors' method (benches/jax_reference.py: jvp-of-grad
# HVP, 20 Lanczos steps per measurement), both on one core of this machine, one after the
# other in the same run. JAX is installed from PyPI into target/jax-venv the first time
# (needs network once); its compile time is excluded.
#
#   bash benches/reference.sh            # REPEATS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS="${REPEATS:-3}"
VENV=target/jax-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "jax[cpu]"
fi
CORE="${CORE:-0}"
echo "== sharpsweep (cargo bench --bench trajectory, k = 1), core $CORE"
SHARPSWEEP_BENCH_TOPK=0 SHARPSWEEP_BENCH_REPEATS="$REPEATS" \
    taskset -c "$CORE" cargo bench --quiet --bench trajectory
echo "== JAX reference (authors' method), core $CORE"
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
    taskset -c "$CORE" "$VENV/bin/python" benches/jax_reference.py --repeats "$REPEATS"
