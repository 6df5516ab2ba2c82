# Helpers for packaging/check.sh (sourced). Needs ROOT, WORK.
PASSED=0
FAILED=0
SKIPPED=0
PIDS=()

# check NAME CONDITION DETAIL: evaluate CONDITION; print ok/FAIL (with DETAIL on failure).
check() {
    if eval "$2"; then
        echo "ok   - $1"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL - $1"
        [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/       /'
        FAILED=$((FAILED + 1))
    fi
}

skip() {
    echo "SKIP - $1: $2"
    SKIPPED=$((SKIPPED + 1))
}

step() { echo "---- $*"; }

# The capability list of a unit line, lower case without CAP_, comma separated (setpriv's form).
unit_caps() {
    sed -n "s/^$1=//p" "$UNIT" | tr ' ' '\n' | sed -n 's/^CAP_//p' | tr 'A-Z' 'a-z' | sort | paste -sd, -
}

# Remember a process we started so cleanup can end it (by pid, never by name).
track() { PIDS+=("$1"); }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        # SIGKILL what did not stop on SIGTERM (a hung daemon must not keep the user busy for userdel).
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "${INSTALLED:-0}" = 1 ] && dpkg -s sstop >/dev/null 2>&1; then
        dpkg --purge sstop >/dev/null 2>&1
    fi
    [ "${HAD_USER:-1}" = 1 ] || userdel sstopd 2>/dev/null
    [ "${HAD_GROUP:-1}" = 1 ] || groupdel sstop 2>/dev/null
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

summary() {
    echo "packaging: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" = 0 ]
}
