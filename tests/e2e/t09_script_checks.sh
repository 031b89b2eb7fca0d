#!/usr/bin/env bash
# Issue 6, acceptance 3: a script check that hangs is killed at its timeout (its whole
# process group) and counted as failed; a check that flaps every interval does not make
# ownership flap, because rise/fall hold.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
VIP=192.0.2.100

cat >"$LAB_DIR/hang.sh" <<EOT
#!/bin/sh
# A child that would outlive a naive kill of the script alone.
sleep 1001 &
exec sleep 1000
EOT
cat >"$LAB_DIR/flap.sh" <<EOT
#!/bin/sh
# Alternates success and failure on every run (one counter per node: \$1).
f="$LAB_DIR/flap.\$1.count"
n=\$(cat "\$f" 2>/dev/null || echo 0)
echo \$((n + 1)) >"\$f"
exit \$((n % 2))
EOT
chmod +x "$LAB_DIR/hang.sh" "$LAB_DIR/flap.sh"

for n in lb1:150 lb2:100; do
    name=${n%:*} prio=${n#*:}
    track=""
    [ "$name" = lb1 ] && track='track_check = [{ check = "flap", weight = 0 }]'
    {
        tandem_node_header "$name"
        # Only lb1 runs the hanging check: the survivor search below looks at every process
        # of the machine (the namespaces share one PID space).
        [ "$name" = lb1 ] && cat <<EOT
[[check]]
name = "hang"
kind = "script"
script = "$LAB_DIR/hang.sh"
interval = "1s"
timeout = "300ms"

EOT
        cat <<EOT
[[check]]
name = "flap"
kind = "script"
script = "$LAB_DIR/flap.sh $name"
interval = "300ms"
timeout = "250ms"
rise = 2
fall = 2

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
check_field() { tandem_status "$1" --json | jq -r --arg c "$2" ".checks[] | select(.name == \$c) | $3"; }
fails_ge() { [ "$(check_field lb1 hang .total_fail)" -ge "$1" ]; }

step "the hanging script is killed at 300 ms and counted as failed"
wait_for "two hang failures" 10 fails_ge 2 || fail "hang check failures: $(check_field lb1 hang .total_fail)"
check_field lb1 hang .last_message
[ "$(check_field lb1 hang .status)" = down ] || fail "hang check is $(check_field lb1 hang .status), expected down"
[ "$(check_field lb1 hang .total_ok)" = 0 ] || fail "a hung script counted as success"
# Between probes nothing of the script's process group may survive.
sleep 0.5
if lab_exec lb1 pgrep -f "sleep 100[01]" >/dev/null; then
    lab_exec lb1 pgrep -af "sleep 100[01]" >&2
    fail "a process of the hung script survived its timeout"
fi

step "the flapping check holds ownership for 20 intervals"
tr=$(counter lb1 VI_1 transitions)
sleep 6
[ "$(cat "$LAB_DIR/flap.lb1.count")" -ge 10 ] || fail "flap ran only $(cat "$LAB_DIR/flap.lb1.count") times"
[ "$(counter lb1 VI_1 transitions)" = "$tr" ] || fail "lb1 changed state while the check flapped"
expect "lb1 still MASTER" is_state lb1 VI_1 MASTER
expect "VIP still on lb1 only" holders_are $VIP lb1
[ "$(check_field lb1 flap .status)" != down ] || fail "flap check went down"
tandem_status lb1
echo PASS
