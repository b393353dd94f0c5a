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
# It takes about five to six minutes on 2 idle cores; longer on a busy machine (every wait
# has a generous limit, and no check depends on how fast the machine is).
#
# The Slurm is a stock one: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# JobAcctGatherType=jobacct_gather/none and MpiDefault=none (so the job script has to
# choose srun's --mpi itself). Only the timing knobs are shortened: OverTimeLimit=0,
# KillWait=10, AuthInfo cred_expire=10 (how long a requeued job waits before it may start
# again; 120 s by default), a 1 s scheduler interval.
#
# What it checks (each job submits jobs/sharpsweep.slurm unchanged, with sbatch options
# and --export variables only). The jobs with --time=1 use DRAIN_LEAD=35 and
# --signal=B:USR1@5 (DRAIN_LEAD - 30, as jobs/sharpsweep.slurm): Slurm 22.05 sends the
# signal 1 to 30 s early (it checks limits every 30 s), so this backup never comes before
# the deadline; the limit's SIGTERM comes up to about 25 s late.
#  1. a job whose --time (1 min) is not longer than the script's default DRAIN_LEAD fails
#     at once with a message, and is not requeued;
#  2. a job whose first unit of work is longer than its whole --time reaches the limit with
#     no run finished: the TERM trap says to raise --time or shrink the runs, and does not
#     requeue it;
#  3. a job of 48 runs of a few seconds each (one network), more than a start can do: a
#     start ends before its deadline by the sweep's own prediction ("stopped before the
#     deadline", exit 3) and is requeued, and no start reaches the time limit. The
#     prediction has a 1.5x margin, which a sudden slowdown of the machine can beat, so
#     one such start among the first three is required, not each. Then the job is
#     cancelled while a start runs: its ranks drain on the SIGTERM and exit 3 as after a
#     deadline, and it must end CANCELLED, not requeue itself;
#  4. the sweep of scripts/slurm_check.toml (378 runs) with --time=1 and 2 ranks: starts
#     end at or just before their deadline (exit 3) and are requeued, and one start
#     reaches the time limit mid-drain: its rank 1 is frozen with SIGSTOP once that start
#     has finished two runs (so that it made progress), standing for a run that takes far
#     longer than predicted; Slurm's SIGCONT+SIGTERM at the limit ends it, and it is still
#     requeued. At least two requeues in all (usually four to six starts). The job ends
#     COMPLETED with no journal left beside the file, and the file equals an uninterrupted
#     sweep (one process, no Slurm, at nice 19 so that it only takes the CPU the jobs
#     leave) in every variable but the wall-clock `seconds` and in every attribute but
#     the provenance ones (history, ranks, slurm_job_id, versions, CPU; the config text
#     is compared without its [output] path).
set -euo pipefail

T0=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(readlink -f "${BIN:-$REPO/target/release/sharpsweep}")
JOB_SCRIPT="$REPO/jobs/sharpsweep.slurm"
CONFIG="$REPO/scripts/slurm_check.toml"
PORT_BASE="${PORT_BASE:-16817}"
KEEP="${KEEP:-0}"
LEAD=35
# The job script's default DRAIN_LEAD, for check 1.
DEFAULT_LEAD=$(sed -n 's/^DRAIN_LEAD=.*:-\([0-9][0-9]*\)}.*/\1/p' "$JOB_SCRIPT")

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
froze=""
REF_PID=""

