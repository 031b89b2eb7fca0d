#!/usr/bin/env bash
# A fence_on_takeover pair's node that starts while the peer's adverts do not reach it, but its
# heartbeats do, holds no first election for the instances the peer is Master of (the peer says
# which in its heartbeat frames), and still holds one for an instance the peer does not have.
#   lb1: VI_1 Master (priority 200). lb2: VI_1 Backup (100), and VI_3, which only lb2 runs.
#   1. lb2 restarts behind a filter that drops VRRP coming in (heartbeats pass): VI_1 stays on
#      lb1 alone, no fence runs, lb2's status says why; VI_3 comes up on lb2.
#   2. The filter goes: lb2 hears lb1 and stays Backup of VI_1; nothing moves.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 9
VIP1=192.0.2.101
VIP3=192.0.2.103
cluster_key
printf 'bmc-%05d%05d\n' $RANDOM $RANDOM >"$LAB_DIR/bmc.pass"
chmod 600 "$LAB_DIR/bmc.pass"
# Each node's BMC in its peer's namespace, on the peer's loopback, as in t18.
lab_bmc lb2 lb1 127.0.0.1 6231 "$(cat "$LAB_DIR/bmc.pass")"
lab_bmc lb1 lb2 127.0.0.1 6231 "$(cat "$LAB_DIR/bmc.pass")"

pair_config() {
    local name=$1 peer=$2 p1=$3
    tandem_node_header "$name"
    pair_cluster "239.192.0.2:5405"
    fenced_instance VI_1 51 "$p1" "$VIP1"
    if [ "$name" = lb2 ]; then fenced_instance VI_3 53 100 "$VIP3"; fi
    fence_ipmi_config "$peer" "127.0.0.1:6231"
}
pair_config lb1 lb2 200 >"$LAB_DIR/lb1.toml"
pair_config lb2 lb1 100 >"$LAB_DIR/lb2.toml"
for n in lb1 lb2; do
    "$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" >"$LAB_DIR/check.$n.out" 2>&1 ||
        fail "config of $n refused: $(cat "$LAB_DIR/check.$n.out")"
done

fencing_says() { tandem_status "$1" --json | jq -r '.fencing // ""' | grep -q "$2"; }
history_len() { "$TANDEM_BIN" fence history --json --socket "$LAB_DIR/$1.sock" | jq length; }
settled() { holders_are $VIP1 lb1 && holders_are $VIP3 lb2; }
# vrrp_filter HOST on|off: drop VRRP (IP protocol 112) coming into HOST; heartbeats pass.
vrrp_filter() {
    if [ "$2" = on ]; then
        lab_exec "$1" nft add table inet t21
        lab_exec "$1" nft add chain inet t21 in '{ type filter hook input priority 0; }'
        lab_exec "$1" nft add rule inet t21 in meta l4proto 112 counter drop
    else
        lab_exec "$1" nft delete table inet t21
    fi
}
vrrp_dropped() { lab_exec "$1" nft list table inet t21 | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }

step "start the pair: VI_1 on lb1, VI_3 on lb2"
for n in lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
wait_for "VI_1 on lb1, VI_3 on lb2" 20 settled || fail "the pair did not settle: $(lab_holders $VIP1) / $(lab_holders $VIP3)"
wait_for "lb2 is Backup of VI_1" 10 is_state lb2 VI_1 BACKUP || fail "lb2's VI_1 is $(tandem_field lb2 VI_1 .state)"

step "1. lb2 restarts while lb1's adverts cannot reach it (heartbeats can)"
tandem_stop lb2
wait_for "VI_3 gone with lb2" 10 lacks_addr lb2 "$VIP3" || fail "lb2 kept VI_3's address after its stop"
vrrp_filter lb2 on
vip_watch_start "$VIP1" lb1 lb2
tandem_start lb2 "$LAB_DIR/lb2.toml"
# The heartbeats say lb1 is Master of VI_1: lb2's Master_Down timer (about 360 ms) runs out
# with no Master heard, and that is not a first election.
wait_for "lb2 says why it does not take VI_1" 20 fencing_says lb2 "says it is Master of 1 instance" ||
    fail "lb2's status does not say lb1 holds VI_1: $(tandem_status lb2 --json | jq -c '{fencing, i: [.instances[] | {name, state}]}')"
tandem_status lb2 --json | jq -r .fencing
wait_for "VI_3 back on lb2 (lb1 does not hold it: a first election)" 20 holders_are $VIP3 lb2 ||
    fail "VI_3 is on '$(lab_holders $VIP3)'"
dropped=$(vrrp_dropped lb2)
echo "VRRP packets the filter dropped: $dropped"
[ "${dropped:-0}" -gt 0 ] || fail "the filter dropped no advert: $(lab_exec lb2 nft list table inet t21)"
sleep 3
expect "VI_1 still on lb1 alone" holders_are $VIP1 lb1
expect "lb2's VI_1 is still Backup" is_state lb2 VI_1 BACKUP
expect "lb2 counts the held-back takeover" counter_ge lb2 VI_1 fence_blocked_takeovers 1
expect "no fence ran on lb2" test "$(history_len lb2)" = 0
expect "no fence ran on lb1" test "$(history_len lb1)" = 0
expect "lb1's BMC on" bmc_is lb1 on
expect "lb2's BMC on" bmc_is lb2 on

step "2. the filter goes: lb2 hears lb1 and nothing moves"
vrrp_filter lb2 off
no_fencing_note() { [ -z "$(tandem_status lb2 --json | jq -r '.fencing // empty')" ]; }
wait_for "lb2's status has nothing to say" 10 no_fencing_note ||
    fail "lb2 still reports: $(tandem_status lb2 --json | jq -c .fencing)"
sleep 1
expect "VI_1 on lb1, VI_3 on lb2" settled
expect "lb2's VI_1 is Backup" is_state lb2 VI_1 BACKUP
vip_watch_verdict 200 -1
echo "PASS"
