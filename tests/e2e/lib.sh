# shellcheck shell=bash
# Shared by the end-to-end tests: the lab, plus assertion helpers. Every test runs in its
# own bash process with its own lab prefix; lab_init's EXIT trap tears the lab down.
set -euo pipefail
# shellcheck source=../../scripts/lib/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/lab.sh"
INJECT=${INJECT:-$LAB_ROOT/target/debug/vrrp-inject}
WATCH=${WATCH:-$LAB_ROOT/target/debug/vip-watch}

step() { echo "--- $*"; }
fail() {
    echo "FAIL: $*" >&2
    local h
    for h in "${LAB_HOSTS[@]}"; do
        echo "===== $h addresses: $(ip -n "$(lab_ns "$h")" -o addr show dev eth0 2>/dev/null | awk '{print $4}' | tr '\n' ' ')" >&2
        if [ -f "$LAB_DIR/$h.log" ]; then
            echo "===== $h.log (last 40 lines)" >&2
            tail -n 40 "$LAB_DIR/$h.log" >&2
        fi
    done
    exit 1
}
expect() { local desc=$1; shift; "$@" >/dev/null 2>&1 || fail "$desc"; }
expect_not() { local desc=$1; shift; if "$@" >/dev/null 2>&1; then fail "$desc"; fi; }

