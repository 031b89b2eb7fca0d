#!/usr/bin/env bash
# Issue 4, acceptance 1, 2, 4 and 5: quorum mode with lb1, lb2 and an arbiter on one
# network, a client beside them. vip-watch samples every node's addresses and the ARP
# replies the client gets every 5 ms for the whole test and must find no instant with two
# holders.
#   5. `tandem standby lb1` hands the VIP to lb2 (priority-0 advert); `unstandby` + preempt
#      brings it back.
#   2. Isolating the arbiter, then lb2, moves nothing.
#   1. Isolating lb1 on every path: lb1 drops the VIP before its lease ends, lb2 takes it
#      only after; lb1 gets it back (gracefully) when the network heals.
#   2. kill -9 of the Raft leader: a new leader is elected, the VIP has a holder again.
#   4. Forged and unauthenticated Raft frames from the client are counted and change nothing.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host arb 3
lab_host client 9
VIP=192.0.2.100
quorum_configs $VIP

q() { quorum_field "$@"; }
has_quorum() { [ "$(q "$1" .quorum)" = true ]; }
leader_is_known() { local l; l=$(q "$1" .leader); [ -n "$l" ] && [ "$l" != null ]; }
group_holder_is() { [ "$(q "$1" '.groups.VI_1.holder')" = "$2" ]; }

