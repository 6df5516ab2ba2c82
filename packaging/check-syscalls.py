#!/usr/bin/env python3
"""check-syscalls.py UNIT TRACE: print the system calls the traced sstopd made that the unit's
SystemCallFilter= lines would refuse (one per line); exit 1 if there are any.

The allowed set is expanded from `systemd-analyze syscall-filter` (the groups of the systemd
that will run the unit), applying the unit's lines in order as systemd does: the first line
is an allow list, later `~` lines remove from it, later plain lines add to it.
"""
import re
import subprocess
import sys

unit, trace = sys.argv[1], sys.argv[2]

groups, current = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                           text=True, check=True).stdout.splitlines():
    if line.startswith("@"):
        current = groups.setdefault(line.strip(), [])
    elif current is not None and line.strip() and not line.strip().startswith("#"):
        current.append(line.strip())


def expand(name, seen=()):
    if not name.startswith("@"):
        return {name}
    out = set()
    for item in groups.get(name, []):
        if item not in seen:
            out |= expand(item, seen + (name,))
    return out


allowed = set()
for line in open(unit):
    m = re.match(r"^SystemCallFilter=(~?)(.*)$", line.strip())
    if not m:
        continue
    names = set()
    for word in m.group(2).split():
        names |= expand(word)
    if m.group(1):
        allowed -= names
    else:
        allowed |= names

used, started = set(), False
for line in open(trace):
    if not started:
        started = 'execve("/usr/bin/sstopd"' in line
        continue
    m = re.match(r"^\d+\s+([a-z0-9_]+)\(", line)
    if m:
        used.add(m.group(1))

if not started:
    sys.exit("no execve of /usr/bin/sstopd in the trace")
refused = sorted(used - allowed)
print(f"{len(used)} distinct system calls: {' '.join(sorted(used))}", file=sys.stderr)
for name in refused:
    print(name)
sys.exit(1 if refused else 0)
