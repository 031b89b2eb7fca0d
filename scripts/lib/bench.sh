# shellcheck shell=bash
# Helpers for scripts/bench, on top of scripts/lib/lab.sh (sourced first): equivalent tandem
# and keepalived configs, starting / stopping / killing either daemon in a lab host, and the
# waits between runs. Every wait is bounded.

BENCH_PORT=7777
BENCH_BIN=${BENCH_BIN:-$LAB_ROOT/target/release/tandem-bench}

bench_log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
bench_die() { bench_log "FATAL: $*"; exit 1; }

# bench_interval SPEC -> "VERSION MS KEEPALIVED_SECS TANDEM_SYNTAX"
# 1s is VRRPv2 (whole seconds); anything below a second is VRRPv3 (10 ms steps).
bench_interval() {
    case $1 in
        *ms) local ms=${1%ms}; echo "3 $ms $(awk -v m="$ms" 'BEGIN { printf "%g", m / 1000 }') ${ms}ms" ;;
        *s) local s=${1%s}; echo "2 $((s * 1000)) $s ${s}s" ;;
        *) bench_die "bad interval $1 (use e.g. 1s, 100ms, 20ms)" ;;
    esac
}

# bench_skew_ms VERSION INTERVAL_MS PRIORITY / bench_mdi_ms ...: RFC 3768 / 5798 timers (ms).
bench_skew_ms() {
    awk -v v="$1" -v i="$2" -v p="$3" 'BEGIN { s = (256 - p) / 256; printf "%d", (v == 2 ? s * 1000 : s * i) }'
}
bench_mdi_ms() { echo $((3 * $2 + $(bench_skew_ms "$@"))); }

# bench_sleep_ms MS
bench_sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

# Footprint VIPs: one /32 per instance, from the documentation ranges.
bench_fvip() {
    if [ "$1" -le 254 ]; then echo "198.51.100.$1/32"; else echo "203.0.113.$(($1 - 254))/32"; fi
}

# bench_tandem_conf NAME PRIORITY VERSION INTERVAL < "VRID VIP/LEN" lines
bench_tandem_conf() {
    local name=$1 prio=$2 ver=$3 int=$4 vrid vip
    tandem_node_header "$name"
    while read -r vrid vip; do
        cat <<EOT
[[vrrp_instance]]
name = "VI_$vrid"
interface = "eth0"
virtual_router_id = $vrid
priority = $prio
version = $ver
advert_int = "$int"
virtual_ipaddress = ["$vip"]

EOT
    done
}

# bench_ka_conf NAME PRIORITY VERSION INTERVAL_SECS < "VRID VIP/LEN" lines
# Same settings as bench_tandem_conf: both start as backup, preempt on, no authentication,
# gratuitous ARP defaults.
bench_ka_conf() {
    local name=$1 prio=$2 ver=$3 int=$4 vrid vip
    cat <<EOT
global_defs {
    router_id $name
    vrrp_version $ver
    script_user root
    enable_script_security
}
EOT
    while read -r vrid vip; do
        cat <<EOT
vrrp_instance VI_$vrid {
    state BACKUP
    interface eth0
    virtual_router_id $vrid
    priority $prio
    advert_int $int
    virtual_ipaddress {
        $vip
    }
}
EOT
    done
}

# bench_start DAEMON NAME CONFIG: tandem via lab.sh's tandem_start (info logging to a file);
# keepalived directly (not through a function that forks, so that $! is keepalived's parent
# process), logging to the console and so to a file too (-l), without -D: its detailed log
# writes a line per received lower-priority advert, which at 255 instances costs more CPU
# than the VRRP work and than tandem's info log.
bench_start() {
    local daemon=$1 name=$2 cfg=$3
    if [ "$daemon" = tandem ]; then
        tandem_start "$name" "$cfg"
    else
        rm -f "$LAB_DIR/$name.kpid" "$LAB_DIR/$name.vpid"
        ip netns exec "$(lab_ns "$name")" keepalived -n -l --vrrp -f "$cfg" \
            -p "$LAB_DIR/$name.kpid" -r "$LAB_DIR/$name.vpid" >>"$LAB_DIR/$name.log" 2>&1 &
        echo $! >"$LAB_DIR/$name.pid"
    fi
}

bench_pid() { cat "$LAB_DIR/$1.pid" 2>/dev/null; }

