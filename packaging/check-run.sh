# Part 4 of packaging/check.sh (sourced): the INSTALLED sstopd, started by hand the way the unit
# starts it: user sstopd, group sstop, exactly the unit's capabilities as ambient + bounding set,
# no new privileges, inside an emulation of the unit's file-system sandbox (ProtectSystem=strict,
# ProtectHome, PrivateTmp, ProtectKernelTunables; hidepid if the unit sets ProtectProc=invisible).
# Traffic comes from processes of uid 65534, so attributing it needs the unit's ptrace/dac capabilities; the viewer is uid 65534 in group sstop.

NOBODY=65534
SSTOP_GID=$(getent group sstop | cut -d: -f3)
RUN_DIR="$WORK/run"
mkdir -p "$RUN_DIR"
chown sstopd:sstop "$RUN_DIR"
chmod 755 "$RUN_DIR"
SOCK="$RUN_DIR/sstopd.sock"
TCP_BYTES=3000000
UDP_COUNT=500
UDP_SIZE=1200
UDP_BYTES=$((UDP_COUNT * UDP_SIZE))
# uid 65534 may not reach the checkout (e.g. under /root) nor root's python (pyenv shims).
install -m 755 "$HERE/check-traffic.py" "$WORK/traffic.py"
SYS_PY=/usr/bin/python3
[ -x "$SYS_PY" ] || SYS_PY=$(command -v python3)

unit_has() { grep -Eq "$1" "$UNIT"; }

