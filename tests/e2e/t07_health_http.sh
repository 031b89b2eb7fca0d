#!/usr/bin/env bash
# Issue 6, acceptance 1: an HTTP server in each node's namespace, checked with fall = 2,
# rise = 2. Stop the master's server: the VIP moves to the backup; start it again (preempt):
# the VIP comes back. With a weight instead of a fault the priority arithmetic decides:
# 150 - 60 = 90 < 100 moves the VIP, 150 - 30 = 120 > 100 keeps it.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
VIP=192.0.2.100

web_start() {
    ip netns exec "$(lab_ns "$1")" python3 -m http.server 8080 --bind 127.0.0.1 \
        --directory "$LAB_DIR" >/dev/null 2>&1 &
    echo $! >"$LAB_DIR/$1.web"
    wait_for "$1 web server" 10 lab_exec "$1" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' || fail "web server did not start"
}
web_stop() { kill "$(cat "$LAB_DIR/$1.web")" 2>/dev/null || true; { wait "$(cat "$LAB_DIR/$1.web")"; } 2>/dev/null || true; }

# conf NAME PRIORITY WEIGHT
conf() {
    {
        tandem_node_header "$1"
        cat <<EOT
[[check]]
name = "web"
kind = "http"
url = "http://127.0.0.1:8080/"
expect_status = 200
interval = "300ms"
timeout = "200ms"
rise = 2
fall = 2

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $2
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
track_check = [{ check = "web", weight = $3 }]
EOT
    } >"$LAB_DIR/$1.toml"
}

# round WEIGHT: start both nodes, lb1 master with its web server up.
round() {
    conf lb1 150 "$1"
    conf lb2 100 "$1"
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    tandem_start lb2 "$LAB_DIR/lb2.toml"
    wait_for "lb1 MASTER" 10 is_state lb1 VI_1 MASTER || fail "lb1 never became master"
    wait_for "lb2 BACKUP" 10 is_state lb2 VI_1 BACKUP || fail "lb2 not backup"
    wait_for "check up on lb1" 10 check_is lb1 web up || fail "the web check never came up"
}
check_is() { [ "$(tandem_status "$1" --json | jq -r --arg c "$2" '.checks[] | select(.name == $c) | .status')" = "$3" ]; }
prio_is() { [ "$(tandem_field "$1" VI_1 .priority)" = "$2" ]; }
stop_both() { tandem_stop lb1 TERM; tandem_stop lb2 TERM; }

web_start lb1
web_start lb2

step "weight 0: the master's server stops -> FAULT, VIP to lb2"
round 0
web_stop lb1
wait_for "check down on lb1" 10 check_is lb1 web down || fail "check did not go down"
wait_for "lb1 FAULT" 5 is_state lb1 VI_1 FAULT || fail "lb1 not FAULT"
wait_for "lb2 MASTER" 5 is_state lb2 VI_1 MASTER || fail "lb2 did not take over"
wait_for "VIP on lb2 only" 5 holders_are $VIP lb2 || fail "holders: $(lab_holders $VIP)"
tandem_status lb1
[ "$(tandem_status lb1 --json | jq '.checks[0].total_fail >= 2')" = true ] || fail "failures not counted"
step "the server returns -> rise 2 -> lb1 preempts back"
web_start lb1
wait_for "check up on lb1" 10 check_is lb1 web up || fail "check did not come back"
wait_for "lb1 MASTER again" 10 is_state lb1 VI_1 MASTER || fail "lb1 did not take the VIP back"
wait_for "VIP on lb1 only" 5 holders_are $VIP lb1 || fail "holders: $(lab_holders $VIP)"
stop_both

step "weight -60: 150 - 60 = 90 < 100, the VIP moves; lb1 is BACKUP, not FAULT"
round -60
web_stop lb1
wait_for "lb1 priority 90" 10 prio_is lb1 90 || fail "priority is $(tandem_field lb1 VI_1 .priority)"
wait_for "lb2 MASTER" 5 is_state lb2 VI_1 MASTER || fail "lb2 did not preempt a priority-90 master"
wait_for "lb1 BACKUP" 5 is_state lb1 VI_1 BACKUP || fail "lb1 is $(tandem_field lb1 VI_1 .state)"
grep -q "check web down (weight -60): -60" <<<"$(tandem_status lb1)" || fail "status does not show the contribution: $(tandem_status lb1)"
web_start lb1
wait_for "lb1 priority 150" 10 prio_is lb1 150 || fail "priority did not come back"
wait_for "lb1 MASTER again" 10 is_state lb1 VI_1 MASTER || fail "lb1 did not preempt back"
stop_both

step "weight -30: 150 - 30 = 120 > 100, the VIP stays"
round -30
web_stop lb1
wait_for "lb1 priority 120" 10 prio_is lb1 120 || fail "priority is $(tandem_field lb1 VI_1 .priority)"
sleep 1.5
expect "lb1 stays MASTER at 120" is_state lb1 VI_1 MASTER
expect "VIP stays on lb1" holders_are $VIP lb1
stop_both
web_stop lb1
web_stop lb2
echo PASS
