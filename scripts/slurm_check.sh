#!/bin/bash
# scripts/slurm_check.sh: prove jobs/sharpsweep.slurm on a real (throwaway) Slurm.
#
#   sudo BIN=target/release/sharpsweep bash scripts/slurm_check.sh
#
# A documented check, not part of scripts/test.sh: it needs root on a Debian/Ubuntu machine
# with at least 2 cores, installs packages (slurmctld slurmd slurm-client munge
# python3-h5py, daemons kept from auto-starting), and starts its own munged, slurmctld and
# slurmd on a private socket and private ports (16817/16818, or PORT_BASE/PORT_BASE+1),
# all under one temporary directory; it stops them and removes the directory when it ends
# (KEEP=1 keeps the directory and its logs; it is kept anyway when a check fails). The
# binary must be built against the machine's MPI (Debian's OpenMPI: libopenmpi-dev).
# It takes about five minutes on 2 cores.
#
# The Slurm is a stock one: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# JobAcctGatherType=jobacct_gather/none and MpiDefault=none (so the job script has to
# choose srun's --mpi itself). Only the timing knobs are shortened: OverTimeLimit=0,
# KillWait=10, AuthInfo cred_expire=10 (how long a requeued job waits before it may start
# again; 120 s by default), a 1 s scheduler interval.
#
# What it checks (each job submits jobs/sharpsweep.slurm unchanged, with sbatch options
# and --export variables only):
#  1. a job whose --time (1 min) is not longer than DRAIN_LEAD (600 s) fails at once with
#     a message, and is not requeued;
#  2. a job whose first unit of work is longer than its whole --time reaches the limit with
#     no run finished: the TERM trap says to raise --time or shrink the runs, and does not
#     requeue it;
#  3. the sweep of scripts/slurm_check.toml (378 runs) with --time=1 and DRAIN_LEAD=35:
#     starts drain at their deadline and requeue (at least two drains and requeues in
#     all; usually four or five starts), and one start reaches the time limit mid-drain (its rank 1 is frozen with SIGSTOP a few seconds into the second
#     start, standing for a run longer than DRAIN_LEAD; Slurm's SIGCONT+SIGTERM at the limit
#     ends it) and is still requeued; the job ends COMPLETED, and the file equals an
#     uninterrupted sweep (one process, no Slurm) in every variable but `seconds` and in
#     every attribute but the provenance ones (history, ranks, slurm_job_id, versions,
#     CPU; the config text is compared without its [output] path).
set -euo pipefail

T0=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(readlink -f "${BIN:-$REPO/target/release/sharpsweep}")
JOB_SCRIPT="$REPO/jobs/sharpsweep.slurm"
CONFIG="$REPO/scripts/slurm_check.toml"
PORT_BASE="${PORT_BASE:-16817}"
KEEP="${KEEP:-0}"
LEAD=35

