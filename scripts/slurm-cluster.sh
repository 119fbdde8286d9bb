#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for the sweep tests (docs/sweeps.md), as root:
#   scripts/slurm-cluster.sh install      installs munge, slurmctld, slurmd, slurm-client (Debian) if missing
#   scripts/slurm-cluster.sh start DIR    writes DIR/slurm.conf, starts its own munged (key and socket in
#                                         DIR/munge), slurmctld and slurmd on free TCP ports, with state,
#                                         spool, pids and logs under DIR; prints
#                                         `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-cluster.sh stop DIR     stops the daemons it started, by the pids in DIR/*.pid
# Several clusters can run at once on one machine (two test suites at the same time): each has its own
# ports (not Slurm's default 6817/6818), its own munged, key and socket, and its own state. Nothing
# outside DIR is changed except the lock file /run/lock/fqat-slurm-cluster.lock (see free_ports).
set -euo pipefail

# Two distinct free TCP ports, "CTLD SLURMD", for SlurmctldPort and SlurmdPort. The kernel chooses them:
# python3 binds two sockets to port 0 at the same time (so they differ) and prints what it got; that
# is exact (it sees every socket, listening or not) where a scan of `ss -ltn` output would guess.
# Without python3, a scan from a random start in 20000-32767 (below Linux's default ephemeral range
# 32768-60999, from which outgoing connections take their ports) skips the ports `ss -ltn` lists.
# A port is free only until a daemon binds it, so `start` holds a machine-wide lock (flock) from the
# choice until the node is up: two clusters started at once never get the same ports.
free_ports() {
    if command -v python3 > /dev/null 2>&1; then
        python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
for x in s: x.bind(("", 0))
print(*(x.getsockname()[1] for x in s))'
    else
        local used p ports=()
        used=" $(ss -Hltn | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ') "
        p=$((20000 + RANDOM % 12000))
        while [ ${#ports[@]} -lt 2 ]; do
            case "$used" in *" $p "*) ;; *) ports+=("$p") ;; esac
            p=$((p + 1))
        done
        echo "${ports[@]}"
    fi
}

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
    socket="$dir/munge/munge.socket"
    [ ${#socket} -le 100 ] || { echo "slurm-cluster: $socket is too long for a Unix socket; use a shorter DIR" >&2; exit 1; }
    # Held until the node is idle (fd 9; the daemons are started without it, or they would keep it).
    lock=/run/lock; [ -d "$lock" ] || lock=/tmp
    lock="$lock/fqat-slurm-cluster.lock"
    exec 9> "$lock"
    flock -w 300 9 || { echo "slurm-cluster: another cluster's start held $lock for 300 s" >&2; exit 1; }
    read -r ctld_port slurmd_port < <(free_ports) || true
    [ -n "$slurmd_port" ] || { echo "slurm-cluster: could not find two free TCP ports" >&2; exit 1; }
    echo "slurm-cluster: slurmctld on port $ctld_port, slurmd on port $slurmd_port, munge socket $socket" >&2
    cat > "$dir/slurm.conf" <<EOF
ClusterName=fqat-test
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it starts again (default 120); short for a test.
# socket: this cluster's own munged (both auth/munge and cred/munge read it).
AuthInfo=cred_expire=10,socket=$socket
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
    # munge: a daemon of this cluster's own, with its own key, socket, pid and seed files in DIR/munge, so
    # that stopping one cluster never takes another's munged away (the machine's munged, if any, is
    # left alone). The socket's folder must be searchable by all, the key readable by munge only.
    mkdir -p "$dir/munge"
    [ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key"
    chown -R munge:munge "$dir/munge" && chmod 755 "$dir/munge" && chmod 600 "$dir/munge/munge.key"
    setpriv --reuid=munge --regid=munge --init-groups munged --foreground --socket="$socket" \
        --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
        > "$dir/log/munged.log" 2>&1 9>&- &
    echo $! > "$dir/munged.pid"
    munge_up=false
    for _ in $(seq 50); do
        munge -n -S "$socket" 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1 && { munge_up=true; break; }
        sleep 0.1
    done
    if ! $munge_up; then
        echo "slurm-cluster: munged did not answer on $socket; its log:" >&2
        tail -5 "$dir/log/munged.log" >&2 || true
        exit 1
    fi
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -i > "$dir/log/slurmctld.out" 2>&1 9>&- &
    echo $! > "$dir/slurmctld.pid"
    slurmd -D > "$dir/log/slurmd.out" 2>&1 9>&- &
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
    exec 9>&-
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
