#!/usr/bin/env bash
# Issue 5, acceptance 3 (and 2, 5 for this path): quorum mode with fence_on_takeover. lb1,
# lb2 and an arbiter; each load balancer has a simulated BMC (ipmi_sim) in a namespace of its
# own on the same network, so any Raft leader can reach it while the node itself is cut off.
# Powering a BMC off kills its node's daemon and takes the node off the network, as losing
# power does. The lease is 30 s, so a VIP that moves within 20 s moved because of the fence,
# not because the lease ran out.
#   1. kill -9 and isolate the holder lb1: the leader fences it (BMC off, read back), the
#      attempt and the result are in the Raft log and in `tandem fence history` on every
#      member, and lb2 takes the VIP right after.
#   2. The BMC answers "done" but does not act: the fence fails with a reason, is recorded as
#      failed, and lb2 does not take the VIP while lb1 may still hold it; once the BMC works
#      again the retry fences lb1 and lb2 takes over.
#   5. The BMC password appears in no log line, status output or error message.
# vip-watch checks for two holders over the whole test.
source "$(dirname "$0")/lib.sh"
lab_init
VIP=192.0.2.100
quorum_fenced $VIP 30s 1s 500ms
bmc_pass=$BMC_PASS

q() { quorum_field "$@"; }
has_quorum() { [ "$(q "$1" .quorum)" = true ]; }
# fences NODE-ASKED STAGE OK: how many records of lb1 with that stage and result NODE-ASKED's
# `tandem fence history --json` shows.
fences() {
    "$TANDEM_BIN" fence history --json --socket "$LAB_DIR/$1.sock" |
        jq --arg s "$2" --argjson ok "$3" '[.[] | select(.node == "lb1" and .stage == $s and .ok == $ok)] | length'
}
fences_ge() { local n; n=$(fences "$1" "$2" "$3") && [ "$n" -ge "$4" ]; }
# power_on_lb1: the operator switches lb1 back on, heals its network and starts tandem.
power_on_lb1() {
    lab_exec lb2 "$TANDEM_BIN" fence lb1 --action on --yes -c "$LAB_DIR/lb2.toml" >>"$LAB_DIR/out.poweron" 2>&1 ||
        fail "powering lb1 on failed: $(cat "$LAB_DIR/out.poweron")"
    expect "lb1's BMC shows power on" bmc_is lb1 on
    lab_block lb1 off
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "lb1 back in the quorum" 30 has_quorum lb1 || fail "lb1 did not rejoin"
    wait_for "lb1 takes the VIP back (preempt)" 30 holders_are $VIP lb1 || fail "lb1 did not get the VIP back"
}

step "start vip-watch, the arbiter, lb1 and lb2"
vip_watch_start "$VIP" lb1 lb2 arb
for n in arb lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
for n in lb1 lb2 arb; do wait_for "$n in a quorum" 30 has_quorum $n || fail "$n has no quorum"; done
wait_for "lb1 holds the VIP" 30 holders_are $VIP lb1 || fail "lb1 did not get the VIP"
lab_exec arb "$TANDEM_BIN" fence check -c "$LAB_DIR/arb.toml" >"$LAB_DIR/out.check" 2>&1 ||
    fail "fence check failed: $(cat "$LAB_DIR/out.check")"
cat "$LAB_DIR/out.check"
expect "no fence recorded yet" test "$(fences lb2 result true)" = 0

step "acceptance 3: kill -9 and isolate the holder lb1 → fenced, recorded, VIP moves at once"
start=$(date +%s%N)
tandem_stop lb1 KILL
lab_block lb1 on
wait_for "lb1's BMC shows power off" 20 bmc_is lb1 off || fail "lb1 was not fenced: $(tail -5 "$LAB_DIR/arb.log")"
fenced_at=$(date +%s%N)
wait_for "lb2 holds the VIP (well before the 30 s lease)" 20 holders_are $VIP lb2 ||
    fail "the VIP did not move after the fence: $(tandem_status lb2 | sed -n '/^GROUP/,$p')"
moved_at=$(date +%s%N)
echo "fenced $(((fenced_at - start) / 1000000)) ms after kill -9; VIP on lb2 $(((moved_at - start) / 1000000)) ms after (lease 30 s)"
for n in lb2 arb; do
    expect "$n's history has the attempt" fences_ge $n attempt false 1
    expect "$n's history has the verified fence" fences_ge $n result true 1
done
"$TANDEM_BIN" fence history --socket "$LAB_DIR/lb2.sock" | tee "$LAB_DIR/out.history"
grep -q "verified" "$LAB_DIR/out.history" || fail "fence history does not show the verified fence"
expect "bmc2 untouched" bmc_is lb2 on

step "lb1 is powered on by the operator (recorded) and takes its VIP back; unfence = auto"
power_on_lb1
wait_for "the operator's power-on in the history" 10 bash -c \
    "'$TANDEM_BIN' fence history --json --socket '$LAB_DIR/arb.sock' | jq -e 'any(.[]; .action == \"on\" and (.by | contains(\"operator\")))'" ||
    fail "the operator's fence is not in the history"
# The leader heard the node it fenced again: with unfence = "auto" it switched it on itself
# (already on here, so it reads back on at once) and recorded that.
wait_for "the leader's automatic unfence in the history" 10 bash -c \
    "'$TANDEM_BIN' fence history --json --socket '$LAB_DIR/lb2.sock' | jq -e 'any(.[]; .action == \"on\" and .ok and (.by | contains(\"operator\") | not))'" ||
    fail "no automatic unfence recorded"

step "acceptance 2: the BMC says done but does nothing → failed, recorded, VIP not taken; then retried"
touch "$LAB_DIR/bmc-lb1/ignore"
failed_before=$(fences lb2 result false)
tandem_stop lb1 KILL
lab_block lb1 on
wait_for "a failed fence of lb1 in the history" 40 fences_ge lb2 result false $((failed_before + 1)) ||
    fail "no failed fence recorded: $(tail -5 "$LAB_DIR/lb2.log")"
expect "lb1's BMC still on" bmc_is lb1 on
"$TANDEM_BIN" fence history --json --socket "$LAB_DIR/arb.sock" |
    jq -r '[.[] | select(.node == "lb1" and .stage == "result" and .ok == false)] | last | .detail' | tee "$LAB_DIR/out.failed"
grep -q "level 1" "$LAB_DIR/out.failed" || fail "the failed fence gives no reason"
stays_for 3 lacks_addr lb2 $VIP || fail "lb2 took the VIP without a verified fence"
expect "the group still names lb1" test "$(q arb .groups.VI_1.holder)" = lb1
rm -f "$LAB_DIR/bmc-lb1/ignore"
wait_for "the retry fences lb1" 30 bmc_is lb1 off || fail "the fence was not retried"
wait_for "lb2 holds the VIP" 20 holders_are $VIP lb2 || fail "the VIP did not move after the retried fence"

step "heal"
power_on_lb1
vip_watch_verdict 1000 100

step "acceptance 5: the BMC password is in no log, status or output"
for n in lb1 lb2 arb; do tandem_status "$n" --json >"$LAB_DIR/out.status.$n" 2>&1 || true; done
if grep -rlF -- "$bmc_pass" "$LAB_DIR"/*.log "$LAB_DIR"/out.* "$LAB_DIR"/check.* 2>/dev/null; then
    fail "the BMC password leaked into the files above"
fi
echo "PASS"
