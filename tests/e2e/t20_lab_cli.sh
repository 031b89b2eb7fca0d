#!/usr/bin/env bash
# scripts/lab, the operator's partition lab, driven end to end as an operator (and the nemesis
# soak) drives it. Its own lab names (t20<pid>, t2f<pid>, t2p<pid>, t2s<pid>) and state under a
# temp directory; the EXIT trap always runs `down`. Does not use lab_init.
#   1. usage errors exit 2 before anything is built; a missing lab is a failure (exit 1)
#   2. quorum lab (lb1, lb2, arbiter): `status --json` has the contract's keys, lb1 holds
#   3. isolate lb1 -> lb2 holds and lb1 does not; heal -> lb1 takes it back
#   4. partition lb1 lb2,arb -> lb2 holds; lb1 cannot reach lb2, the client reaches both; heal
#   5. kill lb1 -> not running; restart lb1 -> running, holds again
#   6. netem loss on / off; netem delay exits 2 without sch_netem (or works with it)
#   7. flap lb2 2 -> its link and address are back; down -> no namespace left, idempotent
#   8. a vrrp pair with --fence: BMCs powered, bmc fail shows as a fault
#   9. clock lb1 0.5: the daemon's own clock runs at half speed, through restarts; clock 1
#  (and in the quorum lab: a rate beyond lease_margin / lease is warned about)
#  10. config NODE prints the generated config with placeholders; up --config with a config
#      tandem check refuses fails (exit 1, tandem's FILE:line:col) and builds nothing
#  11. quorum lab with --fence pdu and lb2 on its own config (priority 120): lb2's daemon runs
#      with it; fencedev / bmc fail and ok; isolate lb1 -> the leader switches lb1's outlet
#      off (not running, not powered, verified in arb's fence history); restart lb1 -> back
#  12. quorum lab with --fence switch: isolate lb1 -> its port down (powered, running, no
#      holder behind the port, "switch port lb1 down" in the faults); restart lb1 -> port up
set -euo pipefail
# (Outputs are read whole before grep: `cmd | grep -q` under pipefail fails at random when
# grep exits early and cmd dies of SIGPIPE.)
cd "$(dirname "$0")/../.."
root=$PWD
# shellcheck source=SCRIPTDIR/../../scripts/lib/lab.sh
source scripts/lib/lab.sh # wait_for
export TANDEM_BIN
tmp=$(mktemp -d /tmp/tandem-t20.XXXXXX)
export TANDEM_LAB_DIR=$tmp/labs
name=t20$(($$ % 100000))
name2=t2f$(($$ % 100000))
name3=t2p$(($$ % 100000))
name4=t2s$(($$ % 100000))
current=$name

