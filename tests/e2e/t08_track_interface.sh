#!/usr/bin/env bash
# Issue 6, acceptance 2: link down on a tracked interface faults the instance and the VIP
# moves; link up brings it back. Also: the instance's own interface losing its link faults
# it (the VIP is removed instead of staying on a node nobody can reach).
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
VIP=192.0.2.100
ip -n "$(lab_ns lb1)" link add eth1 type veth peer name eth1p
ip -n "$(lab_ns lb1)" link set eth1p up
ip -n "$(lab_ns lb1)" link set eth1 up
for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    track=""
    [ "$name" = lb1 ] && track='track_interface = ["eth1"]'
    {
        tandem_node_header "$name"
        cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
$track
EOT
    } >"$LAB_DIR/$name.toml"
done
tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
wait_for "lb1 MASTER" 10 is_state lb1 VI_1 MASTER || fail "lb1 never became master"
wait_for "lb2 BACKUP" 10 is_state lb2 VI_1 BACKUP || fail "lb2 not backup"

step "eth1 (tracked) goes down on lb1"
ip -n "$(lab_ns lb1)" link set eth1 down
wait_for "lb1 FAULT" 5 is_state lb1 VI_1 FAULT || fail "lb1 did not fault"
wait_for "lb2 MASTER" 5 is_state lb2 VI_1 MASTER || fail "lb2 did not take over"
wait_for "VIP on lb2 only" 5 holders_are $VIP lb2 || fail "holders: $(lab_holders $VIP)"
grep -q "interface eth1 down (weight 0): FAULT" <<<"$(tandem_status lb1)" || fail "status does not say why: $(tandem_status lb1)"
step "eth1 comes back"
ip -n "$(lab_ns lb1)" link set eth1 up
wait_for "lb1 MASTER again" 10 is_state lb1 VI_1 MASTER || fail "lb1 did not come back"
wait_for "VIP on lb1 only" 5 holders_are $VIP lb1 || fail "holders: $(lab_holders $VIP)"

step "lb1's own interface loses its link: FAULT, VIP removed there"
lab_link lb1 down
wait_for "lb1 FAULT" 5 is_state lb1 VI_1 FAULT || fail "lb1 did not fault on its own link"
wait_for "lb1 removed the VIP" 5 lacks_addr lb1 $VIP || fail "lb1 kept the VIP"
wait_for "lb2 MASTER" 5 is_state lb2 VI_1 MASTER || fail "lb2 did not take over"
lab_link lb1 up
wait_for "lb1 MASTER again" 10 is_state lb1 VI_1 MASTER || fail "lb1 did not recover"
echo PASS
