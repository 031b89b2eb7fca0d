# shellcheck shell=bash
# The network-namespace lab shared by scripts/demo, tests/e2e and scripts/bench.
#
# One bridge namespace (${LAB_PREFIX}br) holding br0, and one namespace per host with an
# eth0 veth plugged into br0. Every name carries a per-run prefix, and lab_destroy (installed
# as an EXIT trap by lab_init) kills whatever runs in the namespaces and deletes them, also
# when the caller fails. Addresses come from the documentation ranges 192.0.2.0/24 and
# 2001:db8::/64 and exist only inside the lab.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_NET4=192.0.2
LAB_NET6=2001:db8:
declare -A LAB_IDX=()
LAB_HOSTS=()

# lab_init [prefix]: pick a prefix, make a run directory, arm the cleanup trap.
lab_init() {
    LAB_PREFIX=${1:-${LAB_PREFIX:-td$(printf '%05d' $$)$(printf '%02x' $((RANDOM % 256)))-}}
    LAB_DIR=${LAB_DIR:-$(mktemp -d "/tmp/tandem-lab.${LAB_PREFIX%-}.XXXX")}
    mkdir -p "$LAB_DIR"
    trap 'lab_destroy' EXIT
    trap 'exit 130' INT TERM
    ip netns add "${LAB_PREFIX}br"
    ip -n "${LAB_PREFIX}br" link set lo up
    ip -n "${LAB_PREFIX}br" link add br0 type bridge mcast_snooping 0
    ip -n "${LAB_PREFIX}br" link set br0 up
}

lab_ns() { echo "${LAB_PREFIX}$1"; }

# lab_host NAME INDEX: a host namespace with eth0 = 192.0.2.INDEX/24 and 2001:db8::INDEX/64.
lab_host() {
    local name=$1 idx=$2 ns="${LAB_PREFIX}$1"
    ip netns add "$ns"
    LAB_HOSTS+=("$name")
    LAB_IDX[$name]=$idx
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "$name" netns "${LAB_PREFIX}br"
    ip -n "${LAB_PREFIX}br" link set "$name" master br0 up
    ip -n "$ns" addr add "$LAB_NET4.$idx/24" dev eth0
    ip -n "$ns" addr add "${LAB_NET6}:$(printf '%x' "$idx")/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
}

# lab_bridge BRIDGE: another bridge in the bridge namespace (a second, independent network).
lab_bridge() {
    ip -n "${LAB_PREFIX}br" link add "$1" type bridge mcast_snooping 0
    ip -n "${LAB_PREFIX}br" link set "$1" up
}

# lab_nic HOST IFNAME BRIDGE CIDR: another interface for HOST, plugged into BRIDGE.
lab_nic() {
    local host=$1 ifn=$2 br=$3 cidr=$4 ns="${LAB_PREFIX}$1"
    ip link add "$ifn" netns "$ns" type veth peer name "$host-$ifn" netns "${LAB_PREFIX}br"
    ip -n "${LAB_PREFIX}br" link set "$host-$ifn" master "$br" up
    ip -n "$ns" addr add "$cidr" dev "$ifn"
    ip -n "$ns" link set "$ifn" up
}

# lab_port HOST up|down [IFNAME]: cut or restore HOST's cable at the bridge (the host's own
# interface stays up, as when a switch port or a switch dies). IFNAME eth0 by default.
lab_port() {
    local port=$1
    [ "${3:-eth0}" != eth0 ] && port="$1-$3"
    ip -n "${LAB_PREFIX}br" link set "$port" "$2"
}

# lab_block HOST on|off [IFNAME]: the bridge stops (or resumes) forwarding HOST's traffic
# while both ends keep their carrier, as when a switch drops traffic or a VLAN is cut: the
# host sees no link change, only silence.
lab_block() {
    local port=$1
    [ "${3:-eth0}" != eth0 ] && port="$1-$3"
    case $2 in
    on) bridge -n "${LAB_PREFIX}br" link set dev "$port" state 0 ;;
    off) bridge -n "${LAB_PREFIX}br" link set dev "$port" state 3 ;;
    esac
}