# SANDBOX: a command prefix that runs the rest (as root) in a private mount namespace shaped like
# the unit's: PrivateTmp, ProtectHome, ProtectSystem=strict with only the check's work directory
# writable (the unit's RuntimeDirectory), ProtectKernelTunables (/sys and tracefs read-only), and
# hidepid when the unit sets ProtectProc=invisible. unshare and sh exec, so the pid stays the same.
hidepid=""
unit_has '^ProtectProc=invisible$' && hidepid="-o hidepid=invisible"
SANDBOX=(unshare --mount --propagation private -- sh -c '
    set -e
    mount -t proc '"$hidepid"' proc /proc
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    for d in /home /root /run/user; do [ -d "$d" ] && mount -t tmpfs -o ro,mode=755 tmpfs "$d"; done
    mount --bind "$1" "$1"
    mount -o remount,bind,ro /
    mount -o remount,bind,ro /sys
    if mountpoint -q /sys/kernel/tracing; then mount -o remount,bind,ro /sys/kernel/tracing; fi
    shift
    exec "$@"' sandbox "$WORK")

# start_daemon NAME CAPS [strace|activate]: start the installed daemon as the unit would; wait for
# its socket. strace: trace it (the tracer is the parent). activate: systemd-socket-activate makes
# the socket (group sstop, mode 0660 like sstopd.socket) and execs the daemon at the first connection.
start_daemon() {
    local name=$1 caps=$2 mode=${3:-} outer=()
    [ "$mode" = strace ] && outer=(strace -f -qq -o "$WORK/$name.trace")
    [ "$mode" = activate ] && outer=(systemd-socket-activate -l "$SOCK" --)
    local set="-all${caps:+,+${caps//,/,+}}"
    rm -f "$SOCK"
    if [ "$mode" = activate ]; then
        "${outer[@]}" "${SANDBOX[@]}" setpriv --reuid=sstopd --regid=sstop --clear-groups \
            --inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" --no-new-privs -- \
            /usr/bin/sstopd --socket "$SOCK" --socket-group sstop --socket-mode 0660 --collector "$COLLECTOR" \
            >"$WORK/$name.log" 2>&1 &
    else
        "${SANDBOX[@]}" "${outer[@]}" setpriv --reuid=sstopd --regid=sstop --clear-groups \
            --inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" --no-new-privs -- \
            /usr/bin/sstopd --socket "$SOCK" --socket-group sstop --socket-mode 0660 --collector "$COLLECTOR" \
            >"$WORK/$name.log" 2>&1 &
    fi
    DAEMON_PID=$!
    SSTOPD_PID=$DAEMON_PID
    track "$DAEMON_PID"
    for _ in $(seq 1 100); do
        [ -S "$SOCK" ] && break
        kill -0 "$DAEMON_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    [ -S "$SOCK" ] || return 1
    if [ "$mode" = activate ]; then
        chgrp sstop "$SOCK" && chmod 0660 "$SOCK"
        return 0
    fi
    if [ "$mode" = strace ]; then
        SSTOPD_PID=$(ps --ppid "$DAEMON_PID" -o pid= | tr -d ' ' | head -1)
        track "$SSTOPD_PID"
    fi
    [ "$(readlink "/proc/$SSTOPD_PID/exe")" = /usr/bin/sstopd ] ||
        { echo "pid $SSTOPD_PID is not /usr/bin/sstopd: $(ps -o pid,ppid,cmd -p "$DAEMON_PID,$SSTOPD_PID")" >>"$WORK/$name.log"; return 1; }
}

stop_daemon() {
    kill -TERM "$SSTOPD_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SSTOPD_PID" "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
}

# viewer ARGS...: sstop as uid 65534 with supplementary group sstop.
viewer() {
    setpriv --reuid=$NOBODY --regid=$NOBODY --groups="$SSTOP_GID" -- /usr/bin/sstop --socket "$SOCK" "$@"
}

# start_traffic MODE ARGS...: a check-traffic.py process as uid 65534; sets T_PID, T_PORT.
start_traffic() {
    local out="$WORK/traffic.$1.$RANDOM"
    mkfifo "$out"
    setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- "$SYS_PY" -u "$WORK/traffic.py" "$@" \
        >"$out" 2>>"$WORK/traffic.err" &
    T_PID=$!
    track "$T_PID"
    exec {fd}<"$out"
    T_PORT=""
    local line
    while read -r -t 10 line <&"$fd"; do
        [ "$line" = ready ] && break
        T_PORT=$line
    done
    exec {fd}<&-
}

# json_row PID FIELD: FIELD of process PID in the latest frame sstop prints (empty when absent).
json_row() {
    python3 - "$WORK/frame.json" "$1" "$2" <<'PY'
import json, sys
path, pid, field = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    frame = json.loads(open(path).read().strip().splitlines()[-1])
except Exception:
    sys.exit(0)
for p in frame.get("processes", []):
    if p.get("pid") == pid:
        print(p.get(field, ""))
PY
}

# wait_for PID FIELD MIN: poll frames (up to 20 s) until FIELD of PID >= MIN; prints the last value.
wait_for() {
    local value=""
    for _ in $(seq 1 20); do
        viewer --json --count 1 >"$WORK/frame.json" 2>"$WORK/viewer.err"
        value=$(json_row "$1" "$2")
        if [ -n "$value" ] && [ "$value" -ge "$3" ] 2>/dev/null; then break; fi
        sleep 1
    done
    echo "$value"
}

# json_notes: the collector notes of the latest frame, one per line.
json_notes() {
    python3 - "$WORK/frame.json" <<'PY'
import json, sys
try:
    frame = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    sys.exit(0)
for note in frame.get("collector", {}).get("notes", []):
    print(note)
PY
}

# packet.rs or packet/, kill.rs or kill/: placeholders until those branches are merged.
has_packet() { grep -rqs AF_PACKET "$ROOT"/sstopd/src/collect/linux/packet*; }
has_kill() { grep -rqs pidfd_send_signal "$ROOT"/sstopd/src/kill*; }

# Traffic of known sizes between processes of uid 65534, read back through sstop --json.
prove_collection() {
    start_traffic tcp-server; SERVER=$T_PID; PORT=$T_PORT
    start_traffic tcp-client "$PORT" "$TCP_BYTES"; CLIENT=$T_PID
    start_traffic udp-server; USERVER=$T_PID; UPORT=$T_PORT
    start_traffic udp-client "$UPORT" "$UDP_COUNT" "$UDP_SIZE"; UCLIENT=$T_PID
    # Let the daemon see every socket before any byte moves, so the counts start at zero.
    seen=$(wait_for "$SERVER" listening 1)
    check "another user's listener is attributed (pid $SERVER, uid 65534)" \
        "[ -n '$seen' ] && [ \"\$(json_row $SERVER uid)\" = $NOBODY ]" \
        "$(cat "$WORK/viewer.err"; tail -c 1500 "$WORK/frame.json")"
    missing_caps=$(json_notes | grep -i -e 'CAP_' -e unavailable -e 'not permitted' -e denied || true)
    check "with the unit's capabilities no feature is reported unavailable" "[ -z \"\$missing_caps\" ]" \
        "$missing_caps"
    wait_for "$CLIENT" connections 1 >/dev/null
    wait_for "$UCLIENT" connections 1 >/dev/null
    kill -USR1 "$CLIENT" "$UCLIENT"

    down=$(wait_for "$SERVER" down_bytes "$TCP_BYTES")
    up=$(wait_for "$CLIENT" up_bytes "$TCP_BYTES")
    check "TCP counted for another user: server down $down, client up $up (sent $TCP_BYTES)" \
        "[ '$down' = $TCP_BYTES ] && [ '$up' = $TCP_BYTES ]" "$(tail -c 1500 "$WORK/frame.json")"
    if has_packet; then
        uup=$(wait_for "$UCLIENT" up_bytes "$UDP_BYTES")
        udown=$(wait_for "$USERVER" down_bytes "$UDP_BYTES")
        check "UDP counted: sender up $uup, receiver down $udown (sent $UDP_BYTES payload)" \
            "[ '$uup' = $UDP_BYTES ] && [ '$udown' = $UDP_BYTES ]" "$(tail -c 1500 "$WORK/frame.json")"
    else
        skip "UDP counted" "the packet collector (collect/linux/packet.rs) is not merged yet"
    fi
    if has_kill; then
        viewer kill "$CLIENT" --signal TERM >"$WORK/kill.out" 2>&1
        gone=0
        for _ in $(seq 1 50); do kill -0 "$CLIENT" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
        check "sstop kill: the daemon (CAP_KILL) signals the viewer's own process" "[ $gone = 1 ]" \
            "$(cat "$WORK/kill.out")"
    else
        skip "sstop kill" "kill delivery (sstopd/src/kill.rs) is not merged yet"
    fi
}

# The capabilities are the smallest set: without each group its feature goes, and the daemon says so.
prove_needed() {
    local without=$1 name=$2
    local caps part drop=()
    IFS=, read -ra parts <<<"$without"
    for part in "${parts[@]}"; do drop+=(-e "$part"); done
    caps=$(echo "$FULL" | tr ',' '\n' | grep -v -x "${drop[@]}" | paste -sd, -)
    if ! start_daemon "no-$name" "$caps"; then
        check "sstopd starts without $without (degrades)" false "$(tail -20 "$WORK/no-$name.log")"
        return
    fi
    case $name in
    ptrace)
        viewer --json --count 3 >"$WORK/frame.json" 2>"$WORK/viewer.err"
        check "without $without another user's sockets are not attributed, and a note says why" \
            "[ -s '$WORK/frame.json' ] && [ -z \"\$(json_row $SERVER pid)\" ] && json_notes | grep -q CAP_SYS_PTRACE" \
            "$(json_notes; tail -c 1500 "$WORK/frame.json")"
        ;;
    netraw)
        wait_for "$UCLIENT" connections 1 >/dev/null
        kill -USR1 "$UCLIENT"
        sleep 3
        viewer --json --count 1 >"$WORK/frame.json" 2>"$WORK/viewer.err"
        uup=$(json_row "$UCLIENT" up_bytes)
        check "without $without UDP is not counted (sender up ${uup:-absent}), and a note says why" \
            "[ \"\${uup:-0}\" = 0 ] && json_notes | grep -q CAP_NET_RAW" "$(json_notes; tail -c 1500 "$WORK/frame.json")"
        ;;
    perfmon)
        viewer --json --count 2 >"$WORK/frame.json" 2>"$WORK/viewer.err"
        check "without $without connect-time tracing is off, and a note says so" \
            "json_notes | grep -q 'tracing unavailable'" "$(json_notes)"
        ;;
    kill)
        wait_for "$SERVER" listening 1 >/dev/null
        viewer kill "$SERVER" --signal TERM >"$WORK/kill-denied.out" 2>&1
        sleep 1
        check "without $without the daemon cannot signal another user's process (pid $SERVER lives on: $(head -c 200 "$WORK/kill-denied.out"))" \
            "kill -0 $SERVER 2>/dev/null" "$(cat "$WORK/kill-denied.out")"
        ;;
    esac
    stop_daemon
}

