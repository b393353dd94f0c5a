#!/usr/bin/env bash
# The issue-20 measurements for a 16-core machine (one socket) that has its own Open MPI 4.x
# and python3 (h5py, JAX) but no Rust and no HDF5 C library.
#
#   bash benches/device.sh pack [BIN] [DIR]   # here: BIN (target/release/sharpsweep) and the
#                                             # non-MPI shared libraries it needs into DIR
#                                             # (target/device), then `--version` from DIR
#   bash benches/device.sh run [--quick] [DIR]  # there: the table of issue 20
#
# pack copies the binary to DIR/bin and the shared-library closure of its non-MPI direct
# dependencies (HDF5 and what HDF5 needs) to DIR/lib. It leaves out the MPI libraries
# (libmpi, libopen-*, libpmix and what only they need, hwloc, libevent, libudev: the machine's own Open MPI must serve
# its own mpirun; overwriting it breaks its PMIx) and glibc. Nothing is installed: run uses
# LD_LIBRARY_PATH=DIR/lib for sharpsweep only (passed to the ranks with mpirun -x).
#
# run measures, on CORES cores (default: all): the demo trajectory (depth 8, synthetic
# CIFAR-shaped data: 3072-d inputs, n = 50,000, measurement set 4096, B = 512, c = 2, f32,
# sharpness after every step) at w = 512, 1024, 2048 with 1, 4 and 16 threads (one process,
# `sweep --threads T`, one task); the same trajectory in JAX with the authors' method on the
# same cores when `import jax` works (benches/jax_reference.py --synthetic); and a weak-scaling
# sweep: one run on 1 rank against 16 runs of the same cost on 16 ranks (one thread each).
# The full run takes far more than 10 minutes (one thread at w = 2048 alone is ~30 min);
# --quick runs 2 SGD steps (3 sharpness measurements) instead of 10, one thread only at
# w = 512 and 1024, and JAX at w = 512: a few minutes. Per-step times and speed-ups compare
# within one mode; HVP counts come from the results file.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true

pack() {
    local bin=${1:-target/release/sharpsweep} dir=${2:-target/device}
    rm -rf "$dir"; mkdir -p "$dir/bin" "$dir/lib"
    cp "$bin" "$dir/bin/sharpsweep"; strip "$dir/bin/sharpsweep" 2>/dev/null || true
    # MPI (served by the target's own Open MPI) and glibc (the target's own) stay out.
    local skip='^(libmpi|libopen-|libpmix|libhwloc|libevent|libudev|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libutil\.|libresolv\.|ld-linux|linux-vdso)'
    local direct lib
    direct=$(objdump -p "$bin" | awk '/NEEDED/{print $2}' | grep -Ev "$skip" || true)
    for lib in $direct; do
        path=$(ldd "$bin" | awk -v l="$lib" '$1==l{print $3}')
        [ -n "$path" ] || { echo "pack: $lib not found" >&2; exit 1; }
        echo "$path"; ldd "$path" | awk '/=> \//{print $3}'
    done | sort -u | while read -r path; do
        basename "$path" | grep -Eq "$skip" && continue
        cp -L "$path" "$dir/lib/$(basename "$path")"
    done
    echo "packed into $dir: $(ls "$dir/lib" | wc -l) libraries, $(du -sh "$dir" | cut -f1)"
    ls "$dir/lib" | tr '\n' ' '; echo
    # Every library the binary loads outside MPI and glibc now comes from DIR/lib.
    local stray
    stray=$(LD_LIBRARY_PATH="$dir/lib" ldd "$dir/bin/sharpsweep" | awk '/=> \//{print $1, $3}' |
        grep -Ev "$skip" | grep -v " $(cd "$dir/lib" && pwd)/" || true)
    [ -z "$stray" ] || { echo "pack: not from $dir/lib: $stray" >&2; exit 1; }
    LD_LIBRARY_PATH="$dir/lib" "$dir/bin/sharpsweep" --version
}

config() { # width steps n
    cat <<TOML
[data]
dataset = "synthetic"
n_train = $3
[model]
depth = [8]
width = [$1]
[train]
batch_size = 512
steps = $2
seeds = [1]
[sharpness]
measure_n = 4096
[grid]
c = [2.0]
TOML
}

# Sum of the `hvps` variable of a results file (every measurement, λ₀ included).
hvps() {
    python3 -c "import h5py,numpy,sys; f=h5py.File(sys.argv[1],'r'); h=numpy.asarray(f['hvps'][...]); print(int(h[h>0].sum()))" "$1" 2>/dev/null || echo '?'
}

