#!/usr/bin/env bash
# Issue 3, acceptance 1 and 2: two nodes with three heartbeat channels — UDP multicast over
# bridge 1, TCP over bridge 2, a serial line over a pty pair. Cutting bridge 1, then bridge
# 2 (the bridge stops forwarding; the nodes keep their carrier), keeps the peer up; cutting the serial line too takes it down; healing brings it back.
# With bridge 1 cut, the VRRP backup's takeover is flagged as a network split. Then 20% loss
# on one channel (timeout = 3 intervals): the peer never goes down and the loss shows.
# (Loss comes from nftables: this kernel has no netem.)
source "$(dirname "$0")/lib.sh"
command -v socat >/dev/null || fail "socat is not installed (scripts/test installs it)"
lab_init
lab_bridge br1
lab_host lb1 1
lab_host lb2 2
lab_nic lb1 eth1 br1 198.51.100.1/24
lab_nic lb2 eth1 br1 198.51.100.2/24
VIP=192.0.2.100

socat pty,raw,echo=0,link="$LAB_DIR/ttyA" pty,raw,echo=0,link="$LAB_DIR/ttyB" &
SOCAT=$!
trap 'rc=$?; kill -CONT $SOCAT 2>/dev/null || true; kill $SOCAT 2>/dev/null || true; (exit $rc); lab_destroy' EXIT
wait_for "socat ptys" 5 test -e "$LAB_DIR/ttyB" || fail "socat did not start"
head -c 32 /dev/urandom | base64 >"$LAB_DIR/cluster.key"
chmod 600 "$LAB_DIR/cluster.key"

for n in lb1:150:ttyA lb2:100:ttyB; do
    IFS=: read -r name prio tty <<<"$n"
    {
        tandem_node_header "$name"
        cat <<EOT
[cluster]
name = "lab"
key_file = "$LAB_DIR/cluster.key"
nodes = [
  { name = "lb1", address = "198.51.100.1" },
  { name = "lb2", address = "198.51.100.2" },
]

[[heartbeat]]
kind = "udp-multicast"
interface = "eth0"
group = "239.192.0.1:5405"
interval = "100ms"
timeout = "300ms"

[[heartbeat]]
kind = "tcp"
port = 5406
interval = "100ms"
timeout = "500ms"

[[heartbeat]]
kind = "serial"
device = "$LAB_DIR/$tty"
baud = 115200
interval = "100ms"
timeout = "500ms"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
EOT
    } >"$LAB_DIR/$name.toml"
    "$TANDEM_BIN" check -c "$LAB_DIR/$name.toml" >/dev/null || fail "config of $name refused: $("$TANDEM_BIN" check -c "$LAB_DIR/$name.toml" 2>&1)"
done

links() { "$TANDEM_BIN" links --json --socket "$LAB_DIR/$1.sock"; }
# peer_is NODE PEER up|down
peer_is() { [ "$(links "$1" | jq -r --arg p "$2" '.peers[] | select(.name == $p) | .state')" = "$3" ]; }
# chan_is NODE PEER CHANNEL up|down
chan_is() { [ "$(links "$1" | jq -r --arg p "$2" --argjson c "$3" '.peers[] | select(.name == $p) | .links[] | select(.channel == $c) | .state')" = "$4" ]; }
chans_are() { # NODE PEER S0 S1 S2
    chan_is "$1" "$2" 0 "$3" && chan_is "$1" "$2" 1 "$4" && chan_is "$1" "$2" 2 "$5"
}
peer_downs() { "$TANDEM_BIN" events --socket "$LAB_DIR/$1.sock" | jq -c 'select(.type == "peer" and .up == false)' | wc -l; }

tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
wait_for "lb1 MASTER" 10 is_state lb1 VI_1 MASTER || fail "lb1 never became master"
for pair in lb1:lb2 lb2:lb1; do
    a=${pair%:*} b=${pair#*:}
    wait_for "$a sees $b up on all channels" 10 chans_are "$a" "$b" up up up || fail "$a: $(links "$a" | jq -c '.peers')"
done
"$TANDEM_BIN" links --socket "$LAB_DIR/lb1.sock"
grep -q "^lb2 *up *3/3" <<<"$(tandem_status lb1)" || fail "status does not list the peer: $(tandem_status lb1)"

step "cut bridge 1 (UDP multicast and VRRP): channel 0 down, peer still up"
lab_block lb1 on
lab_block lb2 on
wait_for "channel 0 down on lb1" 5 chans_are lb1 lb2 down up up || fail "lb1: $(links lb1 | jq -c '.peers[0].links')"
wait_for "channel 0 down on lb2" 5 chans_are lb2 lb1 down up up || fail "lb2: $(links lb2 | jq -c '.peers[0].links')"
expect "peer still up" peer_is lb1 lb2 up
step "... and lb2's VRRP takeover is flagged as a split, not a dead peer"
wait_for "lb2 MASTER (it cannot hear lb1's adverts)" 5 is_state lb2 VI_1 MASTER || fail "lb2 did not take over"
split=$(tandem_field lb2 VI_1 .split)
[ "$split" != null ] && [ -n "$split" ] || fail "no split warning on lb2"
echo "lb2 says: $split"
grep -q "WARNING: took over on Master_Down_Interval from master 192.0.2.1 while lb1" <<<"$(tandem_status lb2)" || fail "status does not show the warning"

step "cut bridge 2 (TCP): channel 1 down too, peer still up through serial"
lab_block lb1 on eth1
lab_block lb2 on eth1
wait_for "channel 1 down" 5 chans_are lb1 lb2 down down up || fail "lb1: $(links lb1 | jq -c '.peers[0].links')"
expect "peer still up (serial)" peer_is lb1 lb2 up

step "cut the serial line: the peer is down"
kill -STOP $SOCAT
wait_for "peer down" 5 peer_is lb1 lb2 down || fail "lb1: $(links lb1 | jq -c '.peers')"
expect "all channels down" chans_are lb1 lb2 down down down
expect "lb2 sees lb1 down too" peer_is lb2 lb1 down

step "heal: serial, then bridge 2, then bridge 1"
kill -CONT $SOCAT
wait_for "peer up via serial" 5 chans_are lb1 lb2 down down up || fail "lb1: $(links lb1 | jq -c '.peers[0].links')"
expect "peer up" peer_is lb1 lb2 up
lab_block lb1 off eth1
lab_block lb2 off eth1
wait_for "tcp up" 10 chans_are lb1 lb2 down up up || fail "lb1: $(links lb1 | jq -c '.peers[0].links')"
lab_block lb1 off
lab_block lb2 off
wait_for "udp up" 10 chans_are lb1 lb2 up up up || fail "lb1: $(links lb1 | jq -c '.peers[0].links')"
wait_for "lb1 MASTER again, lb2 BACKUP" 5 is_state lb2 VI_1 BACKUP || fail "lb2 stayed master after the heal"
wait_for "VIP on lb1 only" 5 holders_are $VIP lb1 || fail "holders: $(lab_holders $VIP)"

step "20% loss on the UDP channel (timeout = 3 intervals) for 10 s: the peer never goes down"
# This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is off), so the loss is made with an
# nftables random-drop rule on the heartbeat port, on each receiver.
downs_before=$(peer_downs lb1)
for h in lb1 lb2; do
    lab_exec $h nft add table inet lab
    lab_exec $h nft add chain inet lab in '{ type filter hook input priority 0; }'
    lab_exec $h nft add rule inet lab in udp dport 5405 numgen random mod 100 '<' 20 counter drop
done
sleep 10
"$TANDEM_BIN" links --socket "$LAB_DIR/lb1.sock"
loss=$(links lb1 | jq '.peers[0].links[] | select(.channel == 0) | .loss_percent // 0')
awk -v l="$loss" 'BEGIN { exit !(l >= 5) }' || fail "loss on channel 0 shows as $loss%"
[ "$(peer_downs lb1)" = "$downs_before" ] || fail "the peer went down under 20% loss on one channel"
expect "peer up" peer_is lb1 lb2 up
for h in lb1 lb2; do lab_exec $h nft delete table inet lab; done
echo PASS