FULL=$AMBIENT
# Until the Linux collector is wired into collect::open, the daemon can only run the synthetic one:
# then check what exists (start, socket, permissions, system calls) and skip the collection proofs.
COLLECTOR=auto
if ! grep -A1 'cfg(target_os = "linux")' "$ROOT/sstopd/src/collect/mod.rs" | grep -q 'CollectorChoice::Auto =>'; then
    COLLECTOR=synthetic
    skip "collection with the unit's capabilities" "the Linux collector is not merged yet (running --collector synthetic)"
fi
step "installed sstopd as user sstopd with capabilities: $FULL"
if start_daemon full "$FULL" strace; then
    check "installed sstopd starts with the unit's capabilities" true
    check "socket is group sstop, mode 0660" \
        "[ \"\$(stat -c '%G %a' '$SOCK')\" = 'sstop 660' ]" "$(ls -l "$SOCK")"
    viewer --json --count 1 >"$WORK/frame.json" 2>"$WORK/viewer.err"
    check "a member of group sstop (uid 65534) reads frames" "[ -s '$WORK/frame.json' ]" "$(cat "$WORK/viewer.err")"
    setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups -- /usr/bin/sstop --socket "$SOCK" --json --count 1 \
        >/dev/null 2>"$WORK/denied.err"
    denied_rc=$?
    check "a user outside group sstop is refused, told which group to join" \
        "[ $denied_rc != 0 ] && grep -q sstop '$WORK/denied.err'" "rc=$denied_rc: $(cat "$WORK/denied.err")"
    [ "$COLLECTOR" = auto ] && prove_collection
    stop_daemon
    check "sstopd exits on SIGTERM and removes its socket" "[ ! -e '$SOCK' ]" "$(tail -5 "$WORK/full.log")"
    refused=$(python3 "$HERE/check-syscalls.py" "$UNIT" "$WORK/full.trace" 2>"$WORK/syscalls.txt")
    check "every system call sstopd made is allowed by the unit's SystemCallFilter" \
        "[ -z '$refused' ] && [ -s '$WORK/full.trace' ]" "refused: $refused; $(cat "$WORK/syscalls.txt")"
    # sstopd.socket: systemd owns the socket, the daemon takes it over (LISTEN_FDS) at the first viewer.
    if start_daemon activated "$FULL" activate; then
        viewer --json --count 1 >"$WORK/frame.json" 2>"$WORK/viewer.err"
        check "socket activation: the first viewer starts sstopd (user sstopd, the unit's caps) and gets frames" \
            "[ -s '$WORK/frame.json' ] && [ \"\$(readlink /proc/$DAEMON_PID/exe)\" = /usr/bin/sstopd ] && [ \"\$(stat -c %U /proc/$DAEMON_PID)\" = sstopd ]" \
            "$(cat "$WORK/viewer.err"; tail -5 "$WORK/activated.log")"
        stop_daemon
    else
        check "socket activation (systemd-socket-activate)" false "$(tail -10 "$WORK/activated.log")"
    fi
    if [ "$COLLECTOR" = auto ]; then
        prove_needed sys_ptrace,dac_read_search ptrace
        has_packet && prove_needed net_raw netraw
        prove_needed perfmon perfmon
        has_kill && prove_needed kill kill
    fi
else
    check "installed sstopd starts with the unit's capabilities" false "$(tail -30 "$WORK/full.log")"
fi
