# sstop %postun: reload units; on upgrade ($1 >= 1) restart a running daemon onto the new binary.
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload || :
    if [ "$1" -ge 1 ] 2>/dev/null; then
        systemctl try-restart sstopd.service >/dev/null 2>&1 || :
    fi
fi