lab_ip4() { echo "$LAB_NET4.${LAB_IDX[$1]}"; }
lab_ip6() { printf '%s:%x\n' "$LAB_NET6" "${LAB_IDX[$1]}"; }
lab_mac() { ip -n "${LAB_PREFIX}$1" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
lab_exec() { local n=$1; shift; ip netns exec "${LAB_PREFIX}$n" "$@"; }

# lab_link NAME up|down: cut or restore a host's only link, from inside the host (instant).
lab_link() { ip -n "${LAB_PREFIX}$1" link set eth0 "$2"; }

# lab_has_addr NAME ADDR: is ADDR configured on the host's eth0?
# (The listing is read whole before grep: `ip | grep -q` under pipefail fails at random when
# grep exits early and ip dies of SIGPIPE.)
lab_has_addr() { grep -qF " $2/" <<<"$(ip -n "${LAB_PREFIX}$1" -o addr show dev eth0)"; }

# lab_holders ADDR: the hosts that have ADDR configured right now.
lab_holders() {
    local h out=()
    for h in "${LAB_HOSTS[@]}"; do
        if lab_has_addr "$h" "$1"; then out+=("$h"); fi
    done
    echo "${out[*]}"
}

TANDEM_BIN=${TANDEM_BIN:-$LAB_ROOT/target/debug/tandem}

# tandem_node_header NAME: the [node] section of a lab node's config (paths under LAB_DIR);
# callers append their [[vrrp_instance]] sections.
tandem_node_header() {
    cat <<EOT
[node]
name = "$1"
state_dir = "$LAB_DIR/$1.state"
control_socket = "$LAB_DIR/$1.sock"

EOT
}

# tandem_start NAME CONFIG [ARG...]: run `tandem run` in the host (with any extra
# arguments, e.g. --join); log and pid under LAB_DIR.
tandem_start() {
    local name=$1 cfg=$2
    shift 2
    ip netns exec "${LAB_PREFIX}$name" env TANDEM_LOG="${TANDEM_LOG:-info}" \
        "$TANDEM_BIN" run -c "$cfg" "$@" >>"$LAB_DIR/$name.log" 2>&1 &
    echo $! >"$LAB_DIR/$name.pid"
}

tandem_pid() { cat "$LAB_DIR/$1.pid"; }

# tandem_stop NAME [SIGNAL]: signal the daemon and wait (bounded) for it to exit.
tandem_stop() {
    local name=$1 sig=${2:-TERM} pid i
    pid=$(cat "$LAB_DIR/$name.pid" 2>/dev/null) || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    # Braces so that bash's own "Killed" job notice goes to /dev/null too.
    { wait "$pid"; } 2>/dev/null || true
}

# tandem_status NAME [--json]: `tandem status` against the host's control socket.
tandem_status() {
    local name=$1; shift
    "$TANDEM_BIN" status --socket "$LAB_DIR/$name.sock" "$@"
}

# tandem_field NAME INSTANCE JQ-EXPR: one field of an instance from `status --json`.
tandem_field() {
    tandem_status "$1" --json 2>/dev/null | jq -r --arg i "$2" ".instances[] | select(.name == \$i) | $3"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_for() {
    local desc=$1 secs=$2 deadline
    shift 2
    deadline=$(($(date +%s%N) + secs * 1000000000))
    while (($(date +%s%N) < deadline)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    echo "timed out after ${secs}s waiting for: $desc" >&2
    return 1
}

lab_destroy() {
    local rc=$? ns pids
    trap - EXIT
    [ -n "${LAB_PREFIX:-}" ] || return $rc
    for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_PREFIX}" || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
        fi
    done
    sleep 0.2
    for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_PREFIX}" || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
    done
    if [ -n "${LAB_KEEP_DIR:-}" ] || [ $rc -ne 0 ]; then
        echo "lab files kept in $LAB_DIR" >&2
    else
        rm -rf "$LAB_DIR"
    fi
    return $rc
}

# --- Persistent labs (scripts/lab) --------------------------------------------------------
# scripts/lab builds a lab that outlives the process that made it: no EXIT trap, no mktemp,
# and a later process finds the hosts again with lab_adopt.

# lab_attach PREFIX DIR: work on the lab whose namespaces start with PREFIX and whose files
# are in DIR (which the caller creates); nothing is created and no trap is set.
lab_attach() {
    LAB_PREFIX=$1
    LAB_DIR=$2
    LAB_HOSTS=()
    LAB_IDX=()
}

# lab_net: the bridge namespace (${LAB_PREFIX}br) and br0, as lab_init makes them.
lab_net() {
    ip netns add "${LAB_PREFIX}br"
    ip -n "${LAB_PREFIX}br" link set lo up
    ip -n "${LAB_PREFIX}br" link add br0 type bridge mcast_snooping 0
    ip -n "${LAB_PREFIX}br" link set br0 up
}

# lab_adopt NAME INDEX: register a host that lab_host made earlier (maybe in another
# process), so that lab_ip4, lab_holders and friends know it.
lab_adopt() {
    LAB_HOSTS+=("$1")
    LAB_IDX[$1]=$2
}

# lab_namespaces: the namespaces whose name starts with LAB_PREFIX, one a line.
lab_namespaces() {
    local all ns
    all=$(ip netns list 2>/dev/null || true)
    while read -r ns _; do
        if [ -n "$ns" ] && [ "${ns#"$LAB_PREFIX"}" != "$ns" ]; then echo "$ns"; fi
    done <<<"$all"
}

# lab_purge: every process in the lab's namespaces gets SIGTERM, then (after at most 2 s)
# SIGKILL, and the namespaces are deleted. Unlike lab_destroy, the files in LAB_DIR are left
# alone. Prints how many namespaces it deleted.
lab_purge() {
    local ns pids left i n=0 list
    list=$(lab_namespaces)
    [ -n "$list" ] || { echo 0; return 0; }
    for ns in $list; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
        # A stopped process (SIGSTOP) acts on SIGTERM only once continued.
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -CONT $pids 2>/dev/null || true
    done
    for ((i = 0; i < 40; i++)); do
        left=
        for ns in $list; do left+=$(ip netns pids "$ns" 2>/dev/null || true); done
        [ -n "$left" ] || break
        sleep 0.05
    done
    for ns in $list; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
        n=$((n + 1))
    done
    echo "$n"
}