run() {
    local quick=0
    if [ "${1:-}" = --quick ]; then quick=1; shift; fi
    local dir=${1:-target/device}
    local bin="$dir/bin/sharpsweep" lib; lib=$(cd "$dir/lib" && pwd)
    local cores=${CORES:-$(nproc)}
    local work; work=$(mktemp -d); trap "rm -rf '$work'" EXIT
    # WIDTHS, N and STEPS override the sizes (for a smoke test of this script on a small machine).
    local steps=${STEPS:-10} n=${N:-50000} widths=${WIDTHS:-"512 1024 2048"}
    [ $quick = 1 ] && steps=${STEPS:-2}
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    echo "== $(LD_LIBRARY_PATH=$lib $bin --version); $cores cores; $(mpirun --version 2>&1 | head -1); steps $steps"
    declare -A secs hv
    local t w
    for w in $widths; do
        config "$w" "$steps" "$n" > "$work/w$w.toml"
        for t in 16 4 1; do
            [ "$t" -gt "$cores" ] && continue
            if [ $quick = 1 ] && [ "$t" = 1 ] && [ "$w" = 2048 ]; then continue; fi
            if [ $quick = 0 ] && [ "$t" = 1 ] && [ "$w" = 2048 ] && [ -z "${FULL_W2048_T1:-}" ]; then
                continue # ~30 min; FULL_W2048_T1=1 to include it
            fi
            local s0 s1; s0=$(date +%s.%N)
            LD_LIBRARY_PATH=$lib "$bin" sweep "$work/w$w.toml" --threads "$t" \
                --out "$work/w$w-t$t.h5" --force --quiet
            s1=$(date +%s.%N)
            secs[$w,$t]=$(awk "BEGIN{printf \"%.1f\", $s1-$s0}")
            hv[$w,$t]=$(hvps "$work/w$w-t$t.h5")
            echo "w $w, $t threads: ${secs[$w,$t]} s, ${hv[$w,$t]} HVPs"
        done
    done
    local jax=""
    if python3 -c 'import jax' 2>/dev/null; then
        local jw=512
        echo "== JAX reference (authors' method, 20 Lanczos steps), w $jw, $cores cores (CPU)"
        jax=$(JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=1" \
            taskset -c "0-$((cores - 1))" python3 benches/jax_reference.py --synthetic \
            --depth 8 --width $jw --n "$n" --m 4096 --c 2 --steps "$steps" --repeats 1 \
            | tee /dev/stderr | sed -n 's/^reference trajectory: median \([0-9.]*\) s.*/\1/p')
    else
        echo "== JAX reference: not run (python3 cannot import jax)"
    fi
    # Weak scaling: 1 rank with one run, then `cores` ranks with `cores` runs of the same
    # cost (one per init seed), one thread each.
    local ws="$work/weak.toml" seeds
    seeds=$(seq -s, 1 "$cores")
    config 256 "$steps" 8192 | sed "s/^seeds = .*/seeds = [1]/; s/^depth = .*/depth = [4]/" > "$work/weak1.toml"
    sed "s/^seeds = .*/seeds = [$seeds]/" "$work/weak1.toml" > "$ws"
    local w1 wn s0 s1
    s0=$(date +%s.%N)
    mpirun -np 1 --bind-to core -x LD_LIBRARY_PATH="$lib" "$bin" sweep "$work/weak1.toml" \
        --out "$work/weak1.h5" --force --quiet
    s1=$(date +%s.%N); w1=$(awk "BEGIN{print $s1-$s0}")
    s0=$(date +%s.%N)
    mpirun -np "$cores" --bind-to core -x LD_LIBRARY_PATH="$lib" "$bin" sweep "$ws" \
        --out "$work/weakn.h5" --force --quiet
    s1=$(date +%s.%N); wn=$(awk "BEGIN{print $s1-$s0}")

    echo
    echo "| width | 1 thread | 4 threads | 16 threads | 16 threads vs 1 | JAX, same cores |"
    echo "|---|---|---|---|---|---|"
    for w in $widths; do
        local one=${secs[$w,1]:-} four=${secs[$w,4]:-} six=${secs[$w,16]:-} sp="—" j="—"
        [ -n "$one" ] && [ -n "$six" ] && sp=$(awk "BEGIN{printf \"%.1f×\", $one/$six}")
        [ "$w" = 512 ] && [ -n "$jax" ] && [ -n "$six" ] &&
            j="$jax s ($(awk "BEGIN{printf \"%.2f×\", $jax/$six}") sharpsweep's time)"
        echo "| $w | ${one:+$one s} | ${four:+$four s} | ${six:+$six s (${hv[$w,16]} HVPs)} | $sp | $j |"
    done
    echo
    printf 'weak scaling (d 4, w 256, one thread per rank): 1 rank %.1f s, %d ranks %.1f s: a run takes %.2f× its time alone\n' \
        "$w1" "$cores" "$wn" "$(awk "BEGIN{print $wn/$w1}")"
}

case "$mode" in
pack) pack "$@" ;;
run) run "$@" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