# bench_alive NAME: the daemon started as NAME still runs.
bench_alive() {
    local pid
    pid=$(bench_pid "$1") || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# bench_stop NAME: SIGTERM (the graceful stop: priority 0, VIPs removed), wait up to 5 s,
# then SIGKILL whatever is left of the tree.
bench_stop() {
    local name=$1 pid kids i
    pid=$(bench_pid "$name") || return 0
    [ -n "$pid" ] || return 0
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    # shellcheck disable=SC2086
    kill -KILL "$pid" $kids 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
    rm -f "$LAB_DIR/$name.pid"
}

# bench_kill9 NAME: SIGKILL every process of the daemon, children first (keepalived's VRRP
# child must not get the chance to send a priority-0 advert when its parent dies).
bench_kill9() {
    local name=$1 pid kids
    pid=$(bench_pid "$name") || return 0
    kids=$(pgrep -P "$pid" 2>/dev/null || true)
    # shellcheck disable=SC2086
    kill -KILL $kids "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
    rm -f "$LAB_DIR/$name.pid"
}

# bench_holders ADDR: the hosts that have ADDR configured. Like lab.sh's lab_holders, but it
# reads `ip`'s whole output before matching: with `set -o pipefail`, `ip ... | grep -q` fails
# now and then although the address is there (grep exits at the first match, ip gets SIGPIPE).
bench_holders() {
    local h out hs=()
    for h in "${LAB_HOSTS[@]}"; do
        out=$(ip -n "$(lab_ns "$h")" -o addr show dev eth0 2>/dev/null) || true
        if [[ $out == *" $1/"* ]]; then hs+=("$h"); fi
    done
    echo "${hs[*]}"
}

# bench_steady MASTER VIP: only MASTER holds VIP.
bench_steady() { [ "$(bench_holders "$2")" = "$1" ]; }

# bench_vip_count NAME: how many footprint VIPs the host holds.
bench_vip_count() {
    local out
    out=$(timeout 10 ip -n "$(lab_ns "$1")" -o -4 addr show dev eth0 2>/dev/null) || true
    grep -cE 'inet (198\.51\.100|203\.0\.113)\.' <<<"$out" || true
}
bench_holds_n() { [ "$(bench_vip_count "$1")" -eq "$2" ]; }

# bench_responders HOST...: a UDP echo responder in each host, answering with its name.
bench_responders() {
    local h
    for h in "$@"; do
        lab_exec "$h" "$BENCH_BIN" respond --id "$h" --port "$BENCH_PORT" >>"$LAB_DIR/$h.respond.log" 2>&1 &
    done
}

# --- Quorum mode ---------------------------------------------------------------------------
# Hosts lb1..lb4 (192.0.2.11-14) and the arbiter arb (.15) in the same lab, and a simulated
# BMC per load balancer of the fencing runs (bmc1 .21 for lb1, bmc2 .22 for lb2). One group,
# VI_1: VRID 61, VIP 192.0.2.110; lb1 has the highest priority. Lease timing: the defaults.

Q_VIP=192.0.2.110
Q_VRID=61
Q_LEASE_MS=1000
Q_RENEW_MS=250
Q_MARGIN_MS=100
Q_BMC_PORT=6230
declare -A Q_PRIO=([lb1]=200 [lb2]=100 [lb3]=90 [lb4]=80)
declare -A Q_BMC=([lb1]=bmc1 [lb2]=bmc2)

# bench_quorum_conf NAME FENCE MEMBER...: the config of NAME in a quorum cluster of the
# MEMBERs (arb is the arbiter, the others load balancers with VI_1). FENCE 1: VI_1 has
# fence_on_takeover, and every member gets the BMC fence levels of lb1 and lb2 (any member
# may lead and so fence). Needs LAB_DIR/cluster.key (and LAB_DIR/bmc.pass with FENCE 1).
bench_quorum_conf() {
    local name=$1 fence=$2 m n
    shift 2
    tandem_node_header "$name"
    [ "$name" = arb ] && printf 'role = "arbiter"\n\n'
    cat <<EOT
[cluster]
name = "bench"
key_file = "$LAB_DIR/cluster.key"
nodes = [
EOT
    for m in "$@"; do
        if [ "$m" = arb ]; then
            echo "  { name = \"$m\", address = \"$(lab_ip4 "$m")\", role = \"arbiter\" },"
        else
            echo "  { name = \"$m\", address = \"$(lab_ip4 "$m")\" },"
        fi
    done
    cat <<EOT
]
lease = "${Q_LEASE_MS}ms"
lease_renew = "${Q_RENEW_MS}ms"
lease_margin = "${Q_MARGIN_MS}ms"

[[heartbeat]]
kind = "udp-multicast"
interface = "eth0"
group = "239.192.0.1:5405"
interval = "100ms"
timeout = "500ms"

EOT
    if [ "$name" != arb ]; then
        cat <<EOT
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = $Q_VRID
priority = ${Q_PRIO[$name]}
advert_int = "100ms"
virtual_ipaddress = ["$Q_VIP/24"]
mode = "quorum"
EOT
        [ "$fence" = 1 ] && echo "fence_on_takeover = true"
        echo
    fi
    if [ "$fence" = 1 ]; then
        for n in lb1 lb2; do
            cat <<EOT
[[fence_device]]
name = "$n-bmc"
driver = "ipmi"
address = "$(lab_ip4 "${Q_BMC[$n]}"):$Q_BMC_PORT"
username = "admin"
password_file = "$LAB_DIR/bmc.pass"
timeout = "10s"
retries = 0

[[fence_level]]
node = "$n"
level = 1
devices = [{ device = "$n-bmc" }]

EOT
        done
    fi
}

# bench_bmc NODE: NODE's simulated BMC (OpenIPMI ipmi_sim from tests/fixtures/sims) in host
# Q_BMC[NODE], on its address and Q_BMC_PORT, login admin / LAB_DIR/bmc.pass. Like
# tests/e2e/lib.sh's lab_bmc: powering it off kills NODE's daemon and takes NODE off the
# network (link down, its addresses and any VIP gone); powering it on brings the link and
# NODE's own addresses back (starting the daemon is the caller's job). State, and the power
# log with the time of every switch, in LAB_DIR/bmc-NODE.
bench_bmc() {
    local node=$1 host=${Q_BMC[$1]} ns
    ns=$(lab_ns "$node")
    lab_exec "$host" env SIM_BIND="$(lab_ip4 "$host")" BMC_USER=admin BMC_PASS="$(cat "$LAB_DIR/bmc.pass")" \
        BMC_OFF_HOOK="kill -9 \$(cat '$LAB_DIR/$node.pid' 2>/dev/null) 2>/dev/null; ip -n $ns link set eth0 down; ip -n $ns addr flush dev eth0 scope global" \
        BMC_ON_HOOK="ip -n $ns addr add $(lab_ip4 "$node")/24 dev eth0; ip -n $ns addr add $(lab_ip6 "$node")/64 dev eth0 nodad; ip -n $ns link set eth0 up" \
        "$LAB_ROOT/tests/fixtures/sims/ipmi/start-bmc.sh" "$Q_BMC_PORT" "$LAB_DIR/bmc-$node" >/dev/null ||
        bench_die "the simulated BMC of $node did not start: $(cat "$LAB_DIR/bmc-$node/ipmi_sim.log" 2>/dev/null)"
}

# bench_bmc_power NODE: on or off, as NODE's simulated BMC has it.
bench_bmc_power() { cat "$LAB_DIR/bmc-$1/power" 2>/dev/null; }

# bench_power_off_ns NODE: when NODE's BMC last switched it off (ns since the epoch), or
# nothing.
bench_power_off_ns() {
    awk '$2 == "power" && $3 == "on->off" { t = $1 } END { if (t != "") print t }' \
        "$LAB_DIR/bmc-$1/power.log" 2>/dev/null | tr -d .
}

# bench_q NODE JQ-PATH: a field of NODE's quorum status (`tandem status --json`), e.g. .leader.
bench_q() { "$TANDEM_BIN" status --socket "$LAB_DIR/$1.sock" --json 2>/dev/null | jq -r ".quorum$2"; }

bench_q_has_leader() { local l; l=$(bench_q "$1" .leader) && [ -n "$l" ] && [ "$l" != null ]; }

# bench_q_holds NODE: NODE holds VI_1's lease by its own view (a lease end by its clock), the
# VIP is on NODE alone, and every other member named sees NODE as the holder.
bench_q_holds() {
    local node=$1 m r
    shift
    bench_steady "$node" "$Q_VIP" || return 1
    r=$(bench_q "$node" .groups.VI_1.lease_remaining_ms) || return 1
    [ -n "$r" ] && [ "$r" != null ] && [ "$r" -gt 0 ] || return 1
    for m in "$@"; do
        [ "$(bench_q "$m" .groups.VI_1.holder)" = "$node" ] || return 1
    done
}

# bench_quorum_start MEMBER...: stop the MEMBERs, empty their stores, and start them from
# their configs (LAB_DIR/NAME.toml), lb1 last: the others first until they have a leader and
# lb2 holds the group, then lb1, which preempts lb2. So lb1 holds the group without leading
# Raft. Returns once lb1 holds the VIP alone and every member agrees.
bench_quorum_start() {
    local m
    for m in "$@"; do
        bench_stop "$m"
        rm -rf "$LAB_DIR/$m.state"
        ip -n "$(lab_ns "$m")" addr del "$Q_VIP/24" dev eth0 2>/dev/null || true
    done
    for m in "$@"; do
        [ "$m" = lb1 ] || bench_start tandem "$m" "$LAB_DIR/$m.toml"
    done
    wait_for "quorum: a leader" 30 bench_q_has_leader arb || return 1
    wait_for "quorum: lb2 holds the group" 30 bench_q_holds lb2 arb || return 1
    bench_start tandem lb1 "$LAB_DIR/lb1.toml"
    wait_for "quorum: lb1 holds the group" 30 bench_q_holds lb1 "$@"
}
