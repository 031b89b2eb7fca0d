#!/usr/bin/env bash
# Acceptance 4: tandem and keepalived (Debian's package) on the same VRID, VRRPv2 with PASS
# authentication and VRRPv3: each hears the other, never both stay master, and the VIP fails
# over in both directions.
source "$(dirname "$0")/lib.sh"
command -v keepalived >/dev/null || fail "keepalived is not installed (scripts/test installs it)"
lab_init
lab_host lb1 1
lab_host ka 3
lab_host client 50
VIP=192.0.2.100

# tandem_conf VERSION PRIORITY
tandem_conf() {
    {
        tandem_node_header lb1
        if [ "$1" = 2 ]; then
            cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $2
version = 2
advert_int = "1s"
authentication = { auth_type = "PASS", auth_pass = "s3cret" }
virtual_ipaddress = ["$VIP/24"]
EOT
        else
            cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $2
version = 3
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
EOT
        fi
    } >"$LAB_DIR/lb1.toml"
}

# ka_start VERSION PRIORITY
ka_start() {
    local ver=$1 prio=$2 auth="" int=0.1
    if [ "$ver" = 2 ]; then
        int=1
        auth="authentication {
        auth_type PASS
        auth_pass s3cret
    }"
    fi
    cat >"$LAB_DIR/ka.conf" <<EOT
global_defs {
    router_id ka
    vrrp_version $ver
    script_user root
    enable_script_security
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $prio
    advert_int $int
    $auth
    virtual_ipaddress {
        $VIP/24
    }
}
EOT
    rm -f "$LAB_DIR/ka.pid" "$LAB_DIR/ka-vrrp.pid"
    ip netns exec "$(lab_ns ka)" keepalived -n -l -D --vrrp -f "$LAB_DIR/ka.conf" \
        -p "$LAB_DIR/ka.pid" -r "$LAB_DIR/ka-vrrp.pid" >>"$LAB_DIR/ka.log" 2>&1 &
    echo $! >"$LAB_DIR/ka.main"
}

ka_stop() {
    local pid i
    pid=$(cat "$LAB_DIR/ka.main" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    wait "$pid" 2>/dev/null || true
}

interop() {
    local ver=$1 secs=8
    step "VRRPv$ver: tandem 150 master, keepalived 100 backup"
    : >"$LAB_DIR/ka.log"
    tandem_conf "$ver" 150
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "tandem MASTER" $secs is_state lb1 VI_1 MASTER || fail "tandem never became master"
    ka_start "$ver" 100
    wait_for "keepalived BACKUP" $secs grep -q "Entering BACKUP STATE" "$LAB_DIR/ka.log" || fail "keepalived did not enter BACKUP"
    # Two more advert periods: keepalived must stay backup, hearing tandem's adverts.
    sleep "$( [ "$ver" = 2 ] && echo 4 || echo 1)"
    expect "only tandem holds the VIP" holders_are $VIP lb1
    expect_not "keepalived complained about tandem's adverts" grep -Ei "invalid|wrong|bad|mismatch" "$LAB_DIR/ka.log"

    step "VRRPv$ver: tandem leaves (SIGTERM) -> keepalived takes over"
    tandem_stop lb1 TERM
    wait_for "keepalived holds the VIP" $secs holders_are $VIP ka || fail "keepalived did not take over: $(lab_holders $VIP)"

    step "VRRPv$ver: tandem returns and preempts keepalived"
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "tandem MASTER again" $secs is_state lb1 VI_1 MASTER || fail "tandem did not preempt keepalived"
    wait_for "keepalived gives the VIP back" $secs holders_are $VIP lb1 || fail "holders: $(lab_holders $VIP)"
    [ "$(counter lb1 VI_1 adverts_received)" -ge 1 ] || fail "tandem counted no adverts from keepalived"
    tandem_stop lb1 TERM
    ka_stop

    step "VRRPv$ver: keepalived 200 master, tandem 100 backup; keepalived's link is cut"
    tandem_conf "$ver" 100
    ka_start "$ver" 200
    wait_for "keepalived MASTER" $secs holders_are $VIP ka || fail "keepalived did not become master"
    tandem_start lb1 "$LAB_DIR/lb1.toml"
    wait_for "tandem BACKUP" $secs is_state lb1 VI_1 BACKUP || fail "tandem not backup"
    sleep "$( [ "$ver" = 2 ] && echo 4 || echo 1)"
    expect "tandem stays BACKUP under keepalived" is_state lb1 VI_1 BACKUP
    expect "only keepalived holds the VIP" holders_are $VIP ka
    local drops
    drops=$(tandem_status lb1 --json | jq '[.instances[0].counters | to_entries[] | select(.key | startswith("dropped_")) | .value] | add')
    [ "$drops" = 0 ] || fail "tandem dropped $drops of keepalived's adverts: $(tandem_status lb1)"
    lab_link ka down
    wait_for "tandem takes over from keepalived" $secs is_state lb1 VI_1 MASTER || fail "tandem did not take over"
    expect "tandem holds the VIP" lab_has_addr lb1 $VIP
    step "VRRPv$ver: keepalived's link returns: it preempts tandem"
    lab_link ka up
    wait_for "tandem steps down" $((secs + 4)) is_state lb1 VI_1 BACKUP || fail "tandem did not yield to keepalived"
    wait_for "only keepalived holds the VIP" $secs holders_are $VIP ka || fail "holders: $(lab_holders $VIP)"
    tandem_stop lb1 TERM
    ka_stop
}

interop 2
interop 3
echo PASS
