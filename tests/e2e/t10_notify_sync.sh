#!/usr/bin/env bash
# Issue 6, acceptance 4: notify scripts receive keepalived's arguments for every transition,
# in order; a sync group moves both of its VIPs together; `tandem events` shows the same.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
FRONT=192.0.2.100
BACK=192.0.2.101

for n in lb1 lb2; do
    cat >"$LAB_DIR/notify-$n.sh" <<EOT
#!/bin/sh
echo "\$*" >>"$LAB_DIR/notify-$n.log"
EOT
    chmod +x "$LAB_DIR/notify-$n.sh"
done
touch "$LAB_DIR/lb1.ok" "$LAB_DIR/lb2.ok"

for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    {
        tandem_node_header "$name"
        cat <<EOT
[[check]]
name = "app"
kind = "script"
script = "/usr/bin/test -e $LAB_DIR/$name.ok"
interval = "200ms"
timeout = "150ms"

[[vrrp_instance]]
name = "VI_FRONT"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$FRONT/24"]
track_check = [{ check = "app", weight = 0 }]
notify = "$LAB_DIR/notify-$name.sh"

[[vrrp_instance]]
name = "VI_BACK"
interface = "eth0"
virtual_router_id = 52
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$BACK/24"]
notify = "$LAB_DIR/notify-$name.sh"

[[vrrp_sync_group]]
name = "G_LB"
group = ["VI_FRONT", "VI_BACK"]
EOT
    } >"$LAB_DIR/$name.toml"
done
tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
for i in VI_FRONT VI_BACK; do
    wait_for "lb1 MASTER $i" 10 is_state lb1 $i MASTER || fail "lb1 not master of $i"
    wait_for "lb2 BACKUP $i" 10 is_state lb2 $i BACKUP || fail "lb2 not backup of $i"
done

step "the app check fails on lb1 (tracked by VI_FRONT only): the whole group moves"
rm "$LAB_DIR/lb1.ok"
for i in VI_FRONT VI_BACK; do
    wait_for "lb1 FAULT $i" 5 is_state lb1 $i FAULT || fail "lb1 $i is $(tandem_field lb1 $i .state)"
    wait_for "lb2 MASTER $i" 5 is_state lb2 $i MASTER || fail "lb2 did not take $i"
done
wait_for "front VIP on lb2" 5 holders_are $FRONT lb2 || fail "front holders: $(lab_holders $FRONT)"
wait_for "back VIP on lb2" 5 holders_are $BACK lb2 || fail "back holders: $(lab_holders $BACK)"
grep -q "sync group: G_LB" <<<"$(tandem_status lb1)" || fail "status does not show the sync group"

step "the check recovers: both VIPs come back"
touch "$LAB_DIR/lb1.ok"
for i in VI_FRONT VI_BACK; do
    wait_for "lb1 MASTER $i" 10 is_state lb1 $i MASTER || fail "lb1 did not take $i back"
done
wait_for "both VIPs on lb1" 5 holders_are $FRONT lb1 || fail "front holders: $(lab_holders $FRONT)"
wait_for "both VIPs on lb1" 5 holders_are $BACK lb1 || fail "back holders: $(lab_holders $BACK)"

step "stop lb1: STOP is notified"
tandem_stop lb1 TERM
wait_for "lb2 MASTER VI_FRONT" 5 is_state lb2 VI_FRONT MASTER || fail "lb2 did not take over"
sleep 0.3
echo "lb1 notify calls:"
sed 's/^/    /' "$LAB_DIR/notify-lb1.log"
want="INSTANCE VI_FRONT BACKUP 150
INSTANCE VI_FRONT MASTER 150
INSTANCE VI_FRONT FAULT 150
INSTANCE VI_FRONT BACKUP 150
INSTANCE VI_FRONT MASTER 150
INSTANCE VI_FRONT STOP 150"
got=$(grep VI_FRONT "$LAB_DIR/notify-lb1.log")
[ "$got" = "$want" ] || fail "notify calls for VI_FRONT:
$got
expected:
$want"
got=$(grep VI_BACK "$LAB_DIR/notify-lb1.log")
[ "$got" = "${want//VI_FRONT/VI_BACK}" ] || fail "notify calls for VI_BACK:
$got"
lines=$(grep -c . "$LAB_DIR/notify-lb2.log")
[ "$lines" -ge 4 ] || fail "lb2's notify script ran $lines times"

step "tandem events on lb2"
tandem_events() { "$TANDEM_BIN" events --socket "$LAB_DIR/$1.sock"; }
tandem_events lb2 | tee "$LAB_DIR/events.txt" | tail -n 5
n=$(jq -r 'select(.type == "transition" and .instance == "VI_FRONT") | .to' "$LAB_DIR/events.txt" | tr '\n' ' ')
[ "$n" = "BACKUP MASTER BACKUP MASTER " ] || fail "lb2 VI_FRONT transitions in the event stream: $n"
echo PASS
