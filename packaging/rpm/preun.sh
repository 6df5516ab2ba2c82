# sstop %preun: on erase ($1 = 0) stop and disable the daemon and its activation socket.
if [ "$1" -eq 0 ] 2>/dev/null; then
    systemctl --no-reload disable --now sstopd.service sstopd.socket >/dev/null 2>&1 || :
fi
