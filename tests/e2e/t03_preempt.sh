#!/usr/bin/env bash
# Acceptance 3: preempt, nopreempt and preempt_delay, with the higher-priority node returning.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
VIP=192.0.2.100

# conf NAME PRIORITY PREEMPT PREEMPT_DELAY
conf() {
    {
        tandem_node_header "$1"
        cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $2
advert_int = "100ms"
preempt = $3
preempt_delay = "$4"
virtual_ipaddress = ["$VIP/24"]
EOT
    } >"$LAB_DIR/$1.toml"
}

# round PREEMPT DELAY: lb2 is master alone, then lb1 (higher) comes back.
round() {
    conf lb1 150 "$1" "$2"
    conf lb2 100 true 0s
    tandem_start lb2 "$LAB_DIR/lb2.toml"
    wait_for "lb2 MASTER alone" 10 is_state lb2 VI_1 MASTER || fail "lb2 did not become master alone"
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "lb1 BACKUP" 10 is_state lb1 VI_1 BACKUP || fail "lb1 did not start as backup"
}

stop_both() { tandem_stop lb1 TERM; tandem_stop lb2 TERM; }

step "preempt = true: lb1 takes the VIP back"
round true 0s
wait_for "lb1 preempts" 10 is_state lb1 VI_1 MASTER || fail "lb1 did not preempt"
wait_for "lb2 steps down" 5 is_state lb2 VI_1 BACKUP || fail "lb2 did not step down"
expect "only lb1 holds the VIP" holders_are $VIP lb1
stop_both

step "preempt = false: lb1 stays backup while lb2 lives"
round false 0s
# Master_Down_Interval of lb1 is 0.34 s; 3 s is nine times that.
sleep 3
expect "lb1 still BACKUP (nopreempt)" is_state lb1 VI_1 BACKUP
expect "lb2 still MASTER (nopreempt)" is_state lb2 VI_1 MASTER
expect "only lb2 holds the VIP" holders_are $VIP lb2
[ "$(counter lb1 VI_1 became_master)" = 0 ] || fail "lb1 was master at some point"
step "... and takes over when lb2 leaves"
tandem_stop lb2 TERM
wait_for "lb1 MASTER after lb2 left" 5 is_state lb1 VI_1 MASTER || fail "nopreempt lb1 did not take over from a leaving master"
stop_both

step "preempt_delay = 4s: lb1 waits before preempting"
round true 4s
# Without the delay lb1 would preempt within 0.34 s of hearing lb2.
sleep 1.5
expect "lb1 still BACKUP during preempt_delay" is_state lb1 VI_1 BACKUP
expect "only lb2 holds the VIP during preempt_delay" holders_are $VIP lb2
wait_for "lb1 preempts after the delay" 10 is_state lb1 VI_1 MASTER || fail "lb1 never preempted after preempt_delay"
wait_for "only lb1 holds the VIP" 5 holders_are $VIP lb1 || fail "holders: $(lab_holders $VIP)"
stop_both
echo PASS
