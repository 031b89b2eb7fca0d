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
