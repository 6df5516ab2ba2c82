#!/usr/bin/env bash
# Packaging and operations checks, run as root after the tests (.ci/run). Each check prints
# "ok", "FAIL" or "SKIP" with the reason; the last line is "N passed, N failed, N skipped".
#
#  1. the unit: required directives, `systemd-analyze security --offline=true` exposure <= 2.5
#  2. man pages + completions generated from the clap definitions; release build; the .deb
#     (and the .rpm when cargo-generate-rpm is installed), with every required file inside
#  3. dpkg -i on this machine (no systemd running: the postinst must cope), accounts and
#     enablement made, `systemd-analyze verify` clean on the installed units
#  4. the installed sstopd started by hand as user sstopd with EXACTLY the unit's capabilities
#     (setpriv, ambient caps, bounding set) in an emulation of the unit's file-system sandbox,
#     under strace: another user's sockets are attributed, TCP and UDP bytes of known sizes are
#     counted, signals are delivered, every system call made is allowed by the unit's filter;
#     socket activation (systemd-socket-activate) works; then again without each capability group
#     (ptrace+dac, net_raw, perfmon, kill) to show each is needed and its loss is reported
#  5. dpkg --purge, and the accounts removed again if this script created them
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HERE="$ROOT/packaging"
# shellcheck source=packaging/check-lib.sh
. "$HERE/check-lib.sh"

[ "$(id -u)" = 0 ] || { echo "packaging/check.sh must run as root (it installs the package)"; exit 2; }

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
REL="$TARGET_DIR/release"
# Under /run, not /tmp: the sandbox emulation gives the daemon a private /tmp.
WORK=$(mktemp -d /run/sstop-check.XXXXXX)
chmod 755 "$WORK"
trap cleanup EXIT

# ── 1. the unit ────────────────────────────────────────────────────────────────────────────
UNIT="$ROOT/systemd/sstopd.service"
SOCKET_UNIT="$ROOT/systemd/sstopd.socket"

missing=""
for want in '^Type=notify$' '^WatchdogSec=' '^Restart=on-failure$' '^RuntimeDirectory=sstop$' \
    '^ExecStart=.*--socket-group sstop' '^ExecStart=.*--socket-mode 0660' '^ProtectSystem=strict$' \
    '^ProtectHome=yes$' '^PrivateTmp=yes$' '^NoNewPrivileges=yes$' \
    '^RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_PACKET$' '^SystemCallFilter=@system-service' \
    '^ProtectKernelTunables=yes$' '^CapabilityBoundingSet=' '^AmbientCapabilities=' '^User='; do
    grep -Eq "$want" "$UNIT" || missing="$missing $want"
done
for want in '^ListenStream=/run/sstop/sstopd.sock$' '^SocketGroup=sstop$' '^SocketMode=0660$'; do
    grep -Eq "$want" "$SOCKET_UNIT" || missing="$missing $want"
done
check "unit directives present" "[ -z '$missing' ]" "missing:$missing"

BOUNDING=$(unit_caps CapabilityBoundingSet)
AMBIENT=$(unit_caps AmbientCapabilities)
check "ambient capabilities = bounding set ($AMBIENT)" "[ '$BOUNDING' = '$AMBIENT' ] && [ -n '$AMBIENT' ]" \
    "bounding [$BOUNDING] vs ambient [$AMBIENT]"

systemd-analyze security --offline=true "$UNIT" >"$WORK/security.txt" 2>&1
EXPOSURE=$(sed -n 's/.*Overall exposure level for sstopd.service: \([0-9.]*\).*/\1/p' "$WORK/security.txt")
check "systemd-analyze security exposure ${EXPOSURE:-?} <= 2.5" \
    "[ -n '$EXPOSURE' ] && python3 -c 'import sys; sys.exit(0 if float(\"$EXPOSURE\") <= 2.5 else 1)'" \
    "$(grep -E '✗' "$WORK/security.txt" | head -20)"

# ── 2. build, generate, package ────────────────────────────────────────────────────────────
step "release build of sstopd and sstop (slow on 2 cores)"
cargo build --release --locked -p sstopd -p sstop-client >"$WORK/build.log" 2>&1
build_rc=$?
check "cargo build --release -p sstopd -p sstop-client" "[ $build_rc = 0 ]" "$(tail -30 "$WORK/build.log")"
if [ "$build_rc" != 0 ]; then
    skip "packages, install, installed daemon" "the release build failed"
    summary
    exit 1
fi

rm -rf "$REL/packaging"
cargo run --locked -q -p sstop-gen -- "$REL/packaging" >"$WORK/gen.log" 2>&1
check "man pages and completions generated" "[ -s '$REL/packaging/man/sstopd.8' ] && [ -s '$REL/packaging/man/sstop.1' ]" \
    "$(tail -20 "$WORK/gen.log")"
