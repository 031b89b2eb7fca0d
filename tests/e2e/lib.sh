# shellcheck shell=bash
# Shared by the end-to-end tests: the lab, plus assertion helpers. Every test runs in its
# own bash process with its own lab prefix; lab_init's EXIT trap tears the lab down.
set -euo pipefail
# shellcheck source=../../scripts/lib/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/lab.sh"
INJECT=${INJECT:-$LAB_ROOT/target/debug/vrrp-inject}

step() { echo "--- $*"; }
fail() {
    echo "FAIL: $*" >&2
    local h
    for h in "${LAB_HOSTS[@]}"; do
        echo "===== $h addresses: $(ip -n "$(lab_ns "$h")" -o addr show dev eth0 2>/dev/null | awk '{print $4}' | tr '\n' ' ')" >&2
        if [ -f "$LAB_DIR/$h.log" ]; then
            echo "===== $h.log (last 40 lines)" >&2
            tail -n 40 "$LAB_DIR/$h.log" >&2
        fi
    done
    exit 1
}
expect() { local desc=$1; shift; "$@" >/dev/null 2>&1 || fail "$desc"; }
expect_not() { local desc=$1; shift; if "$@" >/dev/null 2>&1; then fail "$desc"; fi; }

# is_state NAME INSTANCE STATE
is_state() { [ "$(tandem_field "$1" "$2" .state)" = "$3" ]; }
# counter NAME INSTANCE COUNTER
counter() { tandem_field "$1" "$2" ".counters.$3"; }
# neigh_mac HOST ADDR: the MAC the host's neighbour table has for ADDR.
neigh_mac() { lab_exec "$1" ip neigh show "$2" dev eth0 | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p'; }
neigh_is() { [ "$(neigh_mac "$1" "$2")" = "$3" ]; }
# holders_are ADDR "HOSTS": exactly these hosts have ADDR configured.
holders_are() { [ "$(lab_holders "$1")" = "$2" ]; }
# counter_is NAME INSTANCE COUNTER N / counter_ge ...: for wait_for (evaluated on every poll).
counter_is() { [ "$(counter "$1" "$2" "$3")" = "$4" ]; }
counter_ge() { local v; v=$(counter "$1" "$2" "$3"); [ -n "$v" ] && [ "$v" -ge "$4" ]; }
lacks_addr() { ! lab_has_addr "$@"; }