# is_state NAME INSTANCE STATE
is_state() { [ "$(tandem_field "$1" "$2" .state)" = "$3" ]; }
# counter NAME INSTANCE COUNTER
counter() { tandem_field "$1" "$2" ".counters.$3"; }
# neigh_mac HOST ADDR: the MAC the host's neighbour table has for ADDR.
neigh_mac() { lab_exec "$1" ip neigh show "$2" dev eth0 | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p'; }
neigh_is() { [ "$(neigh_mac "$1" "$2")" = "$3" ]; }
# holders_are ADDR "HOSTS": exactly these hosts have ADDR configured.
holders_are() { [ "$(lab_holders "$1")" = "$2" ]; }
# counter_is NAME INSTANCE COUNTER N / counter_ge ...: for wait_for (evaluated on every poll).
counter_is() { [ "$(counter "$1" "$2" "$3")" = "$4" ]; }
counter_ge() { local v; v=$(counter "$1" "$2" "$3"); [ -n "$v" ] && [ "$v" -ge "$4" ]; }
lacks_addr() { ! lab_has_addr "$@"; }

# cluster_key: a fresh cluster key in LAB_DIR/cluster.key (mode 600).
cluster_key() {
    head -c 32 /dev/urandom | base64 >"$LAB_DIR/cluster.key"
    chmod 600 "$LAB_DIR/cluster.key"
}

# pair_cluster GROUP [LINE...]: the [cluster] of a vrrp-mode pair, lb1 and lb2 at their lab
# addresses, keyed with LAB_DIR/cluster.key (any LINE added to it, e.g. unfence = "auto"),
# and a UDP multicast heartbeat on eth0 to GROUP (100 ms, timeout 500 ms).
pair_cluster() {
    local group=$1
    shift
    cat <<EOT
[cluster]
name = "pair"
key_file = "$LAB_DIR/cluster.key"
nodes = [
  { name = "lb1", address = "$LAB_NET4.1" },
  { name = "lb2", address = "$LAB_NET4.2" },
]
EOT
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
    cat <<EOT

[[heartbeat]]
kind = "udp-multicast"
interface = "eth0"
group = "$group"
interval = "100ms"
timeout = "500ms"
EOT
}

# fenced_instance NAME VRID PRIORITY VIP: a blank line and a [[vrrp_instance]] on eth0 with
# 100 ms adverts, VIP/24 and fence_on_takeover, as the pair tests run them.
fenced_instance() {
    cat <<EOT

[[vrrp_instance]]
name = "$1"
interface = "eth0"
virtual_router_id = $2
priority = $3
advert_int = "100ms"
virtual_ipaddress = ["$4/24"]
fence_on_takeover = true
EOT
}

# quorum_configs VIP: a cluster key and the configs of a quorum-mode lab of three, written to
# LAB_DIR/{lb1,lb2,arb}.toml (hosts lb1 = .1, lb2 = .2, arb = .3 from lab_host): lb1 priority
# 200 and lb2 100 share VI_1 (VRID 51, VIP/24 on eth0), arb is the arbiter.
quorum_configs() {
    local vip=$1 n name prio
    cluster_key
    _quorum_cluster() {
        cat <<EOT
[cluster]
name = "lab"
key_file = "$LAB_DIR/cluster.key"
nodes = [
  { name = "lb1", address = "$LAB_NET4.1" },
  { name = "lb2", address = "$LAB_NET4.2" },
  { name = "arb", address = "$LAB_NET4.3", role = "arbiter" },
]
lease = "1s"
lease_renew = "200ms"
lease_margin = "100ms"

[[heartbeat]]
kind = "udp-multicast"
interface = "eth0"
group = "239.192.0.1:5405"
interval = "100ms"
timeout = "500ms"

EOT
    }
    for n in lb1:200 lb2:100; do
        IFS=: read -r name prio <<<"$n"
        {
            tandem_node_header "$name"
            _quorum_cluster
            cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$vip/24"]
mode = "quorum"
EOT
        } >"$LAB_DIR/$name.toml"
    done
    {
        tandem_node_header arb | sed 's/^name = "arb"$/name = "arb"\nrole = "arbiter"/'
        _quorum_cluster
    } >"$LAB_DIR/arb.toml"
    for n in lb1 lb2 arb; do
        "$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" >/dev/null ||
            fail "config of $n refused: $("$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" 2>&1)"
    done
}
# stays_for SECS CMD...: CMD keeps succeeding, polled every 50 ms, for SECS seconds.
stays_for() {
    local secs=$1 end
    shift
    end=$(($(date +%s%N) + secs * 1000000000))
    while (($(date +%s%N) < end)); do
        "$@" >/dev/null 2>&1 || return 1
        sleep 0.05
    done
}
# quorum_fenced VIP LEASE RENEW MARGIN [KEEP]: a quorum lab (quorum_configs: lb1, lb2, arb,
# and a client) with fence_on_takeover, unfence = "auto" and those lease timings, lb1 and lb2
# fenced through simulated BMCs on hosts bmc1 and bmc2 (port 6230, password in
# LAB_DIR/bmc.pass, returned in BMC_PASS). KEEP = keep: lb1's BMC cuts it off without stopping
# its daemon (lab_bmc).
quorum_fenced() {
    local vip=$1 lease=$2 renew=$3 margin=$4 keep=${5:-} n h
    for h in lb1:1 lb2:2 arb:3 bmc1:11 bmc2:12 client:9; do lab_host "${h%:*}" "${h#*:}"; done
    quorum_configs "$vip"
    BMC_PASS=$(printf 'bmc-%05d%05d' $RANDOM $RANDOM)
    printf '%s\n' "$BMC_PASS" >"$LAB_DIR/bmc.pass"
    chmod 600 "$LAB_DIR/bmc.pass"
    lab_bmc bmc1 lb1 "$(lab_ip4 bmc1)" 6230 "$BMC_PASS" "$keep"
    lab_bmc bmc2 lb2 "$(lab_ip4 bmc2)" 6230 "$BMC_PASS"
    for n in lb1 lb2 arb; do
        sed -i -e "s/^lease = \"1s\"\$/lease = \"$lease\"/" -e "s/^lease_renew = .*/lease_renew = \"$renew\"/" \
            -e "s/^lease_margin = .*/lease_margin = \"$margin\"\nunfence = \"auto\"/" \
            -e 's/^mode = "quorum"$/mode = "quorum"\nfence_on_takeover = true/' "$LAB_DIR/$n.toml"
        {
            fence_ipmi_config lb1 "$(lab_ip4 bmc1):6230"
            fence_ipmi_config lb2 "$(lab_ip4 bmc2):6230"
        } >>"$LAB_DIR/$n.toml"
        "$TANDEM_BIN" check -c "$LAB_DIR/$n.toml" >"$LAB_DIR/check.$n.out" 2>&1 ||
            fail "config of $n refused: $(cat "$LAB_DIR/check.$n.out")"
    done
    grep -q 'fence_on_takeover = true' "$LAB_DIR/lb1.toml" || fail "fence_on_takeover not set"
    grep -q "^lease = \"$lease\"" "$LAB_DIR/arb.toml" || fail "the lease is not $lease"
}
# quorum_field NODE JQ-PATH: a field of the node's quorum status (e.g. .leader).
quorum_field() { tandem_status "$1" --json 2>/dev/null | jq -r ".quorum$2"; }

# vip_watch_start VIP NODE...: vip-watch (tests/tools) sampling every NODE's addresses and the
# ARP replies the `client` host sees every 5 ms, until vip_watch_verdict.
vip_watch_start() {
    local vip=$1 n args=()
    shift
    [ -x "$WATCH" ] || fail "vip-watch is not built ($WATCH)"
    for n in "$@"; do args+=(--node "$n=$(lab_ns "$n")"); done
    "$WATCH" --vip "$vip" "${args[@]}" --client "$(lab_ns client)" --client-if eth0 --interval 5ms \
        --duration 400s --out "$LAB_DIR/watch.json" --ready "$LAB_DIR/watch.ready" >"$LAB_DIR/watch.out" 2>&1 &
    WATCH_PID=$!
    wait_for "vip-watch ready" 10 test -e "$LAB_DIR/watch.ready" || fail "vip-watch did not start: $(cat "$LAB_DIR/watch.out")"
}
# vip_watch_verdict MIN_SAMPLES MIN_ARP_REPLIES: stop vip-watch; fail on two holders or on
# too few samples.
vip_watch_verdict() {
    local rc
    kill -TERM "$WATCH_PID"
    wait "$WATCH_PID" && rc=0 || rc=$?
    cat "$LAB_DIR/watch.out"
    jq -c '{samples, arp_requests, arp_replies, violations_total, max_holders, changes: (.holder_changes | length)}' "$LAB_DIR/watch.json"
    [ "$rc" = 0 ] || fail "vip-watch saw two holders (or failed, rc $rc): $(jq -c '.violations[:5]' "$LAB_DIR/watch.json")"
    [ "$(jq .samples "$LAB_DIR/watch.json")" -gt "$1" ] || fail "vip-watch took too few samples"
    [ "$(jq .arp_replies "$LAB_DIR/watch.json")" -gt "$2" ] || fail "the client saw too few ARP replies"
}

SIMS=$LAB_ROOT/tests/fixtures/sims

# lab_bmc HOST NODE ADDR PORT PASS [KEEP]: a simulated BMC for NODE (OpenIPMI ipmi_sim, from
# tests/fixtures/sims) running in HOST's namespace on ADDR:PORT, login admin / PASS. Powering
# it off does to NODE what losing power does: its daemon dies (kill -9) and it drops off the
# network (link down, its addresses and any VIP gone); powering it on brings the link and
# NODE's own addresses back (restarting the daemon is the test's job). With KEEP = keep, power
# off leaves the daemon running: a fence that cuts the node off without stopping it, as a
# switch port does. State in LAB_DIR/bmc-NODE.
lab_bmc() {
    local host=$1 node=$2 addr=$3 port=$4 pass=$5 keep=${6:-} ns kill
    ns=$(lab_ns "$node")
    kill="kill -9 \$(cat '$LAB_DIR/$node.pid') 2>/dev/null; "
    [ "$keep" = keep ] && kill=
    lab_exec "$host" env SIM_BIND="$addr" BMC_USER=admin BMC_PASS="$pass" \
        BMC_OFF_HOOK="${kill}ip -n $ns link set eth0 down; ip -n $ns addr flush dev eth0 scope global" \
        BMC_ON_HOOK="ip -n $ns addr add $(lab_ip4 "$node")/24 dev eth0; ip -n $ns addr add $(lab_ip6 "$node")/64 dev eth0 nodad; ip -n $ns link set eth0 up" \
        "$SIMS/ipmi/start-bmc.sh" "$port" "$LAB_DIR/bmc-$node" >/dev/null ||
        fail "the simulated BMC of $node did not start: $(cat "$LAB_DIR/bmc-$node/ipmi_sim.log" 2>/dev/null)"
}
# bmc_power NODE: on or off, as NODE's simulated BMC has it (out of band).
bmc_power() { cat "$LAB_DIR/bmc-$1/power"; }
bmc_is() { [ "$(bmc_power "$1")" = "$2" ]; }

# fence_ipmi_config NODE ADDRESS: the [[fence_device]] and [[fence_level]] that fence NODE
# through its BMC at ADDRESS (ip:port), password in LAB_DIR/bmc.pass.
fence_ipmi_config() {
    cat <<EOT

[[fence_device]]
name = "$1-bmc"
driver = "ipmi"
address = "$2"
username = "admin"
password_file = "$LAB_DIR/bmc.pass"
timeout = "10s"
retries = 0

[[fence_level]]
node = "$1"
level = 1
devices = [{ device = "$1-bmc" }]
EOT
}
