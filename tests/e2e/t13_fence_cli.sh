#!/usr/bin/env bash
# Issue 5 (CLI part): `tandem fence check` and `tandem fence NODE` against the project's
# simulators (tests/fixtures/sims): a BMC for lb2, an APC PDU whose two outlets feed lb2's two
# power supplies, and an IF-MIB switch. Level 1 (the BMC) fences lb2; when the BMC answers
# "done" without acting, level 1 fails with a clear reason and level 2 (both outlets) fences
# it. No secret value appears in any output.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
TANDEM_BIN=${TANDEM_BIN:-$root/target/debug/tandem}
SIMS=$root/tests/fixtures/sims

step() { echo "--- $*"; }
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/out.*; do
        [ -f "$f" ] && { echo "===== $f" >&2; cat "$f" >&2; }
    done
    exit 1
}

tmp=$(mktemp -d /tmp/tandem-t13.XXXXXX)
state=$tmp/state
mkdir -p "$state"
cleanup() {
    local rc=$?
    "$SIMS/ipmi/stop-bmc.sh" "$state/bmc" >/dev/null 2>&1 || true
    "$SIMS/snmp/stop-snmp.sh" "$state/pdu" >/dev/null 2>&1 || true
    "$SIMS/snmp/stop-snmp.sh" "$state/switch" >/dev/null 2>&1 || true
    [ -n "${T13_KEEP:-}" ] || rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT INT TERM

# A free UDP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Secrets unlike anything else in the output, so grep finds them if they leak. The BMC's is
# kept short: ipmi_sim's users cannot log in with a password of 20 characters (IPMI's maximum).
bmc_pass=$(printf 'bmc-%05d%05d' $RANDOM $RANDOM)
pdu_comm="pduComm-t13-$RANDOM$RANDOM"
sw_comm="swComm-t13-$RANDOM$RANDOM"
secrets=("$bmc_pass" "$pdu_comm" "$sw_comm")

# start_sim VAR DIR COMMAND...: start a simulator on a free port (substituted for @PORT@ in
# COMMAND) and set VAR to it; retries with another port when it does not come up (a port
# taken between the probe and the start).
start_sim() {
    local var=$1 dir=$2 try port
    shift 2
    for try in 1 2 3; do
        port=$(free_port)
        if "${@//@PORT@/$port}" >"$tmp/start.$var.$try" 2>&1; then
            printf -v "$var" %s "$port"
            return 0
        fi
        echo "simulator $var did not start on port $port (try $try):" >&2
        cat "$tmp/start.$var.$try" >&2
        tail -n 20 "$dir"/*.log >&2 2>/dev/null || true
    done
    return 1
}

step "start the simulators"
export SIM_BIND=127.0.0.1
bmc_port='' pdu_port='' sw_port=''
BMC_USER=admin BMC_PASS=$bmc_pass \
    start_sim bmc_port "$state/bmc" "$SIMS/ipmi/start-bmc.sh" @PORT@ "$state/bmc" ||
    fail "BMC simulator did not start"
SNMP_RW_COMMUNITY=$pdu_comm SNMP_RO_COMMUNITY="ro-$pdu_comm" \
    start_sim pdu_port "$state/pdu" "$SIMS/snmp/start-snmp.sh" apc-pdu @PORT@ "$state/pdu" \
    lb2-psu1,lb2-psu2 || fail "PDU simulator did not start"
SNMP_RW_COMMUNITY=$sw_comm SNMP_RO_COMMUNITY="ro-$sw_comm" \
    start_sim sw_port "$state/switch" "$SIMS/snmp/start-snmp.sh" ifmib-switch @PORT@ \
    "$state/switch" eth1,eth2 || fail "switch simulator did not start"
echo "BMC :$bmc_port, PDU :$pdu_port, switch :$sw_port"

step "write the config and secrets"
mkdir -p "$tmp/secrets"
umask 077
printf '%s\n' "$bmc_pass" >"$tmp/secrets/bmc"
printf '%s\n' "$pdu_comm" >"$tmp/secrets/pdu"
head -c 32 /dev/urandom >"$tmp/cluster.key"
chmod 600 "$tmp/cluster.key"
export T13_SWITCH_COMMUNITY=$sw_comm
cfg=$tmp/tandem.toml
cat >"$cfg" <<EOF
[node]
name = "lb1"
state_dir = "$tmp/lib"
control_socket = "$tmp/tandem.sock"

[cluster]
name = "t13"
key_file = "$tmp/cluster.key"
nodes = [
  { name = "lb1", address = "127.0.0.1" },
  { name = "lb2", address = "127.0.0.2" },
]

[[heartbeat]]
kind = "tcp"
port = 5406

[[vrrp_instance]]
name = "VI_1"
interface = "lo"
virtual_router_id = 51
virtual_ipaddress = ["192.0.2.100/24"]

[[fence_device]]
name = "lb2-bmc"
driver = "ipmi"
address = "127.0.0.1:$bmc_port"
username = "admin"
password_file = "$tmp/secrets/bmc"
timeout = "10s"
retries = 0

[[fence_device]]
name = "lb2-psu1"
driver = "pdu-snmp"
address = "127.0.0.1:$pdu_port"
outlet = 1
snmp_version = "2c"
community_file = "$tmp/secrets/pdu"

[[fence_device]]
name = "lb2-psu2"
driver = "pdu-snmp"
address = "127.0.0.1:$pdu_port"
outlet = "lb2-psu2"
snmp_version = "2c"
community_file = "$tmp/secrets/pdu"

[[fence_device]]
name = "lb2-uplink"
driver = "switch-snmp"
address = "127.0.0.1:$sw_port"
port = "eth2"
snmp_version = "2c"
community_env = "T13_SWITCH_COMMUNITY"

[[fence_level]]
node = "lb2"
level = 1
devices = [{ device = "lb2-bmc" }]

[[fence_level]]
node = "lb2"
level = 2
devices = [{ device = "lb2-psu1" }, { device = "lb2-psu2" }]

[[fence_level]]
node = "lb2"
level = 3
devices = [{ device = "lb2-uplink" }]
EOF
"$TANDEM_BIN" check -c "$cfg" >"$tmp/out.check" 2>&1 || fail "tandem check refused the config"

step "tandem fence check: every device answers, all on"
"$TANDEM_BIN" fence check -c "$cfg" >"$tmp/out.fcheck" 2>&1 || fail "tandem fence check failed"
cat "$tmp/out.fcheck"
for d in lb2-bmc lb2-psu1 lb2-psu2 lb2-uplink; do
    grep -Eq "^$d +[a-z-]+ +.* on$" "$tmp/out.fcheck" || fail "fence check: $d is not shown on"
done
[ "$(cat "$state/bmc/power")" = on ] || fail "fence check changed the BMC"

step "without --yes and without a terminal, tandem fence refuses"
set +e
"$TANDEM_BIN" fence lb2 --action off -c "$cfg" </dev/null >"$tmp/out.noyes" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "tandem fence without --yes succeeded"
grep -q -- "--yes" "$tmp/out.noyes" || fail "the refusal does not mention --yes"
[ "$(cat "$state/bmc/power")" = on ] || fail "a refused fence changed the BMC"

step "tandem fence lb2 --action off --yes: level 1 (the BMC) fences it"
"$TANDEM_BIN" fence lb2 --action off --yes -c "$cfg" </dev/null >"$tmp/out.fence1" 2>&1 ||
    fail "fence lb2 failed"
cat "$tmp/out.fence1"
[ "$(cat "$state/bmc/power")" = off ] || fail "the BMC does not show power off"
grep -q "verified by level 1" "$tmp/out.fence1" || fail "not reported as verified by level 1"
if [ "$(cat "$state/pdu/outlet.1")" != on ] || [ "$(cat "$state/pdu/outlet.2")" != on ]; then
    fail "level 2 was used although level 1 succeeded"
fi

step "the BMC ignores commands and is powered on out of band: level 2 (both outlets) fences"
touch "$state/bmc/ignore"
echo on >"$state/bmc/power"
set +e
"$TANDEM_BIN" fence lb2 --action off --yes -c "$cfg" </dev/null >"$tmp/out.fence2" 2>&1
rc=$?
set -e
cat "$tmp/out.fence2"
[ $rc -eq 0 ] || fail "fence lb2 through level 2 exited $rc"
[ "$(cat "$state/pdu/outlet.1")" = off ] || fail "outlet 1 is not off"
[ "$(cat "$state/pdu/outlet.2")" = off ] || fail "outlet 2 is not off"
[ "$(cat "$state/bmc/power")" = on ] || fail "the ignoring BMC changed state"
grep -q "^level 1: FAILED: .*state read back is on, not off" "$tmp/out.fence2" ||
    fail "level 1's reason is not the unchanged state"
grep -q "verified by level 2" "$tmp/out.fence2" || fail "not reported as verified by level 2"
[ "$(cat "$state/switch/port.2")" = up ] || fail "level 3 was used although level 2 succeeded"

step "tandem fence check with the switch stopped: exit 1, the switch shows its error"
"$SIMS/snmp/stop-snmp.sh" "$state/switch" >/dev/null 2>&1
set +e
"$TANDEM_BIN" fence check -c "$cfg" >"$tmp/out.fcheck2" 2>&1
rc=$?
set -e
cat "$tmp/out.fcheck2"
[ $rc -eq 1 ] || fail "fence check with an unreachable device exited $rc, expected 1"
grep -Eq "^lb2-uplink +switch-snmp +.* error: .*unreachable" "$tmp/out.fcheck2" ||
    fail "fence check does not show the switch as unreachable"
grep -Eq "^lb2-psu1 +pdu-snmp +.* off$" "$tmp/out.fcheck2" || fail "fence check: lb2-psu1 not shown off"

step "no secret appears in any output"
for s in "${secrets[@]}"; do
    if grep -rqF -- "$s" "$tmp"/out.*; then
        fail "a secret appears in the output"
    fi
done
echo PASS
