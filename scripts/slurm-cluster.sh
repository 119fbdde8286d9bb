#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for the sweep tests (docs/sweeps.md), as root:
#   scripts/slurm-cluster.sh install      installs munge, slurmctld, slurmd, slurm-client (Debian) if missing
#   scripts/slurm-cluster.sh start DIR    writes DIR/slurm.conf, starts munged (if none answers), slurmctld
#                                         and slurmd with state, spool, pids and logs under DIR; prints
#                                         `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-cluster.sh stop DIR     stops the daemons it started, by the pids in DIR/*.pid
# Nothing outside DIR is changed except /etc/munge/munge.key (created with mungekey when missing) and
# /run/munge (munged's socket folder).
set -euo pipefail

cmd="${1:-}"
case "$cmd" in
install)
    PACKAGES=(munge slurmctld slurmd slurm-client)
    missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || { echo "slurm-cluster: need root to apt-get install ${missing[*]}" >&2; exit 1; }
        echo "slurm-cluster: installing ${missing[*]}" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    ;;
start)
    dir="${2:?usage: slurm-cluster.sh start DIR}"
    [ "$(id -u)" -eq 0 ] || { echo "slurm-cluster: the test cluster runs as root" >&2; exit 1; }
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    dir="$(cd "$dir" && pwd)"
    host="$(hostname -s)"
    cat > "$dir/slurm.conf" <<EOF
ClusterName=fqat-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it starts again (default 120); short for a test.
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.daemon.pid
SlurmdPidFile=$dir/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=30
MinJobAge=600
NodeName=$host CPUs=2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # munge: one daemon per machine; start ours only when none answers.
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        [ -f /etc/munge/munge.key ] || mungekey -c
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        mkdir -p /run/munge && chown munge:munge /run/munge
        setpriv --reuid=munge --regid=munge --init-groups munged --foreground > "$dir/log/munged.log" 2>&1 &
        echo $! > "$dir/munged.pid"
        for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -i > "$dir/log/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.pid"
    slurmd -D > "$dir/log/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.pid"
    # Ready when the node is idle.
    for _ in $(seq 100); do
        state="$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)"
        [ "$state" = "idle" ] && break
        sleep 0.2
    done
    if [ "$state" != "idle" ]; then
        echo "slurm-cluster: the node did not become idle (state '$state'); logs in $dir/log" >&2
        tail -5 "$dir/log/"* >&2 || true
        exit 1
    fi
    echo "export SLURM_CONF=$dir/slurm.conf"
    ;;
stop)
    dir="${2:?usage: slurm-cluster.sh stop DIR}"
    for name in slurmd slurmctld munged; do
        f="$dir/$name.pid"
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    ;;
*)
    echo "usage: scripts/slurm-cluster.sh install | start DIR | stop DIR" >&2
    exit 64
    ;;
esac
