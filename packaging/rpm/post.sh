# sstop %post (plain shell: cargo-generate-rpm copies it verbatim, no rpm macros).
# $1 = 1 on install, 2 on upgrade.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/sstop.conf || :
else
    getent group sstop >/dev/null || groupadd --system sstop || :
    getent passwd sstopd >/dev/null || useradd --system --gid sstop --no-create-home \
        --home-dir / --shell /sbin/nologin --comment "sstop collector daemon" sstopd || :
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/sstop.conf || :
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload || :
fi
if [ "$1" -eq 1 ] 2>/dev/null; then
    # Distribution presets decide whether new services start enabled; README says `systemctl enable --now sstopd`.
    systemctl --no-reload preset sstopd.service >/dev/null 2>&1 || :
fi
