#!/usr/bin/env bash
# Issue 5, acceptance 4 (and 2, 5 for this path): two nodes in vrrp mode with
# fence_on_takeover and no arbiter. VI_1 is lb1's (priority 200), VI_2 is lb2's, so in a full
# split each node wants the other's VIP and each would fence the other; lb1 has
# fence_delay = "3s" (plus up to 1 s at random), so lb2 fences first. Each node reaches its
# peer's simulated BMC over its own loopback (a management network the split does not cut);
# powering a BMC off kills the node's daemon and takes it off the network.
#   4. Three full splits on every channel: each time exactly one node is fenced (lb1, the one
#      with the delay), the survivor holds both VIPs, and the history says so.
#   2. Both BMCs answer "done" without acting: no VIP is taken, and status says why.
#   5. The BMC password appears in no log line, status output or error message.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 9
VIP1=192.0.2.101
VIP2=192.0.2.102
cluster_key
bmc_pass=$(printf 'bmc-%05d%05d' $RANDOM $RANDOM)
printf '%s\n' "$bmc_pass" >"$LAB_DIR/bmc.pass"
chmod 600 "$LAB_DIR/bmc.pass"
# The BMC of each node runs in its peer's namespace, on the peer's loopback.
lab_bmc lb2 lb1 127.0.0.1 6231 "$bmc_pass"
lab_bmc lb1 lb2 127.0.0.1 6231 "$bmc_pass"

pair_config() {
    local name=$1 peer=$2 p1=$3 p2=$4 delay=$5
    tandem_node_header "$name" | sed "s/^name = \"$name\"\$/name = \"$name\"\nfence_delay = \"$delay\"\nfence_random_delay = \"1s\"/"
    pair_cluster "239.192.0.2:5405"
    fenced_instance VI_1 51 "$p1" "$VIP1"
    fenced_instance VI_2 52 "$p2" "$VIP2"
    fence_ipmi_config "$peer" "127.0.0.1:6231"
}
pair_config lb1 lb2 200 100 3s >"$LAB_DIR/lb1.toml"
pair_config lb2 lb1 100 200 0s >"$LAB_DIR/lb2.toml"
for n in lb1 lb2; do
    "$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" >"$LAB_DIR/check.$n.out" 2>&1 ||
        fail "config of $n refused: $(cat "$LAB_DIR/check.$n.out")"
done

fencing_says() { tandem_status "$1" --json | jq -r '.fencing // ""' | grep -q "$2"; }
history_count() {
    "$TANDEM_BIN" fence history --json --socket "$LAB_DIR/$1.sock" |
        jq --arg n "$2" --arg s "$3" --argjson ok "$4" '[.[] | select(.node == $n and .stage == $s and .ok == $ok)] | length'
}
survivor_holds() { holders_are $VIP1 lb2 && holders_are $VIP2 lb2; }
both_home() { holders_are $VIP1 lb1 && holders_are $VIP2 lb2; }
split() { lab_block lb1 "$1"; lab_block lb2 "$1"; }

step "start lb1 and lb2"
for n in lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
wait_for "VI_1 on lb1 and VI_2 on lb2" 20 both_home || fail "the pair did not settle: $(lab_holders $VIP1) / $(lab_holders $VIP2)"

for round in 1 2 3; do
    step "acceptance 4, round $round: full split on every channel"
    verified_before=$(history_count lb2 lb1 result true)
    # VI_1's address is watched through the split (the preemption when lb1 returns overlaps
    # for a moment by VRRP's design, so it is not in the window).
    vip_watch_start "$VIP1" lb1 lb2
    split on
    wait_for "lb1's BMC off" 20 bmc_is lb1 off || fail "round $round: lb1 was not fenced: $(tandem_status lb2 --json | jq -c .fencing)"
    wait_for "lb2 holds both VIPs" 20 survivor_holds ||
        fail "round $round: the survivor does not hold both VIPs: $(lab_holders $VIP1) / $(lab_holders $VIP2)"
    # lb1's own fence of lb2 would have come after its delay (3-4 s): lb2 must still be on.
    stays_for 5 bmc_is lb2 on || fail "round $round: both nodes were fenced"
    expect "lb2 recorded the verified fence" test "$(history_count lb2 lb1 result true)" -gt "$verified_before"
    vip_watch_verdict 200 -1
    "$TANDEM_BIN" fence history --socket "$LAB_DIR/lb2.sock" | tail -2

    step "round $round: the operator powers lb1 on, the network heals, tandem restarts"
    lab_exec lb2 "$TANDEM_BIN" fence lb1 --action on --yes -c "$LAB_DIR/lb2.toml" >>"$LAB_DIR/out.poweron" 2>&1 ||
        fail "powering lb1 on failed: $(cat "$LAB_DIR/out.poweron")"
    expect "lb1's BMC on" bmc_is lb1 on
    split off
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "VI_1 back on lb1 (preempt), VI_2 on lb2" 20 both_home ||
        fail "round $round: the pair did not settle again: $(lab_holders $VIP1) / $(lab_holders $VIP2)"
done

step "acceptance 2: both BMCs say done but do nothing → no VIP taken, status says why"
touch "$LAB_DIR/bmc-lb1/ignore" "$LAB_DIR/bmc-lb2/ignore"
vip_watch_start "$VIP1" lb1 lb2
split on
wait_for "lb2 reports the failed fence" 20 fencing_says lb2 "failed" || fail "lb2's status does not say the fence failed"
tandem_status lb2 --json | jq -r .fencing
stays_for 3 both_home || fail "a VIP was taken without a verified fence"
expect "lb2 counts blocked takeovers" counter_ge lb2 VI_1 fence_blocked_takeovers 1
split off
no_fencing_note() { [ -z "$(tandem_status lb2 --json | jq -r '.fencing // empty')" ]; }
wait_for "the peers see each other again" 10 no_fencing_note ||
    fail "lb2 still reports fencing after the heal: $(tandem_status lb2 --json | jq -c .fencing)"
rm -f "$LAB_DIR/bmc-lb1/ignore" "$LAB_DIR/bmc-lb2/ignore"
expect "VIPs home" both_home
vip_watch_verdict 200 -1

step "acceptance 5: the BMC password is in no log, status or output"
for n in lb1 lb2; do tandem_status "$n" --json >"$LAB_DIR/out.status.$n" 2>&1 || true; done
if grep -rlF -- "$bmc_pass" "$LAB_DIR"/*.log "$LAB_DIR"/out.* "$LAB_DIR"/check.* 2>/dev/null; then
    fail "the BMC password leaked into the files above"
fi
echo "PASS"
