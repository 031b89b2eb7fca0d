#!/usr/bin/env bash
# Issue 5: `unfence = "auto"` in a vrrp pair fenced through switch ports. Each node's service
# port (eth0, where the VIP lives) is a port of a simulated IF-MIB switch (snmpd) whose
# admin-down really takes the node's eth0 down; the heartbeats run on eth0 and on a second,
# independent network (eth1), which the fence leaves alone.
#   1. lb1 (the master) hangs (SIGSTOP): silent on both channels, lb2 fences its switch port
#      (read back down), lb1's eth0 goes down, lb2 takes the VIP.
#   2. lb1 resumes as the same process: heard again on eth1, but a resumed hung process may
#      still have its VIPs configured behind the port, so the port stays down and lb2's status
#      says why.
#   3. tandem restarts on lb1 (a new incarnation, stale VIPs removed at start): lb2 switches
#      the port on again by itself, records it, and lb1 takes its VIP back (preempt).
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 9
lab_bridge br1
lab_nic lb1 eth1 br1 10.99.0.1/24
lab_nic lb2 eth1 br1 10.99.0.2/24
VIP=192.0.2.100
cluster_key
community="sw-$RANDOM$RANDOM"
printf '%s\n' "$community" >"$LAB_DIR/switch.community"
chmod 600 "$LAB_DIR/switch.community"

# switch_for HOST NODE: the switch port of NODE's eth0, simulated in HOST's namespace on its
# loopback (a management path the fence does not cut).
switch_for() {
    local host=$1 node=$2
    lab_exec "$host" env SIM_BIND=127.0.0.1 SNMP_RW_COMMUNITY="$community" \
        "$SIMS/snmp/start-snmp.sh" ifmib-switch 1161 "$LAB_DIR/sw-$node" "$node-eth0" \
        --hook "ip -n $(lab_ns "$node") link set dev eth0 \"\$3\"" >/dev/null ||
        fail "the switch simulator for $node did not start"
}
switch_for lb2 lb1
switch_for lb1 lb2
port_is() { [ "$(cat "$LAB_DIR/sw-$1/port.1")" = "$2" ]; }
eth0_is() { lab_exec "$1" ip -o link show eth0 | grep -q "state $2"; }

pair_config() {
    local name=$1 peer=$2 prio=$3 delay=$4
    tandem_node_header "$name" | sed "s/^name = \"$name\"\$/name = \"$name\"\nfence_delay = \"$delay\"/"
    pair_cluster "239.192.0.4:5405" 'unfence = "auto"'
    cat <<EOT

[[heartbeat]]
kind = "udp-multicast"
interface = "eth1"
group = "239.192.0.5:5405"
interval = "100ms"
timeout = "500ms"
EOT
    fenced_instance VI_1 51 "$prio" "$VIP"
    cat <<EOT

[[fence_device]]
name = "$peer-port"
driver = "switch-snmp"
address = "127.0.0.1:1161"
port = "$peer-eth0"
snmp_version = "2c"
community_file = "$LAB_DIR/switch.community"
timeout = "5s"
retries = 0

[[fence_level]]
node = "$peer"
level = 1
devices = [{ device = "$peer-port" }]
EOT
}
pair_config lb1 lb2 200 3s >"$LAB_DIR/lb1.toml"
pair_config lb2 lb1 100 0s >"$LAB_DIR/lb2.toml"
for n in lb1 lb2; do
    "$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" >"$LAB_DIR/check.$n.out" 2>&1 ||
        fail "config of $n refused: $(cat "$LAB_DIR/check.$n.out")"
done
history_count() {
    "$TANDEM_BIN" fence history --json --socket "$LAB_DIR/lb2.sock" |
        jq --arg a "$1" '[.[] | select(.node == "lb1" and .action == $a and .stage == "result" and .ok)] | length'
}
fencing_says() { tandem_status lb2 --json | jq -r '.fencing // ""' | grep -q "$1"; }

step "start lb1 and lb2"
for n in lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
wait_for "lb1 holds the VIP" 20 holders_are $VIP lb1 || fail "lb1 did not get the VIP"

step "lb1 hangs: lb2 fences its switch port and takes the VIP"
kill -STOP "$(tandem_pid lb1)"
wait_for "lb1's switch port down" 20 port_is lb1 down || fail "lb1 was not fenced: $(tandem_status lb2 --json | jq -c .fencing)"
wait_for "lb1's eth0 down" 5 eth0_is lb1 DOWN || fail "the switch port did not take lb1's eth0 down"
wait_for "lb2 holds the VIP" 20 lab_has_addr lb2 $VIP || fail "lb2 did not take the VIP after the fence"
expect "verified off in lb2's history" test "$(history_count off)" = 1

step "lb1 resumes as the same process: heard on eth1, not unfenced"
kill -CONT "$(tandem_pid lb1)"
wait_for "lb2 says the same process is back" 10 fencing_says "same process" ||
    fail "lb2 does not say why lb1 stays fenced: $(tandem_status lb2 --json | jq -c .fencing)"
stays_for 3 port_is lb1 down || fail "a resumed hung process was unfenced"
expect "no unfence recorded" test "$(history_count on)" = 0

step "tandem restarts on lb1: lb2 switches its port on again, lb1 takes its VIP back"
tandem_stop lb1
tandem_start lb1 "$LAB_DIR/lb1.toml"
wait_for "lb1's switch port up" 20 port_is lb1 up || fail "lb1 was not unfenced: $(tail -5 "$LAB_DIR/lb2.log")"
wait_for "lb1's eth0 up" 5 eth0_is lb1 UP || fail "lb1's eth0 did not come back"
# The port goes up when the simulator takes the SET; lb2 records the result after it has
# read the port back, a moment later.
on_recorded() { test "$(history_count on)" = 1; }
wait_for "verified on in lb2's history" 5 on_recorded ||
    fail "lb2's history has $(history_count on) verified 'on' records, not 1"
wait_for "lb1 holds the VIP again" 20 holders_are $VIP lb1 || fail "lb1 did not take its VIP back: $(lab_holders $VIP)"
"$TANDEM_BIN" fence history --socket "$LAB_DIR/lb2.sock"
if grep -rlF -- "$community" "$LAB_DIR"/*.log "$LAB_DIR"/check.* 2>/dev/null; then
    fail "the switch community leaked into the files above"
fi
echo "PASS"