cleanup() {
  set +e
  # A rank this script froze (a check failed before Slurm's SIGCONT) is let go first.
  if [ -n "$froze" ]; then kill -CONT "$froze" 2>/dev/null; fi
  if [ -n "${SLURM_CONF:-}" ] && [ -e "${SLURM_CONF}" ] && [ -e "$WORK/slurmctld.pid" ]; then
    scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 60); do
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
  if [ -n "$REF_PID" ] && kill -0 "$REF_PID" 2>/dev/null; then kill "$REF_PID" 2>/dev/null; fi
  # Nothing of this check may outlive it (a job the daemons did not finish leaves its
  # slurmstepd, batch shell, srun and ranks behind): every process with this Slurm's
  # config in its environment, or $WORK in its command line, is ended by its PID. Read with
  # builtins only, so that the search never finds itself.
  local conf="SLURM_CONF=$WORK/slurm.conf" left=() words=() w
  unset SLURM_CONF
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    [ "$pid" = "$$" ] && continue
    words=()
    mapfile -d '' -t words 2>/dev/null <"/proc/$pid/environ"
    for w in "${words[@]}"; do
      if [ "$w" = "$conf" ]; then left+=("$pid"); continue 2; fi
    done
    words=()
    mapfile -d '' -t words 2>/dev/null <"/proc/$pid/cmdline"
    if [[ " ${words[*]} " == *"$WORK/"* ]]; then left+=("$pid"); fi
  done
  if [ "${#left[@]}" -gt 0 ]; then
    echo "slurm_check: ending leftover processes of this check: ${left[*]}" >&2
    kill -CONT "${left[@]}" 2>/dev/null
    kill -TERM "${left[@]}" 2>/dev/null
    for _ in $(seq 10); do
      kill -0 "${left[@]}" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "${left[@]}" 2>/dev/null
  fi
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
is_final() { # STATE: a final state that is not a requeue
  case "$1" in COMPLETED | FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY) return 0 ;; esac
  return 1
}
wait_job_end() { # JOBID SECONDS: wait (by the clock) for a final state
  local j="$1" until=$(($(date +%s) + $2)) st=""
  while [ "$(date +%s)" -lt "$until" ]; do
    st=$(job_field "$j" JobState)
    if is_final "$st"; then echo "$st"; return 0; fi
    sleep 1
  done
  echo "STILL-${st:-UNKNOWN}"
  return 1
}
count() { # REGEX FILE: matching lines (0 when the file does not exist yet)
  local n
  n=$(grep -c -- "$1" "$2" 2>/dev/null) || true
  echo "${n:-0}"
}
finished_runs() { # FILE: done + diverged + failed from `inspect` (journal included); 0 if unreadable
  "$BIN" inspect "$1" 2>/dev/null | awk '
    match($0, /runs: [0-9]+ \([0-9]+ done, [0-9]+ diverged, [0-9]+ failed/) {
      split(substr($0, RSTART, RLENGTH), a, /[^0-9]+/); n = a[3] + a[4] + a[5]; exit
    }
    END { print n + 0 }'
}
seconds_between() { # ISO-TIME ISO-TIME: the second minus the first, in seconds
  echo $(($(date -u -d "$2" +%s) - $(date -u -d "$1" +%s)))
}
# --signal is DRAIN_LEAD minus 30 s, as in jobs/sharpsweep.slurm: Slurm 22.05 sends it 1
# to 30 s early (it checks limits every 30 s), and as a backup it should not come before
# the deadline.
submit() { # NAME TIME LEAD CONFIG OUT NTASKS
  sbatch --parsable --job-name="check-$1" --time="$2" --ntasks="$6" --cpus-per-task=1 \
    --signal="B:USR1@$(($3 > 30 ? $3 - 30 : 1))" --output="$WORK/out/$1-%j.out" --error="$WORK/out/$1-%j.err" \
    --chdir="$WORK" \
    --export="ALL,CONFIG=$4,OUT=$5,BIN=$BIN,DRAIN_LEAD=$3" "$JOB_SCRIPT"
}

# 48 runs of one network (one λ0), a few seconds each, far more than one start can do
# even on a fast machine; c is small so that none diverges and they all take about the
# same time.
cat >"$WORK/pred.toml" <<'EOF'
[data]
dataset = "synthetic"
synthetic_input_dim = 256
n_train = 2048
[model]
depth = [3]
width = [256]
[train]
batch_size = 128
steps = 40
seeds = [1]
sgd_seeds = [1, 2, 3]
[sharpness]
measure_n = 2048
[grid]
c = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]
EOF

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

# --- phase 1: the jobs that must not loop, the prediction, and the reference sweep ------
dry=$("$BIN" sweep "$CONFIG" --dry-run)
say "reference: uninterrupted sweep of $(basename "$CONFIG") (${dry%%;*}), one process at nice 19, in the background"
nice -n 19 "$BIN" sweep "$CONFIG" --out "$WORK/reference.h5" --threads 1 --quiet >"$WORK/reference.log" 2>&1 &
REF_PID=$!

if [ -z "$DEFAULT_LEAD" ] || [ "$DEFAULT_LEAD" -lt 60 ]; then
  die "cannot read a default DRAIN_LEAD of at least 60 s from $JOB_SCRIPT (got '$DEFAULT_LEAD')"
