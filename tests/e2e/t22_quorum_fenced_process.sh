#!/usr/bin/env bash
# Quorum mode with fence_on_takeover and unfence = "auto": the leader switches a node it
# fenced back on only when a new process of that node reports, never for the process that
# was running when it was fenced. lb1's BMC here cuts lb1 off the network without stopping
# its daemon, as a switch port does.
#   1. lb1, the holder, is frozen (SIGSTOP): the leader fences it (BMC off, read back) and
#      lb2 takes the VIP.
#   2. lb1's daemon resumes behind the fence after its lease has run out, and lb1's power
#      comes back out of band (ipmitool at the BMC, no fence record): the same lb1 process
#      rejoins. Whichever member leads then (lb1's return may cause an election; a new
#      leader knows the fence from the log) logs that the fenced process is heard again and
#      does not unfence lb1 (before the incarnation check it did, as for a restart).
#   3. lb1 restarts (a new process) and is in the quorum again; nothing was held twice.
# vip-watch checks for two holders over the whole test.
source "$(dirname "$0")/lib.sh"
lab_init
VIP=192.0.2.100
quorum_fenced $VIP 3s 500ms 200ms keep

has_quorum() { [ "$(quorum_field "$1" .quorum)" = true ]; }
# unfences BY: how many verified "on" records of lb1 arb's history has, by the operator
# (BY = operator) or by a leader on its own (BY = leader).
unfences() {
    "$TANDEM_BIN" fence history --json --socket "$LAB_DIR/arb.sock" |
        jq --arg by "$1" '[.[] | select(.node == "lb1" and .action == "on" and .ok
            and ((.by | contains("operator")) == ($by == "operator")))] | length'
}
unfences_are() { [ "$(unfences "$1")" = "$2" ]; }
heard_again_logged() { grep -q "heard again from the process that was running when it was fenced" "$LAB_DIR"/lb2.log "$LAB_DIR"/arb.log; }

step "start vip-watch, the arbiter, lb1 and lb2"
vip_watch_start "$VIP" lb1 lb2 arb
for n in arb lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
for n in lb1 lb2 arb; do wait_for "$n in a quorum" 30 has_quorum $n || fail "$n has no quorum"; done
wait_for "lb1 holds the VIP" 30 holders_are $VIP lb1 || fail "lb1 did not get the VIP"

step "1: lb1 frozen → fenced (cut off, daemon kept), lb2 takes the VIP"
kill -STOP "$(tandem_pid lb1)"
stopped_at=$(date +%s)
wait_for "lb1's BMC shows power off" 20 bmc_is lb1 off || fail "lb1 was not fenced: $(tail -5 "$LAB_DIR/arb.log")"
wait_for "lb2 holds the VIP" 20 holders_are $VIP lb2 ||
    fail "the VIP did not move after the fence: $(tandem_status lb2 | sed -n '/^GROUP/,$p')"
expect "lb1's daemon still runs" kill -0 "$(tandem_pid lb1)"

step "2: the fenced process resumes and is switched on by the operator: no automatic unfence"
# Past lb1's own lease (3 s) and margin: resumed, it holds nothing by its own clock.
sleep $((stopped_at + 5 - $(date +%s) > 0 ? stopped_at + 5 - $(date +%s) : 0))
kill -CONT "$(tandem_pid lb1)"
lab_exec bmc1 ipmitool -I lanplus -C 3 -N 1 -R 2 -H "$(lab_ip4 bmc1)" -p 6230 -U admin \
    -f "$LAB_DIR/bmc.pass" chassis power on >"$LAB_DIR/out.poweron" 2>&1 ||
    fail "powering lb1 on failed: $(cat "$LAB_DIR/out.poweron")"
expect "lb1's BMC shows power on" bmc_is lb1 on
wait_for "the same lb1 process back in the quorum" 30 has_quorum lb1 || fail "lb1 did not rejoin"
stays_for 3 unfences_are leader 0 || fail "a leader unfenced lb1 for the process it had fenced"
expect "no operator record either" unfences_are operator 0
wait_for "the leader says the fenced process is back" 10 heard_again_logged ||
    fail "no leader logged the fenced process: $(grep -h raft: "$LAB_DIR"/lb2.log "$LAB_DIR"/arb.log | tail -5)"

step "3: lb1 restarts: a new process, in the quorum again"
tandem_stop lb1 KILL
tandem_start lb1 "$LAB_DIR/lb1.toml"
wait_for "lb1 back in the quorum" 30 has_quorum lb1 || fail "lb1 did not rejoin after a restart"
wait_for "lb1 takes the VIP back (preempt)" 30 holders_are $VIP lb1 || fail "lb1 did not get the VIP back"
vip_watch_verdict 1000 100
echo "PASS"