say() { echo "slurm_check [$(($(date +%s) - T0))s] $*"; }
die() {
  echo "slurm_check: FAILED: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons)"
[ -x "$BIN" ] || die "no binary at $BIN: build it (cargo build --release --locked) or set BIN"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu machine (apt-get)"

WORK=$(mktemp -d /tmp/slurm_check.XXXXXX)
chmod 755 "$WORK"
POLICY_RC_CREATED=0
DAEMON_PIDFILES=()
ok=0

cleanup() {
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ -e "${SLURM_CONF}" ] && [ -e "$WORK/slurmctld.pid" ]; then
    scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  # Stop the daemons this script started, newest first, by their PID files.
  local i pidfile pid
  for ((i = ${#DAEMON_PIDFILES[@]} - 1; i >= 0; i--)); do
    pidfile="${DAEMON_PIDFILES[i]}"
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null
    for _ in $(seq 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  if [ -n "${REF_PID:-}" ] && kill -0 "$REF_PID" 2>/dev/null; then kill "$REF_PID" 2>/dev/null; fi
  [ "$POLICY_RC_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$ok" = 1 ] && [ "$KEEP" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "slurm_check: logs and files kept in $WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages ---------------------------------------------------------------------------
pkgs=()
for p in slurmctld slurmd slurm-client munge python3-h5py; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
done
if [ "${#pkgs[@]}" -gt 0 ]; then
  say "installing ${pkgs[*]} (daemons kept from starting)"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  if [ "$POLICY_RC_CREATED" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=0
  fi
fi
PLUGINDIR=$(dirname "$(find /usr/lib /usr/lib64 -name 'proctrack_linuxproc.so' -print -quit 2>/dev/null)")
[ -d "$PLUGINDIR" ] || die "no Slurm plugin directory found"

# --- munged, slurmctld, slurmd ----------------------------------------------------------
NODE=$(hostname -s)
CPUS=$(nproc)
[ "$CPUS" -ge 2 ] || die "needs at least 2 cores (the sweep job runs 2 ranks)"
mkdir -p "$WORK/munge" "$WORK/ctld" "$WORK/spool" "$WORK/out"
chmod 755 "$WORK/munge"
head -c 1024 /dev/urandom >"$WORK/munge/munge.key"
chmod 600 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/socket" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
  --seed-file="$WORK/munge/munged.seed"
DAEMON_PIDFILES+=("$WORK/munge/munged.pid")

cat >"$WORK/slurm.conf" <<EOF
ClusterName=sharpsweepcheck
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
SlurmUser=root
SlurmdUser=root
PluginDir=$PLUGINDIR
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/socket,cred_expire=10
StateSaveLocation=$WORK/ctld
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
KillWait=10
OverTimeLimit=0
MinJobAge=3600
InactiveLimit=0
ReturnToService=2
JobRequeue=0
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=check Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
# Nothing from a surrounding Slurm job or site setup leaks into this one.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SLURM_' || true)
export SLURM_CONF="$WORK/slurm.conf"
slurmctld -c -f "$SLURM_CONF"
DAEMON_PIDFILES+=("$WORK/slurmctld.pid")
slurmd -N "$NODE" -f "$SLURM_CONF"
DAEMON_PIDFILES+=("$WORK/slurmd.pid")
for _ in $(seq 60); do
  [ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" = idle ] && break
  sleep 1
done
[ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" = idle ] || die "the node did not come up (see $WORK/slurmd.log)"
say "Slurm $(sinfo -V | awk '{print $2}') up: node $NODE, $CPUS CPUs, MpiDefault=none; srun --mpi=list: $(srun --mpi=list 2>&1 | grep -v 'types are' | tr -s ' \t\n' ' ')"

# --- helpers ----------------------------------------------------------------------------
job_field() { # JOBID FIELD -> value from scontrol show job (empty if unknown)
  local out w words
  out=$(scontrol -o show job "$1" 2>/dev/null) || return 0
  read -ra words <<<"$out"
  for w in "${words[@]}"; do
    case "$w" in "$2="*) echo "${w#*=}"; return 0 ;; esac
  done
}
wait_job_end() { # JOBID SECONDS: wait for a final state that is not a requeue
  local j="$1" limit="$2" t=0 st
  while [ "$t" -lt "$limit" ]; do
    st=$(job_field "$j" JobState)
    case "$st" in COMPLETED | FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY) echo "$st"; return 0 ;; esac
    sleep 1
    t=$((t + 1))
  done
  echo "STILL-${st:-UNKNOWN}"
  return 1
}
# --signal is DRAIN_LEAD minus 30 s: Slurm 22.05 sends it up to 30 s early (it checks
# limits every 30 s), and as a backup it should not come before the deadline.
submit() { # NAME TIME LEAD CONFIG OUT NTASKS
  sbatch --parsable --job-name="check-$1" --time="$2" --ntasks="$6" --cpus-per-task=1 \
    --signal="B:USR1@$(($3 > 30 ? $3 - 30 : 1))" --output="$WORK/out/$1-%j.out" --error="$WORK/out/$1-%j.err" \
    --chdir="$WORK" \
    --export="ALL,CONFIG=$4,OUT=$5,BIN=$BIN,DRAIN_LEAD=$3" "$JOB_SCRIPT"
}

# A sweep whose first unit of work (lambda0 of its only network: 100 Hessian-vector
# products over 16384 examples, a few minutes) outlasts the whole --time=1.
cat >"$WORK/long.toml" <<'EOF'
[data]
dataset = "synthetic"
synthetic_input_dim = 1024
n_train = 16384
[model]
depth = [4]
width = [1024]
[train]
batch_size = 256
steps = 10
seeds = [1]
[sharpness]
measure_n = 16384
tol = 1e-9
[grid]
c = [1.0]
EOF

# --- phase 1: the two jobs that must not loop, and the reference sweep ------------------
dry=$("$BIN" sweep "$CONFIG" --dry-run)
say "reference: uninterrupted sweep of $(basename "$CONFIG") (${dry%%;*}), one process, in the background"
"$BIN" sweep "$CONFIG" --out "$WORK/reference.h5" --threads 1 --quiet >"$WORK/reference.log" 2>&1 &
REF_PID=$!

J_SHORT=$(submit short 1 600 "$CONFIG" "$WORK/short.h5" 1)
J_LONG=$(submit long 1 "$LEAD" "$WORK/long.toml" "$WORK/long.h5" 1)
say "job $J_SHORT: --time=1 with the default DRAIN_LEAD=600; job $J_LONG: one run longer than --time=1"
st_short=$(wait_job_end "$J_SHORT" 60) || die "job $J_SHORT did not end: $st_short"
say "job $J_SHORT: $st_short, restarts $(job_field "$J_SHORT" Restarts): $(grep -h -m1 -o 'only [0-9]*s of this job.*DRAIN_LEAD=600s' "$WORK"/out/short-*.err || true)"
[ "$st_short" = FAILED ] || die "job $J_SHORT should have FAILED at once, ended $st_short"
grep -q 'Raise --time above DRAIN_LEAD' "$WORK"/out/short-*.err || die "job $J_SHORT: no message about --time and DRAIN_LEAD"

st_long=$(wait_job_end "$J_LONG" 150) || die "job $J_LONG did not end: $st_long"
r_long=$(job_field "$J_LONG" Restarts)
say "job $J_LONG: $st_long, restarts $r_long: $(grep -h -m1 -o 'finished no run.*Not requeued' "$WORK"/out/long-*.err || true)"
[ "$r_long" = 0 ] || die "job $J_LONG was requeued $r_long times; it must stop after the first start"
grep -q 'SIGTERM at the time limit' "$WORK"/out/long-*.out || die "job $J_LONG: the TERM trap did not run at the limit"
grep -q 'finished no run.*reached the time limit.*Raise --time' "$WORK"/out/long-*.err ||
  die "job $J_LONG: no message saying to raise --time or shrink the runs"
case "$st_long" in TIMEOUT | FAILED) ;; *) die "job $J_LONG ended $st_long" ;; esac

# --- phase 2: the sweep, drained and requeued, one start frozen past its limit ----------
J=$(submit sweep 1 "$LEAD" "$CONFIG" "$WORK/sweep.h5" 2)
say "job $J: sweep with --time=1, DRAIN_LEAD=$LEAD, 2 ranks"
froze=""
state=""
for _ in $(seq 600); do
  state=$(job_field "$J" JobState)
  case "$state" in COMPLETED | FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  if [ -z "$froze" ] && [ "$state" = RUNNING ] && [ "$(job_field "$J" Restarts)" = 1 ]; then
    pid=$(scontrol listpids "$J.0" 2>/dev/null | awk '$5 == "1" { print $1; exit }' || true)
    if [ -n "$pid" ]; then
      sleep 3
      if kill -STOP "$pid" 2>/dev/null; then
        froze=$pid
        say "job $J start 1: froze rank 1 (pid $pid) mid-run: the drain at the deadline has to wait for it past the limit"
      fi
    fi
  fi
  sleep 1
done
starts=$(grep -c ' start [0-9]*: ' "$WORK/out/sweep-$J.out" || true)
say "job $J: $state after $starts starts, restarts $(job_field "$J" Restarts)"
echo "----- job $J log (.out) -----"
cat "$WORK/out/sweep-$J.out"
echo "-----"
[ "$state" = COMPLETED ] || die "job $J ended $state, not COMPLETED (see $WORK/out)"
[ -n "$froze" ] || die "never caught start 1 of job $J running to freeze a rank"
drained=$(grep -c 'requeued job .*(had to stop' "$WORK/out/sweep-$J.out" || true)
at_limit=$(grep -c 'requeued job .*(reached the time limit)' "$WORK/out/sweep-$J.out" || true)
[ "$drained" -ge 1 ] || die "expected a start drained at its deadline and requeued, saw none"
[ "$at_limit" -ge 1 ] || die "expected a start requeued at the time limit, saw none"
[ $((drained + at_limit)) -ge 2 ] || die "expected at least 2 drains followed by a requeue"
# Mid-drain: in that start the deadline (the drain) came before the SIGTERM of the limit.
mid=$(awk '
  / start [0-9]+: / { dl = "" }
  /runs are handed out until/ { if (match($0, /until [0-9TZ:-]+/)) dl = substr($0, RSTART + 6, RLENGTH - 6) }
  /SIGTERM at the time limit/ { if (dl != "" && $1 > dl) { print "deadline " dl ", SIGTERM " $1; exit } }
' "$WORK/out/sweep-$J.out")
[ -n "$mid" ] || die "no start where the limit came after the deadline (mid-drain)"
grep -q 'srun --mpi=pmix' "$WORK/out/sweep-$J.out" || die "the job did not choose srun --mpi=pmix"

say "waiting for the reference sweep"
wait "$REF_PID" || die "the reference sweep failed: $(tail -n3 "$WORK/reference.log")"
REF_PID=""
summary=$("$BIN" inspect "$WORK/sweep.h5")
grep 'runs: ' <<<"$summary"

python3 - "$WORK/reference.h5" "$WORK/sweep.h5" <<'EOF'
import sys
import h5py
import numpy as np

SKIP_VARS = {"seconds"}
PROVENANCE = {"history", "ranks", "slurm_job_id", "program_version", "git_commit",
              "mpi_version", "hdf5_version", "cpu_features"}
DIM_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST"}  # object references, checked via .dims

ref, got = (h5py.File(p, "r") for p in sys.argv[1:3])
problems, compared = [], []

def attrs_of(obj, skip):
    return {k: obj.attrs[k] for k in obj.attrs if k not in skip and k not in DIM_ATTRS}

def same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.dtype.kind in "fc":
        return np.array_equal(x, y, equal_nan=True)
    return np.array_equal(x, y)

def names(f):
    out = []
    f.visit(out.append)
    return sorted(out)

if names(ref) != names(got):
    problems.append(f"objects differ: {sorted(set(names(ref)) ^ set(names(got)))}")
ra, ga = attrs_of(ref, PROVENANCE), attrs_of(got, PROVENANCE)
if sorted(ra) != sorted(ga):
    problems.append(f"root attributes differ: {sorted(set(ra) ^ set(ga))}")
def without_output_path(text):
    """The config text minus [output] path (the file's own name, not part of its hash)."""
    if isinstance(text, bytes):
        text = text.decode()
    out, section = [], ""
    for line in str(text).splitlines():
        if line.strip().startswith("["):
            section = line.strip()
        if not (section == "[output]" and line.strip().startswith("path")):
            out.append(line)
    return "\n".join(out)

if "config" in ra and "config" in ga:
    ra["config"], ga["config"] = without_output_path(ra["config"]), without_output_path(ga["config"])
for k in sorted(set(ra) & set(ga)):
    if not same(ra[k], ga[k]):
        problems.append(f"root attribute {k} differs")
for name in names(ref):
    a, b = ref[name], got.get(name)
    if not isinstance(a, h5py.Dataset) or b is None:
        continue
    dims_a = [[s.name for s in d.values()] for d in a.dims]
    dims_b = [[s.name for s in d.values()] for d in b.dims]
    if dims_a != dims_b:
        problems.append(f"{name}: dimensions {dims_a} != {dims_b}")
    aa, ba = attrs_of(a, set()), attrs_of(b, set())
    if sorted(aa) != sorted(ba) or any(not same(aa[k], ba[k]) for k in aa):
        problems.append(f"{name}: attributes differ")
    if name in SKIP_VARS:
        if a.shape != b.shape:
            problems.append(f"{name}: shape {a.shape} != {b.shape}")
        continue
    if not same(a[()], b[()]):
        problems.append(f"{name}: values differ")
    compared.append(name)

status = got["status"][()]
if (status == 0).any():
    problems.append(f"{int((status == 0).sum())} runs still pending")
if problems:
    print("compare: DIFFERENT\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"compare: identical to the uninterrupted sweep in {len(compared)} variables "
      f"({', '.join(compared)}) and all non-provenance attributes; `seconds` skipped; "
      f"{len(status)} runs, none pending")
EOF

say "PASSED: $starts starts; $drained drained at the deadline and requeued, $at_limit requeued at the time limit mid-drain ($mid); too-short --time and too-long run both stopped with a message; $(($(date +%s) - T0))s"
ok=1
