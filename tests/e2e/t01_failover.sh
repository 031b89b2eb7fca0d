#!/usr/bin/env bash
# Acceptance 1: two tandem nodes, one VIP per family. Exactly one node holds each VIP and the
# client reaches it; after kill -9 of the master the backup holds the VIPs and the client's
# neighbour entries point at the backup's MAC (gratuitous ARP / unsolicited NA).
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 50
VIP4=192.0.2.100
VIP6=2001:db8::100

for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    {
        tandem_node_header "$name"
        cat <<EOT
[[vrrp_instance]]
name = "VI_4"
interface = "eth0"
virtual_router_id = 51
priority = $prio
version = 3
advert_int = "100ms"
virtual_ipaddress = ["$VIP4/24"]

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 52
priority = $prio
version = 3
advert_int = "100ms"
virtual_ipaddress = ["$VIP6/64"]
EOT
    } >"$LAB_DIR/$name.toml"
done

step "start lb1 (150) and lb2 (100)"
tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
wait_for "lb1 MASTER for VI_4" 10 is_state lb1 VI_4 MASTER || fail "lb1 never became master"
wait_for "lb1 MASTER for VI_6" 10 is_state lb1 VI_6 MASTER || fail "lb1 never became master (v6)"
wait_for "lb2 BACKUP" 10 is_state lb2 VI_4 BACKUP || fail "lb2 not backup"
wait_for "lb2 BACKUP (v6)" 10 is_state lb2 VI_6 BACKUP || fail "lb2 not backup (v6)"
expect "only lb1 holds $VIP4" holders_are $VIP4 lb1
expect "only lb1 holds $VIP6" holders_are $VIP6 lb1
tandem_status lb1

step "client reaches the VIPs through lb1"
expect "client pings $VIP4" lab_exec client ping -c 2 -W 1 -i 0.2 $VIP4
expect "client pings $VIP6" lab_exec client ping -6 -c 2 -W 1 -i 0.2 $VIP6
MAC1=$(lab_mac lb1) MAC2=$(lab_mac lb2)
expect "client's ARP entry for $VIP4 is lb1 ($MAC1)" neigh_is client $VIP4 "$MAC1"
expect "client's ND entry for $VIP6 is lb1 ($MAC1)" neigh_is client $VIP6 "$MAC1"
# A gratuitous ARP only overrides an entry older than locktime (1 s): let it age.
sleep 1.2

step "kill -9 lb1"
tandem_stop lb1 KILL
wait_for "lb2 MASTER for VI_4" 10 is_state lb2 VI_4 MASTER || fail "lb2 did not take over VI_4"
wait_for "lb2 MASTER for VI_6" 10 is_state lb2 VI_6 MASTER || fail "lb2 did not take over VI_6"
expect "lb2 holds $VIP4" lab_has_addr lb2 $VIP4
expect "lb2 holds $VIP6" lab_has_addr lb2 $VIP6
wait_for "client ARP entry for $VIP4 = lb2's MAC $MAC2 (gratuitous ARP)" 5 neigh_is client $VIP4 "$MAC2" ||
    fail "gratuitous ARP did not move the client's ARP entry: $(neigh_mac client $VIP4)"
wait_for "client ND entry for $VIP6 = lb2's MAC $MAC2 (unsolicited NA)" 5 neigh_is client $VIP6 "$MAC2" ||
    fail "unsolicited NA did not move the client's ND entry: $(neigh_mac client $VIP6)"
expect "client still reaches $VIP4" lab_exec client ping -c 2 -W 1 -i 0.2 $VIP4
expect "client still reaches $VIP6" lab_exec client ping -6 -c 2 -W 1 -i 0.2 $VIP6
tandem_status lb2
[ "$(counter lb2 VI_4 became_master)" -ge 1 ] || fail "became_master counter not counted"

step "lb1 comes back: stale VIPs from the killed run are cleared, it preempts"
tandem_start lb1 "$LAB_DIR/lb1.toml"
wait_for "lb1 MASTER again" 10 is_state lb1 VI_4 MASTER || fail "lb1 did not preempt back"
wait_for "lb2 gives up $VIP4" 5 holders_are $VIP4 lb1 || fail "holders of $VIP4: $(lab_holders $VIP4)"
echo PASS