fi
J_SHORT=$(submit short 1 "$DEFAULT_LEAD" "$CONFIG" "$WORK/short.h5" 1)
J_LONG=$(submit long 1 "$LEAD" "$WORK/long.toml" "$WORK/long.h5" 1)
J_PRED=$(submit pred 1 "$LEAD" "$WORK/pred.toml" "$WORK/pred.h5" 1)
say "job $J_SHORT: --time=1 with the default DRAIN_LEAD=$DEFAULT_LEAD; job $J_LONG: one run longer than --time=1; job $J_PRED: runs of a few seconds, more than a start can do"
st_short=$(wait_job_end "$J_SHORT" 90) || die "job $J_SHORT did not end: $st_short"
say "job $J_SHORT: $st_short, restarts $(job_field "$J_SHORT" Restarts): $(grep -h -m1 -o "only [0-9]*s of this job.*DRAIN_LEAD=${DEFAULT_LEAD}s" "$WORK"/out/short-*.err || true)"
[ "$st_short" = FAILED ] || die "job $J_SHORT should have FAILED at once, ended $st_short"
grep -q 'Raise --time above DRAIN_LEAD' "$WORK"/out/short-*.err || die "job $J_SHORT: no message about --time and DRAIN_LEAD"

st_long=$(wait_job_end "$J_LONG" 300) || die "job $J_LONG did not end: $st_long"
r_long=$(job_field "$J_LONG" Restarts)
say "job $J_LONG: $st_long, restarts $r_long: $(grep -h -m1 -o 'finished no run.*Not requeued' "$WORK"/out/long-*.err || true)"
[ "$r_long" = 0 ] || die "job $J_LONG was requeued $r_long times; it must stop after the first start"
grep -q 'SIGTERM at the time limit' "$WORK"/out/long-*.out || die "job $J_LONG: the TERM trap did not run at the limit"
grep -q 'finished no run.*reached the time limit.*Raise --time' "$WORK"/out/long-*.err ||
  die "job $J_LONG: no message saying to raise --time or shrink the runs"
case "$st_long" in TIMEOUT | FAILED) ;; *) die "job $J_LONG ended $st_long" ;; esac

# Job 3: wait for a start that the sweep stopped before its deadline, or for three starts
# that ended without one; then cancel the job (the rest of it would prove nothing new).
PRED_OUT="$WORK/out/pred-$J_PRED.out"
until=$(($(date +%s) + 480))
while [ "$(date +%s)" -lt "$until" ]; do
  [ "$(count 'requeued job .*(stopped before the deadline' "$PRED_OUT")" -ge 1 ] && break
  [ "$(count 'requeued job \|not requeued\|Not requeued\|sweep complete\|sweep failed' "$PRED_OUT")" -ge 3 ] && break
  is_final "$(job_field "$J_PRED" JobState)" && break
  sleep 2
done
# Cancel it while a start's sweep is running (when it can be caught so within 90 s): the
# ranks drain on the SIGTERM and exit 3 as after a deadline, and the job must still end.
until=$(($(date +%s) + 90))
while [ "$(date +%s)" -lt "$until" ]; do
  if [ "$(job_field "$J_PRED" JobState)" = RUNNING ] &&
    [ "$(count 'srun --mpi' "$PRED_OUT")" -ge "$(count ' start [0-9]*: ' "$PRED_OUT")" ]; then
    sleep 3
    break
  fi
  sleep 1
done
pred_starts=$(count ' start [0-9]*: ' "$PRED_OUT")
scancel "$J_PRED"
st_pred=$(wait_job_end "$J_PRED" 90) || die "job $J_PRED did not end after scancel (did it requeue itself?): $st_pred"
echo "----- job $J_PRED log (.out) -----"
cat "$PRED_OUT"
echo "-----"
pred_stops=$(count 'requeued job .*(stopped before the deadline' "$PRED_OUT")
[ "$st_pred" = CANCELLED ] || die "job $J_PRED ended $st_pred after scancel, not CANCELLED"
pred_cancel=$(grep -h -m1 -o 'the sweep drained on SIGTERM: cancelled; not requeued\|sweep stopped by SIGTERM.*cancelled; not requeued' "$PRED_OUT" || true)
[ "$(count 'SIGTERM at the time limit' "$PRED_OUT")" = 0 ] ||
  die "job $J_PRED: a start reached the time limit; the sweep's prediction should have ended it before its deadline"
[ "$pred_stops" -ge 1 ] ||
  die "job $J_PRED: no start was stopped before its deadline by the sweep's prediction and requeued (see $PRED_OUT)"