for page in "$REL"/packaging/man/*.[18]; do
    [ -e "$page" ] || continue
    MANWIDTH=100 man --warnings -l "$page" >"$WORK/man.txt" 2>"$WORK/man.err"
    check "man page $(basename "$page") renders without warnings" \
        "[ ! -s '$WORK/man.err' ] && grep -q SYNOPSIS '$WORK/man.txt'" "$(head -5 "$WORK/man.err")"
done

rm -rf "$TARGET_DIR/debian"
cargo deb -p sstop-client --no-build >"$WORK/deb.log" 2>&1
DEB=$(ls "$TARGET_DIR"/debian/sstop_*.deb 2>/dev/null | head -1)
check "cargo deb" "[ -n '$DEB' ]" "$(tail -20 "$WORK/deb.log")"

DEB_FILES="usr/bin/sstop usr/bin/sstopd usr/lib/systemd/system/sstopd.service
usr/lib/systemd/system/sstopd.socket usr/lib/sysusers.d/sstop.conf usr/lib/tmpfiles.d/sstop.conf
usr/share/man/man1/sstop.1 usr/share/man/man1/sstop-kill.1 usr/share/man/man8/sstopd.8
usr/share/bash-completion/completions/sstop usr/share/bash-completion/completions/sstopd
usr/share/zsh/vendor-completions/_sstop usr/share/zsh/vendor-completions/_sstopd
usr/share/fish/vendor_completions.d/sstop.fish usr/share/fish/vendor_completions.d/sstopd.fish"
if [ -n "$DEB" ]; then
    dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's#^\./##' >"$WORK/deb.contents"
    echo "--- dpkg-deb -c $(basename "$DEB")"; dpkg-deb -c "$DEB" | grep -v '^d'
    absent=$(for f in $DEB_FILES; do grep -qx "$f" "$WORK/deb.contents" || echo "$f"; done)
    check ".deb holds binaries, units, sysusers, tmpfiles, man pages, completions" "[ -z '$absent' ]" \
        "missing: $absent"
    dpkg-deb -I "$DEB" >"$WORK/deb.info"
    check ".deb has postinst, prerm, postrm" \
        "grep -q ' postinst ' '$WORK/deb.info' && grep -q ' prerm ' '$WORK/deb.info' && grep -q ' postrm ' '$WORK/deb.info'" \
        "$(cat "$WORK/deb.info")"
fi

if cargo generate-rpm --version >/dev/null 2>&1; then
    rm -rf "$TARGET_DIR/generate-rpm"
    cargo generate-rpm -p sstop-client --target-dir "$TARGET_DIR" >"$WORK/rpm.log" 2>&1
    RPM=$(ls "$TARGET_DIR"/generate-rpm/sstop-*.rpm 2>/dev/null | head -1)
    check "cargo generate-rpm" "[ -n '$RPM' ]" "$(tail -20 "$WORK/rpm.log")"
    if [ -n "$RPM" ] && command -v rpm >/dev/null; then
        rpm -qlp "$RPM" 2>/dev/null | sed 's#^/##' >"$WORK/rpm.contents"
        absent=$(for f in $DEB_FILES; do
            f=${f/vendor-completions/site-functions}; grep -qx "$f" "$WORK/rpm.contents" || echo "$f"; done)
        check ".rpm holds the same files" "[ -z '$absent' ]" "missing: $absent"
        rpm -qp --scripts "$RPM" >"$WORK/rpm.scripts" 2>/dev/null
        check ".rpm has post/preun/postun scriptlets without unexpanded macros" \
            "grep -q 'systemd-sysusers' '$WORK/rpm.scripts' && grep -q 'preuninstall' '$WORK/rpm.scripts' && ! grep -q '%{' '$WORK/rpm.scripts'" \
            "$(cat "$WORK/rpm.scripts")"
    fi
else
    skip "rpm package" "cargo-generate-rpm is not installed (cargo install cargo-generate-rpm --locked)"
fi

# ── 3. install ────────────────────────────────────────────────────────────────────────────
getent group sstop >/dev/null && HAD_GROUP=1 || HAD_GROUP=0
getent passwd sstopd >/dev/null && HAD_USER=1 || HAD_USER=0
INSTALLED=0
if [ -n "$DEB" ]; then
    dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 && INSTALLED=1
    check "dpkg -i (no running systemd)" "[ $INSTALLED = 1 ]" "$(tail -20 "$WORK/dpkg.log")"
fi
if [ "$INSTALLED" = 1 ]; then
    check "postinst created group sstop and user sstopd" \
        "getent group sstop >/dev/null && [ \"\$(id -gn sstopd)\" = sstop ]" "$(getent passwd sstopd)"
    check "postinst created /run/sstop (sstopd:sstop 0755)" \
        "[ \"\$(stat -c '%U:%G %a' /run/sstop)\" = 'sstopd:sstop 755' ]" "$(ls -ld /run/sstop 2>&1)"
    check "postinst enabled sstopd.service" \
        "[ -L /etc/systemd/system/multi-user.target.wants/sstopd.service ]" \
        "$(ls -l /etc/systemd/system/multi-user.target.wants/ 2>&1 | tail -5)"
    systemd-analyze verify /usr/lib/systemd/system/sstopd.service /usr/lib/systemd/system/sstopd.socket \
        >"$WORK/verify.txt" 2>&1
    verify_rc=$?
    check "systemd-analyze verify (installed units) is clean" "[ $verify_rc = 0 ] && [ ! -s '$WORK/verify.txt' ]" \
        "$(cat "$WORK/verify.txt")"
fi

# ── 4. the installed daemon with exactly the unit's capabilities ──────────────────────────────
if [ "$INSTALLED" = 1 ]; then
    . "$HERE/check-run.sh"
fi

# ── 5. remove (accounts this script created go in cleanup, once its processes are gone) ─────────────────────────────────────────────────────────────────────────────
if [ "$INSTALLED" = 1 ]; then
    dpkg --purge sstop >"$WORK/purge.log" 2>&1
    check "dpkg --purge" "! dpkg -s sstop >/dev/null 2>&1 && [ ! -e /usr/bin/sstopd ] && [ ! -e /etc/systemd/system/multi-user.target.wants/sstopd.service ]" \
        "$(tail -20 "$WORK/purge.log")"
fi

summary
