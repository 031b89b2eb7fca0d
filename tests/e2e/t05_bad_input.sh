#!/usr/bin/env bash
# Acceptance 5: bad adverts sent from the client namespace are dropped, counted under the
# right reason in `tandem status`, and change no state. Every forged advert claims priority
# 254, so any that slipped through would make the nodes change state.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host client 50
CL=$(lab_ip4 client)
for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    {
        tandem_node_header "$name"
        cat <<EOT
[[vrrp_instance]]
name = "VI_3"
interface = "eth0"
virtual_router_id = 51
priority = $prio
version = 3
advert_int = "100ms"
virtual_ipaddress = ["192.0.2.100/24"]

[[vrrp_instance]]
name = "VI_2"
interface = "eth0"
virtual_router_id = 52
priority = $prio
version = 2
advert_int = "1s"
authentication = { auth_type = "PASS", auth_pass = "s3cret" }
virtual_ipaddress = ["192.0.2.101/24"]
EOT
    } >"$LAB_DIR/$name.toml"
done
tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
for i in VI_3 VI_2; do
    wait_for "lb1 MASTER $i" 10 is_state lb1 $i MASTER || fail "lb1 not master of $i"
    wait_for "lb2 BACKUP $i" 10 is_state lb2 $i BACKUP || fail "lb2 not backup of $i"
done
sleep 1
tr1=$(counter lb1 VI_3 transitions) tr2=$(counter lb2 VI_3 transitions)
tr1b=$(counter lb1 VI_2 transitions) tr2b=$(counter lb2 VI_2 transitions)

inject() { lab_exec client "$INJECT" --src "$CL" --priority 254 --count 3 "$@"; }
# check INSTANCE COUNTER: both nodes counted exactly the 3 forged adverts under COUNTER.
check() {
    local h v
    for h in lb1 lb2; do
        v=$(counter $h "$1" "$2")
        [ "$v" = 3 ] || fail "$h $1 $2 = $v, expected 3"
    done
    echo "ok: $1 $2 = 3 on both nodes"
}

step "TTL 64"
inject --version 3 --vrid 51 --advert-int 10 --addr 192.0.2.100 --ttl 64
wait_for "counted" 5 counter_is lb2 VI_3 dropped_bad_ttl 3 || true
check VI_3 dropped_bad_ttl
step "bad checksum"
inject --version 3 --vrid 51 --advert-int 10 --addr 192.0.2.100 --bad-checksum
wait_for "counted" 5 counter_is lb2 VI_3 dropped_bad_checksum 3 || true
check VI_3 dropped_bad_checksum
step "wrong version (a v2 advert for the v3 instance)"
inject --version 2 --vrid 51 --advert-int 1 --addr 192.0.2.100
wait_for "counted" 5 counter_is lb2 VI_3 dropped_bad_version 3 || true
check VI_3 dropped_bad_version
step "bad type"
inject --version 3 --ver-type 0x32 --vrid 51 --advert-int 10 --addr 192.0.2.100
wait_for "counted" 5 counter_is lb2 VI_3 dropped_bad_type 3 || true
check VI_3 dropped_bad_type
step "truncated, and a count field larger than the packet"
inject --version 3 --vrid 51 --advert-int 10 --addr 192.0.2.100 --truncate 6
lab_exec client "$INJECT" --src "$CL" --priority 254 --version 3 --vrid 51 --advert-int 10 --addr 192.0.2.100 --count-field 3
wait_for "counted" 5 counter_is lb2 VI_3 dropped_truncated 4 || true
for h in lb1 lb2; do
    [ "$(counter $h VI_3 dropped_truncated)" = 4 ] || fail "$h VI_3 dropped_truncated = $(counter $h VI_3 dropped_truncated), expected 4"
done
step "address count differs from the configured VIPs (keepalived drops these too)"
inject --version 3 --vrid 51 --advert-int 10 --addr 192.0.2.100 --addr 192.0.2.99
wait_for "counted" 5 counter_is lb2 VI_3 dropped_address_count 3 || true
check VI_3 dropped_address_count
step "wrong password (v2 PASS)"
inject --version 2 --vrid 52 --advert-int 1 --addr 192.0.2.101 --auth-pass wrong
wait_for "counted" 5 counter_is lb2 VI_2 dropped_auth_mismatch 3 || true
check VI_2 dropped_auth_mismatch
step "unknown VRID"
unknown_vrid_is() { [ "$(tandem_status "$1" --json | jq ".sockets[0].dropped_unknown_vrid")" = "$2" ]; }
inject --version 3 --vrid 99 --advert-int 10 --addr 192.0.2.100
for h in lb1 lb2; do
    wait_for "$h counts unknown VRID" 5 unknown_vrid_is $h 3 ||
        fail "$h: unknown VRID not counted: $(tandem_status $h --json | jq -c '.sockets')"
done

step "no state changed"
sleep 0.5
expect "lb1 still MASTER VI_3" is_state lb1 VI_3 MASTER
expect "lb1 still MASTER VI_2" is_state lb1 VI_2 MASTER
expect "lb2 still BACKUP VI_3" is_state lb2 VI_3 BACKUP
expect "lb2 still BACKUP VI_2" is_state lb2 VI_2 BACKUP
[ "$(counter lb1 VI_3 transitions)" = "$tr1" ] || fail "lb1 VI_3 changed state"
[ "$(counter lb2 VI_3 transitions)" = "$tr2" ] || fail "lb2 VI_3 changed state"
[ "$(counter lb1 VI_2 transitions)" = "$tr1b" ] || fail "lb1 VI_2 changed state"
[ "$(counter lb2 VI_2 transitions)" = "$tr2b" ] || fail "lb2 VI_2 changed state"
[ "$(tandem_field lb2 VI_3 .master)" = "$(lab_ip4 lb1)" ] || fail "lb2's idea of the master moved"
tandem_status lb2
grep -q "bad_ttl=3" <<<"$(tandem_status lb2)" || fail "human status does not show the drop reason"
echo PASS