# The first such start: when it stopped, its deadline and its limit.
read -r pred_t pred_dl pred_lim < <(awk '
  / start [0-9]+: / { dl = ""; lim = "" }
  /runs are handed out until/ {
    if (match($0, /until [0-9TZ:-]+/)) dl = substr($0, RSTART + 6, RLENGTH - 6)
    if (match($0, /time limit at [0-9TZ:-]+/)) lim = substr($0, RSTART + 14, RLENGTH - 14)
  }
  /sweep incomplete \(exit 3\): stopped before the deadline/ { print $1, dl, lim; exit }
' "$PRED_OUT")
pred_msg="stopped $(seconds_between "$pred_t" "$pred_dl")s before its deadline and $(seconds_between "$pred_t" "$pred_lim")s before its limit"
say "job $J_PRED: $pred_starts start(s); $pred_stops stopped before the deadline by the sweep's prediction and requeued (the first $pred_msg); scancel: $st_pred${pred_cancel:+ (a running start: \"$pred_cancel\")}"

# --- phase 2: the sweep, requeued start after start, one start frozen past its limit ----
J=$(submit sweep 1 "$LEAD" "$CONFIG" "$WORK/sweep.h5" 2)
say "job $J: sweep with --time=1, DRAIN_LEAD=$LEAD, 2 ranks"
state=""
watched=""
base=0
frozen_start=""
until=$(($(date +%s) + 1800))
while [ "$(date +%s)" -lt "$until" ]; do
  state=$(job_field "$J" JobState)
  is_final "$state" && break
  restarts=$(job_field "$J" Restarts)
  # From the second start on, freeze rank 1 once the start has finished two runs of its
  # own (counted from when it was first seen running).
  if [ -z "$froze" ] && [ "$state" = RUNNING ] && [ "${restarts:-0}" -ge 1 ]; then
    if [ "$restarts" != "$watched" ]; then
      watched=$restarts
      base=$(finished_runs "$WORK/sweep.h5")
    elif [ "$(finished_runs "$WORK/sweep.h5")" -ge $((base + 2)) ]; then
      pid=$(scontrol listpids "$J.0" 2>/dev/null | awk '$5 == "1" { print $1; exit }' || true)
      if [ -n "$pid" ] && kill -STOP "$pid" 2>/dev/null; then
        froze=$pid
        frozen_start=$restarts
        say "job $J start $restarts: froze rank 1 (pid $pid) after the start finished runs: its end has to wait for that rank past the limit"
      fi
    fi
  fi
  sleep 1
done
starts=$(count ' start [0-9]*: ' "$WORK/out/sweep-$J.out")
say "job $J: $state after $starts starts, restarts $(job_field "$J" Restarts)"
echo "----- job $J log (.out) -----"
cat "$WORK/out/sweep-$J.out"
echo "-----"
[ "$state" = COMPLETED ] || die "job $J ended $state, not COMPLETED (see $WORK/out)"
[ -n "$froze" ] || die "never caught a start of job $J after the first running and making progress, to freeze a rank"
# Slurm's SIGCONT and the end of that start took the frozen rank with them.
! kill -0 "$froze" 2>/dev/null || die "the frozen rank (pid $froze) is still there"
froze=""
stopped=$(count 'requeued job .*(stopped before the deadline' "$WORK/out/sweep-$J.out")
drained=$(count 'requeued job .*(drained at the deadline' "$WORK/out/sweep-$J.out")
at_limit=$(count 'requeued job .*(reached the time limit)' "$WORK/out/sweep-$J.out")
[ $((stopped + drained)) -ge 1 ] || die "expected a start that ended at or before its deadline (exit 3) and was requeued, saw none"
[ "$at_limit" -ge 1 ] || die "expected a start requeued at the time limit, saw none"
[ $((stopped + drained + at_limit)) -ge 2 ] || die "expected at least 2 starts followed by a requeue"
[ ! -e "$WORK/sweep.h5.journal" ] || die "the finished sweep left its journal $WORK/sweep.h5.journal"
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

say "PASSED: job $J: $starts starts, requeued $stopped times stopped before the deadline by the sweep's prediction, $drained drained at the deadline, $at_limit at the time limit mid-drain in start $frozen_start ($mid); job $J_PRED: a start $pred_msg; too-short --time and too-long run both stopped with a message; $(($(date +%s) - T0))s"
ok=1