lab() { "$root/scripts/lab" --name "$current" "$@"; }
step() { echo "--- $*"; }
fail() {
    echo "FAIL: $*" >&2
    lab status >&2 || true
    local f
    for f in "$TANDEM_LAB_DIR/$current"/*.log; do
        [ -f "$f" ] || continue
        echo "===== $f (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}
cleanup() {
    local rc=$? n
    for n in "$name" "$name2" "$name3" "$name4"; do
        "$root/scripts/lab" --name "$n" down >/dev/null 2>&1 || echo "cleanup: down $n failed" >&2
    done
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

js() { lab status --json | jq -c "$1"; }
holders() { lab status --json | jq -r '.holders | join(" ")'; }
holders_are() { [ "$(holders)" = "$1" ]; }
# rc_of CMD...: the exit status, stderr kept in $tmp/err.
rc_of() { local rc=0; "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?; echo "$rc"; }
leftover_ns() { ip netns list | awk '{print $1}' | grep -c "^tl$1-" || true; }

step "usage errors exit 2 and build nothing; a missing lab exits 1"
grep -q "partition GROUP GROUP" <<<"$(lab help)" || fail "help does not show the usage"
[ "$(rc_of lab up --mode quorum)" = 2 ] || fail "quorum with two members was not refused with exit 2"
grep -q "at least 3 members" "$tmp/err" || fail "unclear refusal: $(cat "$tmp/err")"
[ "$(rc_of lab up --nodes 9)" = 2 ] || fail "--nodes 9 was not a usage error"
[ "$(rc_of "$root/scripts/lab" --name 'Bad!' status)" = 2 ] || fail "a bad --name was not a usage error"
[ "$(rc_of lab status)" = 1 ] || fail "status of a missing lab did not fail"
[ "$(leftover_ns "$name")" = 0 ] || fail "a refused up left namespaces"

step "up: a quorum lab of lb1, lb2 and an arbiter"
t0=$(date +%s%N)
lab up --nodes 2 --arbiter --mode quorum || fail "up failed"
echo "up took $((($(date +%s%N) - t0) / 1000000)) ms"
[ "$(rc_of lab up --nodes 2 --arbiter --mode quorum)" = 1 ] || fail "a second up of the same lab was not refused"
grep -q "down first" "$tmp/err" || fail "unclear refusal of a second up: $(cat "$tmp/err")"
lab status
lab status --json | tee "$tmp/status.json"
jq -e 'keys == ["faults", "holders", "mode", "name", "nodes", "vip"]' "$tmp/status.json" >/dev/null || fail "status --json keys differ from the contract"
jq -e --arg n "$current" '.name == $n and .mode == "quorum" and .vip == "192.0.2.100" and .holders == ["lb1"] and .faults == []' "$tmp/status.json" >/dev/null ||
    fail "status --json: wrong name, mode, VIP, holders or faults"
jq -e '[.nodes[] | .name] == ["lb1", "lb2", "arb"] and all(.nodes[]; .running == true and .powered == true and (keys == ["clock", "name", "powered", "running"]) and .clock == 1)' "$tmp/status.json" >/dev/null ||
    fail "status --json: nodes are not lb1, lb2, arb all running and powered"
lab tandem arb status --json | jq -e '.quorum.quorum == true' >/dev/null || fail "scripts/lab tandem arb status does not show a quorum"

step "isolate lb1 -> lb2 holds the VIP, lb1 not"
lab isolate lb1 | tee "$tmp/out"
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "isolate printed more than one line"
wait_for "lb2 alone holds the VIP" 10 holders_are lb2 || fail "lb2 did not take the VIP from the isolated lb1"
[ "$(js .faults)" = '["isolate lb1"]' ] || fail "status does not show the isolation: $(js .faults)"
lab exec client ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1 && fail "the client still reaches the isolated lb1"
lab heal
[ "$(js .faults)" = '[]' ] || fail "heal left faults: $(js .faults)"
wait_for "lb1 holds the VIP again" 15 holders_are lb1 || fail "lb1 did not take the VIP back after the heal"

step "partition lb1 | lb2,arb -> lb2 holds the VIP"
lab partition lb1 lb2,arb
wait_for "lb2 alone holds the VIP" 10 holders_are lb2 || fail "lb2 did not take the VIP in the partition"
[ "$(js .faults)" = '["partition lb1 | lb2,arb"]' ] || fail "status does not show the partition: $(js .faults)"
lab exec lb1 ping -c 1 -W 1 192.0.2.2 >/dev/null 2>&1 && fail "lb1 reaches lb2 across the partition"
lab exec client ping -c 1 -W 1 192.0.2.1 >/dev/null 2>&1 || fail "the client (in no group) does not reach lb1"
lab exec client ping -c 1 -W 1 192.0.2.2 >/dev/null 2>&1 || fail "the client (in no group) does not reach lb2"
lab heal
wait_for "lb1 holds the VIP again" 15 holders_are lb1 || fail "lb1 did not take the VIP back after the heal"

step "clock arb 1.5 is beyond the lease margin and says so; clock arb 1"
lab clock arb 1.5 >"$tmp/out"
grep -q "beyond lease_margin / lease" "$tmp/out" || fail "clock arb 1.5 gave no warning: $(cat "$tmp/out")"
lab clock arb 1 >/dev/null
[ "$(js .faults)" = '[]' ] || fail "clock arb 1 left a fault: $(js .faults)"
wait_for "lb1 holds the VIP" 15 holders_are lb1 || fail "lb1 does not hold the VIP after arb's restarts"

step "kill lb1, restart lb1"
lab kill lb1
[ "$(js '.nodes[] | select(.name == "lb1") | .running')" = false ] || fail "lb1 still shows running after kill"
lab restart lb1
[ "$(js '.nodes[] | select(.name == "lb1") | .running')" = true ] || fail "lb1 not running after restart"
wait_for "lb1 alone holds the VIP" 15 holders_are lb1 || fail "lb1 does not hold the VIP after its restart"

step "netem: loss on and off, delay refused without sch_netem"
lab netem lb2 loss 20%
grep -q '"netem lb2 loss 20%' <<<"$(js .faults)" || fail "status does not show the loss: $(js .faults)"
lab netem lb2 off
[ "$(js .faults)" = '[]' ] || fail "netem off left faults: $(js .faults)"
rc=$(rc_of lab netem lb2 delay 50ms)
if [ "$rc" = 2 ]; then
    grep -q sch_netem "$tmp/err" || fail "the refused delay does not name sch_netem: $(cat "$tmp/err")"
    echo "delay refused as expected: $(cat "$tmp/err")"
elif [ "$rc" = 0 ]; then
    echo "this kernel has sch_netem: $(cat "$tmp/out")"
    lab netem lb2 off
else
    fail "netem delay exited $rc: $(cat "$tmp/err")"
fi
[ "$(rc_of lab netem lb2 loss 200%)" = 2 ] || fail "loss 200% was not a usage error"

step "flap lb2 2"
lab flap lb2 2 100ms
grep -q 'state UP' <<<"$(lab exec lb2 ip -o link show eth0)" || fail "lb2's eth0 is not up after the flap"
grep -qF ' 192.0.2.2/' <<<"$(lab exec lb2 ip -o addr show dev eth0)" || fail "lb2 lost its address in the flap"
wait_for "one holder (lb1)" 15 holders_are lb1 || fail "no single holder after the flap"

step "down removes everything, and again is fine"
lab down
[ "$(leftover_ns "$name")" = 0 ] || fail "namespaces tl$name-* left after down: $(ip netns list | grep "^tl$name-")"
[ ! -e "$TANDEM_LAB_DIR/$name" ] || fail "state directory left after down"
grep -q "nothing to remove" <<<"$(lab down)" || fail "a second down did not say there was nothing to do"

step "a vrrp pair with --fence: up, status, bmc fail/ok, down"
current=$name2
lab up --fence || fail "up --fence failed"
lab status
lab status --json | tee "$tmp/status.json"
jq -e '.mode == "vrrp" and .holders == ["lb1"] and all(.nodes[]; .running and .powered) and ([.nodes[].name] == ["lb1", "lb2"])' "$tmp/status.json" >/dev/null ||
    fail "the fenced pair's status is wrong"
lab tandem lb1 fence check >"$tmp/out" 2>&1 || fail "fence check from lb1 failed: $(cat "$tmp/out")"
lab bmc lb2 fail
[ "$(js .faults)" = '["bmc lb2 fail"]' ] || fail "status does not show the failing BMC: $(js .faults)"
lab bmc lb2 ok

step "clock lb1 0.5: lb1's daemon lives at half speed; clock lb1 1: true time again"
[ "$(rc_of lab clock lb1 3)" = 2 ] || fail "clock lb1 3 was not a usage error"
# in_state_ms is the daemon's own measure of time spent MASTER: over 2 s of true time it
# grows by about 1 s at x0.5 and 2 s at x1.
in_state() { lab tandem lb1 status --json | jq '.instances[0] | select(.state == "MASTER") | .in_state_ms'; }
grows_by() {
    local a b
    a=$(in_state) && sleep 2 && b=$(in_state) && [ -n "$a" ] && [ -n "$b" ] && echo $((b - a))
}
lab clock lb1 0.5 | tee "$tmp/out"
grep -q "with its clocks at x0.5" "$tmp/out" || fail "clock did not say what it did: $(cat "$tmp/out")"
jq -e '(.faults == ["clock lb1 x0.5"]) and ([.nodes[].clock] == [0.5, 1])' <<<"$(lab status --json)" >/dev/null ||
    fail "status does not show the clock: $(lab status --json)"
wait_for "lb1 (at x0.5) holds the VIP" 15 holders_are lb1 || fail "lb1 at x0.5 did not take the VIP back"
d=$(grows_by) || fail "lb1 is not MASTER at x0.5"
echo "x0.5: in_state_ms grew by $d over 2 s"
((d > 600 && d < 1400)) || fail "at x0.5 lb1's clock advanced $d ms in 2 s of true time"
lab restart lb1 >/dev/null
[ "$(js '.nodes[0].clock')" = 0.5 ] || fail "the rate did not survive a restart"
lab clock lb1 1
[ "$(js .faults)" = '[]' ] || fail "clock lb1 1 left a fault: $(js .faults)"
wait_for "lb1 holds the VIP" 15 holders_are lb1 || fail "lb1 did not take the VIP back"
d=$(grows_by) || fail "lb1 is not MASTER on true time"
echo "x1: in_state_ms grew by $d over 2 s"
((d > 1600 && d < 2400)) || fail "on true time lb1's clock advanced $d ms in 2 s"
lab down
[ "$(leftover_ns "$name2")" = 0 ] || fail "namespaces tl$name2-* left after down"

step "config NODE: the generated config with placeholders; a config tandem check refuses stops up"
current=$name3
popts=(--mode quorum --arbiter --fence pdu)
lab config lb2 "${popts[@]}" >"$tmp/lb2.toml" || fail "config lb2 failed"
grep -qx 'state_dir = "@STATE@/lb2.state"' "$tmp/lb2.toml" || fail "config lb2 has no @STATE@ placeholder: $(cat "$tmp/lb2.toml")"
grep -qx 'driver = "pdu-snmp"' "$tmp/lb2.toml" || fail "config lb2 --fence pdu has no pdu-snmp device"
grep -qx 'priority = 150' "$tmp/lb2.toml" || fail "config lb2 does not have lb2's priority"
[ "$(rc_of lab config lb9 "${popts[@]}")" = 2 ] || fail "config of a host that is no member was not a usage error"
[ "$(rc_of lab up --fence=bogus)" = 2 ] || fail "--fence=bogus was not a usage error"
sed 's/^advert_int = .*/advert_intervall = "100ms"/' "$tmp/lb2.toml" >"$tmp/bad.toml"
line=$(grep -n '^advert_intervall' "$tmp/bad.toml" | cut -d: -f1)
[ "$(rc_of lab up "${popts[@]}" --config "lb2=$tmp/bad.toml")" = 1 ] || fail "up with a broken config did not exit 1"
grep -q "^$tmp/bad.toml:$line:1: unknown key \"advert_intervall\"" "$tmp/err" ||
    fail "up does not show tandem check's message about $tmp/bad.toml:$line: $(cat "$tmp/err")"
[ "$(leftover_ns "$name3")" = 0 ] || fail "a refused config left namespaces"
[ ! -e "$TANDEM_LAB_DIR/$name3" ] || fail "a refused config left the state directory"

step "a quorum lab fenced through a PDU, lb2 on its own config (priority 120)"
sed 's/^priority = 150$/priority = 120/' "$tmp/lb2.toml" >"$tmp/lb2-own.toml"
lab up "${popts[@]}" --config "lb2=$tmp/lb2-own.toml" || fail "up --fence pdu --config failed"
lab status --json >"$tmp/status.json"
jq -e '.holders == ["lb1"] and all(.nodes[]; .running and .powered) and .faults == []' "$tmp/status.json" >/dev/null ||
    fail "the PDU lab's status is wrong: $(cat "$tmp/status.json")"
[ "$(lab tandem lb2 status --json | jq '.instances[0].configured_priority')" = 120 ] ||
    fail "lb2 does not run with its own config (priority 120): $(lab tandem lb2 status --json | jq -c '.instances[0]')"
grep -q "own configs: lb2" <<<"$(lab status)" || fail "status does not say lb2 runs its own config"
lab tandem arb fence check >"$tmp/out" 2>&1 || fail "fence check from arb failed: $(cat "$tmp/out")"
grep -Eq '^lb1-outlet +pdu-snmp +192\.0\.2\.30:161 outlet 1 +on$' "$tmp/out" || fail "fence check does not show lb1's outlet on: $(cat "$tmp/out")"
lab fencedev lb2 fail
[ "$(js .faults)" = '["pdu fail"]' ] || fail "status does not show the failing PDU: $(js .faults)"
lab bmc lb2 ok
[ "$(js .faults)" = '[]' ] || fail "bmc lb2 ok (the alias) did not clear the PDU's fault: $(js .faults)"

step "isolate lb1 -> fenced through its PDU outlet; restart lb1 brings it back"
node_is() { [ "$(js ".nodes[] | select(.name == \"$1\") | [.running, .powered]")" = "$2" ]; }
lab isolate lb1
wait_for "lb1 powered off through its outlet" 20 node_is lb1 '[false,false]' || fail "lb1 was not fenced through the PDU"
wait_for "lb2 alone holds the VIP" 10 holders_are lb2 || fail "lb2 did not take the VIP from the fenced lb1"
grep -q "OFF (outlet 1)" <<<"$(lab status)" || fail "status does not show lb1's outlet off"
lab tandem arb fence history --json >"$tmp/history.json"
jq -e 'any(.[]; .node == "lb1" and .action == "off" and .stage == "result" and .ok)' "$tmp/history.json" >/dev/null ||
    fail "arb's fence history has no verified fence of lb1: $(lab tandem arb fence history)"
lab tandem arb fence history
lab heal
lab restart lb1 | tee "$tmp/out"
grep -q "powered on through outlet 1 of the PDU" "$tmp/out" || fail "restart did not say it powered lb1 on: $(cat "$tmp/out")"
node_is lb1 '[true,true]' || fail "lb1 is not running and powered after restart"
wait_for "lb1 holds the VIP again" 15 holders_are lb1 || fail "lb1 did not take the VIP back after its restart"
lab down

step "a quorum lab fenced through a switch: isolate lb1 -> its port down, restart lb1 -> up"
current=$name4
lab up --mode quorum --arbiter --fence switch || fail "up --fence switch failed"
lab isolate lb1
faults_have() { jq -e --arg f "$1" 'index($f) != null' <<<"$(js .faults)" >/dev/null; }
wait_for "lb1's switch port down" 20 faults_have "switch port lb1 down" || fail "lb1 was not fenced through the switch"
grep -q 'state DOWN' <<<"$(lab exec lb1 ip -o link show eth0)" || fail "lb1's eth0 is not down behind its fenced port"
node_is lb1 '[true,true]' || fail "a node fenced through the switch should run and be powered: $(js .nodes)"
wait_for "lb2 alone holds the VIP" 10 holders_are lb2 || fail "lb2 does not hold the VIP alone (lb1 fenced): $(holders)"
grep -q "port 1 DOWN" <<<"$(lab status)" || fail "status does not show lb1's port down"
lab tandem arb fence history --json >"$tmp/history.json"
jq -e 'any(.[]; .node == "lb1" and .action == "off" and .stage == "result" and .ok)' "$tmp/history.json" >/dev/null ||
    fail "arb's fence history has no verified fence of lb1: $(lab tandem arb fence history)"
lab heal
lab restart lb1 | tee "$tmp/out"
grep -q "switched port 1 of the switch up" "$tmp/out" || fail "restart did not say it switched lb1's port up: $(cat "$tmp/out")"
[ "$(js .faults)" = '[]' ] || fail "faults left after restart: $(js .faults)"
grep -q 'state UP' <<<"$(lab exec lb1 ip -o link show eth0)" || fail "lb1's eth0 is not up after restart"
wait_for "lb1 holds the VIP again" 15 holders_are lb1 || fail "lb1 did not take the VIP back after its restart"
lab down
for n in "$name3" "$name4"; do
    [ "$(leftover_ns "$n")" = 0 ] || fail "namespaces tl$n-* left after down"
done
pgrep -f "$TANDEM_LAB_DIR" >/dev/null && fail "processes of the lab are left: $(pgrep -af "$TANDEM_LAB_DIR")"
echo "PASS"