step "start vip-watch, the arbiter, lb1 and lb2"
ip netns exec "$(lab_ns client)" true # the client namespace exists
vip_watch_start "$VIP" lb1 lb2 arb
for n in arb lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
wait_for "a Raft leader with quorum on every node" 20 bash -c "
    for n in lb1 lb2 arb; do
        [ \"\$('$TANDEM_BIN' status --socket '$LAB_DIR/'\$n.sock --json | jq -r .quorum.quorum)\" = true ] || exit 1
    done" || fail "no Raft leader"
wait_for "lb1 (priority 200) holds the VIP" 20 holders_are $VIP lb1 || fail "lb1 did not get the VIP"
expect "lb1 MASTER" is_state lb1 VI_1 MASTER
expect "lb2 BACKUP" is_state lb2 VI_1 BACKUP
expect "status names the holder" group_holder_is arb lb1
tandem_status lb1 | sed -n '/^raft/,$p'

step "acceptance 5: tandem standby lb1 → lb2 takes over through the priority-0 handover"
"$TANDEM_BIN" standby lb1 --socket "$LAB_DIR/lb2.sock" || fail "tandem standby failed"
wait_for "lb2 holds the VIP" 10 holders_are $VIP lb2 || fail "standby did not move the VIP"
wait_for "lb2 heard lb1's priority 0" 5 counter_ge lb2 VI_1 priority_zero_received 1 || fail "no priority-0 advert from lb1"
expect "lb1 is standby in status" test "$(q arb '.members[] | select(.name == "lb1") | .standby')" = true
"$TANDEM_BIN" unstandby lb1 --socket "$LAB_DIR/arb.sock" || fail "tandem unstandby failed"
wait_for "lb1 takes it back (preempt)" 10 holders_are $VIP lb1 || fail "unstandby did not bring the VIP back"
"$TANDEM_BIN" standby nosuch --socket "$LAB_DIR/lb1.sock" 2>"$LAB_DIR/err" && fail "standby of an unknown node accepted"
grep -q "nosuch is not a voter" "$LAB_DIR/err" || fail "unclear error: $(cat "$LAB_DIR/err")"

step "acceptance 2: isolating the arbiter, then lb2, moves nothing"
epoch=$(q lb1 .groups.VI_1.epoch)
lab_block arb on
stays_for 3 holders_are $VIP lb1 || fail "the VIP moved while the arbiter was isolated"
lab_block arb off
wait_for "arbiter back in the quorum" 10 has_quorum arb || fail "arbiter did not rejoin"
lab_block lb2 on
stays_for 3 holders_are $VIP lb1 || fail "the VIP moved while lb2 was isolated"
lab_block lb2 off
wait_for "lb2 back in the quorum" 10 has_quorum lb2 || fail "lb2 did not rejoin"
expect "same lease epoch" test "$(q lb1 .groups.VI_1.epoch)" = "$epoch"

step "acceptance 1: isolate lb1 on every path"
lab_block lb1 on
t0=$(date +%s%N)
wait_for "lb1 drops the VIP" 5 lacks_addr lb1 $VIP || fail "lb1 kept the VIP after losing its lease"
t1=$(date +%s%N)
wait_for "lb2 takes the VIP" 10 holders_are $VIP lb2 || fail "lb2 did not take over"
t2=$(date +%s%N)
echo "lb1 dropped the VIP $(((t1 - t0) / 1000000)) ms after isolation, lb2 took it $(((t2 - t0) / 1000000)) ms after"
grep -q '"lease".*held=false\|lease.*held=false' "$LAB_DIR/lb1.log" || fail "lb1 did not log losing its lease"
lab_block lb1 off
wait_for "lb1 gets the VIP back after the heal (preempt)" 15 holders_are $VIP lb1 || fail "lb1 did not take the VIP back"

step "acceptance 2: kill -9 the Raft leader"
leader=$(q lb2 .leader)
term=$(q lb2 .term)
echo "leader is $leader (term $term)"
tandem_stop "$leader" KILL
others=()
for n in lb1 lb2 arb; do [ "$n" = "$leader" ] || others+=("$n"); done
new_leader_elected() {
    local l
    l=$(q "${others[0]}" .leader)
    [ -n "$l" ] && [ "$l" != null ] && [ "$l" != "$leader" ] && has_quorum "${others[0]}" && has_quorum "${others[1]}"
}
wait_for "a new leader" 15 new_leader_elected || fail "no new leader after killing $leader"
echo "new leader: $(q "${others[0]}" .leader) (term $(q "${others[0]}" .term))"
if [ "$leader" = arb ]; then
    stays_for 2 holders_are $VIP lb1 || fail "the VIP moved though its holder lives"
else
    wait_for "a voter holds the VIP" 15 bash -c "[ -n \"\$(ip -n $(lab_ns lb1) -o addr show dev eth0 | grep -F ' $VIP/')\$(ip -n $(lab_ns lb2) -o addr show dev eth0 | grep -F ' $VIP/')\" ]" || fail "nobody holds the VIP after the leader died"
fi
tandem_start "$leader" "$LAB_DIR/$leader.toml"
wait_for "$leader rejoins with its log" 15 has_quorum "$leader" || fail "$leader did not rejoin"
wait_for "lb1 holds the VIP again" 15 holders_are $VIP lb1 || fail "lb1 did not end up with the VIP"

step "acceptance 4: forged and unauthenticated Raft frames from the client"
epoch=$(q lb1 .groups.VI_1.epoch)
term=$(q lb1 .term)
before=$(q lb1 .rpc.bad_auth)
mal_before=$(q lb1 .rpc.malformed)
lab_exec client python3 - <<'PY' || fail "could not send forged frames"
import json, socket, struct, os
def conn():
    s = socket.create_connection(("192.0.2.1", 5410), timeout=5)
    s.recv(16)  # the server's nonce
    return s
# A well-formed request with a MAC made with the wrong key, five times.
body = json.dumps({"Propose": {"SetStandby": {"node": "lb1", "standby": True}}}).encode()
for _ in range(5):
    s = conn()
    s.sendall(struct.pack(">I", len(body)) + body + os.urandom(32))
    s.recv(100)
    s.close()
# Random bytes as a frame, and an oversized length.
s = conn(); s.sendall(struct.pack(">I", 64) + os.urandom(96)); s.recv(100); s.close()
s = conn(); s.sendall(struct.pack(">I", 0xFFFFFFF0)); s.recv(100); s.close()
PY
wait_for "bad_auth counted" 5 bash -c "[ \"\$('$TANDEM_BIN' status --socket '$LAB_DIR/lb1.sock' --json | jq .quorum.rpc.bad_auth)\" -ge $((before + 6)) ]" || fail "forged frames not counted as bad_auth ($(q lb1 .rpc))"
wait_for "oversized frame counted" 5 bash -c "[ \"\$('$TANDEM_BIN' status --socket '$LAB_DIR/lb1.sock' --json | jq .quorum.rpc.malformed)\" -ge $((mal_before + 1)) ]" || fail "oversized frame not counted ($(q lb1 .rpc))"
expect "lb1 not on standby" test "$(q arb '.members[] | select(.name == "lb1") | .standby')" = false
expect "same epoch" test "$(q lb1 .groups.VI_1.epoch)" = "$epoch"
expect "same term" test "$(q lb1 .term)" = "$term"
expect "lb1 still holds the VIP" holders_are $VIP lb1

step "vip-watch: never two holders"
vip_watch_verdict 1000 100
echo "PASS"
