#!/usr/bin/env bash
# Acceptance 2: SIGTERM of the master sends a priority-0 advert (seen on the wire) and the
# backup takes over after Skew_Time, not Master_Down_Interval. advert_int is 3 s so the two
# differ by seconds: Skew_Time(lb2, priority 100) = 156 * 3 / 256 = 1.83 s, MDI = 10.83 s.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 50
VIP=192.0.2.100
for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    {
        tandem_node_header "$name"
        cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "3s"
virtual_ipaddress = ["$VIP/24"]
EOT
    } >"$LAB_DIR/$name.toml"
done
tandem_start lb1 "$LAB_DIR/lb1.toml"
wait_for "lb1 MASTER (alone: after one Master_Down_Interval, 10.2 s)" 20 is_state lb1 VI_1 MASTER || fail "lb1 never became master"
tandem_start lb2 "$LAB_DIR/lb2.toml"
wait_for "lb2 BACKUP" 10 is_state lb2 VI_1 BACKUP || fail "lb2 not backup"
# Let lb2 hear at least one advert so its timer runs on lb1's adverts.
wait_for "lb2 hears lb1" 10 counter_ge lb2 VI_1 adverts_received 1 || fail "lb2 hears nothing"
[ "$(tandem_field lb2 VI_1 .skew_time_ms)" = 1828 ] || fail "Skew_Time is $(tandem_field lb2 VI_1 .skew_time_ms) ms, expected 1828"

step "capture on the client, then SIGTERM lb1"
ip netns exec "$(lab_ns client)" tcpdump -i eth0 -n -l -tt 'ip proto 112' >"$LAB_DIR/wire.txt" 2>/dev/null &
dump=$!
sleep 0.5
tandem_stop lb1 TERM
wait_for "lb2 MASTER" 8 is_state lb2 VI_1 MASTER || fail "lb2 did not take over within 8 s (MDI is 10.8 s)"
sleep 0.3
kill "$dump" 2>/dev/null || true
wait "$dump" 2>/dev/null || true
cat "$LAB_DIR/wire.txt"
expect "lb1 removed the VIP on exit" holders_are $VIP lb2
grep -q "192.0.2.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 0" "$LAB_DIR/wire.txt" ||
    fail "no priority-0 advert from lb1 on the wire"
t0=$(grep "192.0.2.1 > .*prio 0" "$LAB_DIR/wire.txt" | head -1 | cut -d' ' -f1)
t1=$(grep "192.0.2.2 > .*prio 100" "$LAB_DIR/wire.txt" | head -1 | cut -d' ' -f1)
[ -n "$t1" ] || fail "no advert from lb2 on the wire"
gap=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
echo "priority 0 -> first lb2 advert: ${gap}s (Skew_Time 1.83 s, Master_Down_Interval 10.83 s)"
# The test proves which timer ran, not how fast: anything under half of MDI is the skew path.
awk -v g="$gap" 'BEGIN { exit !(g < 5.4) }' || fail "takeover took ${gap}s: the Master_Down_Interval path, not Skew_Time"
[ "$(counter lb2 VI_1 priority_zero_received)" -ge 1 ] || fail "lb2 did not count the priority-0 advert"
echo PASS
