#!/usr/bin/env bash
# Issue 3, acceptance 3: a frame with the wrong key, a replayed frame, and random bytes
# injected on each heartbeat channel are dropped and counted; membership does not change.
#
# lb1 and lb2 run three heartbeat channels: 0 = UDP multicast on bridge 1 (eth0), 1 = TCP on
# bridge 2 (eth1, the [cluster] addresses), 2 = a serial line over a socat pty pair. Onto
# each channel, towards lb1, hb-inject (tests/tools) puts frames claiming to be lb2:
#   * 3 frames with the wrong key, perfect otherwise: lb2's real incarnation and sequence
#     numbers 1000 ahead of its own, so a receiver that skipped the HMAC would accept them
#     (and then drop lb2's genuine frames as replays): counted as bad_auth, nothing else;
#   * 3 copies of a genuine lb2 frame of that channel, captured on the wire (UDP: from the
#     multicast group; TCP: sniffed from lb2's own heartbeat connection; serial: from socat's
#     hex dump of the line): counted as replay;
#   * 3 copies of a genuine lb2 frame of the UDP channel re-framed for TCP / serial: the
#     channel id is covered by the HMAC, so these are counted as wrong_channel (the check
#     before the replay check), not as replay;
#   * random bytes: UDP datagrams and TCP / serial frames of random content are counted as
#     malformed; raw random bytes on the stream transports are framing errors of the
#     transport (TCP: a bad length prefix, the connection is closed; serial: bad COBS / CRC).
# Every injection must change exactly the expected counter of lb1's channel. Throughout, lb2
# stays up on every channel, no membership event (channel, peer, peer_restarted) happens,
# lb2's incarnation and restart count stay, and VRRP does not move.
source "$(dirname "$0")/lib.sh"
command -v socat >/dev/null || fail "socat is not installed (scripts/test installs it)"
HB_INJECT=${HB_INJECT:-$LAB_ROOT/target/debug/hb-inject}
[ -x "$HB_INJECT" ] || fail "$HB_INJECT is missing (cargo build -p tandem-testtools)"
lab_init
lab_bridge br1
lab_host lb1 1
lab_host lb2 2
lab_host client 50
lab_nic lb1 eth1 br1 198.51.100.1/24
lab_nic lb2 eth1 br1 198.51.100.2/24
lab_nic client eth1 br1 198.51.100.50/24
VIP=192.0.2.100
GROUP=239.192.0.1:5405
LB1_TCP=198.51.100.1:5406

# The serial line. -x: socat hex-dumps what it relays, which is where the serial replay is
# captured from. ptys are not in any namespace, so lab_destroy would not stop socat.
socat -x pty,raw,echo=0,link="$LAB_DIR/ttyA" pty,raw,echo=0,link="$LAB_DIR/ttyB" 2>"$LAB_DIR/socat.log" &
SOCAT=$!
# lab_destroy first: it reads the exit status (to keep the lab files of a failed run), and
# `|| true` so that its non-zero return does not end the trap under `set -e` before socat
# is stopped. The script's exit status is kept.
trap 'lab_destroy || true; kill $SOCAT 2>/dev/null || true' EXIT
wait_for "socat ptys" 5 test -e "$LAB_DIR/ttyB" || fail "socat did not start"
head -c 32 /dev/urandom | base64 >"$LAB_DIR/cluster.key"
head -c 32 /dev/urandom | base64 >"$LAB_DIR/wrong.key"
chmod 600 "$LAB_DIR/cluster.key" "$LAB_DIR/wrong.key"

for n in lb1:150:ttyA lb2:100:ttyB; do
    IFS=: read -r name prio tty <<<"$n"
    {
        tandem_node_header "$name"
        cat <<EOT
[cluster]
name = "lab"
key_file = "$LAB_DIR/cluster.key"
nodes = [
  { name = "lb1", address = "198.51.100.1" },
  { name = "lb2", address = "198.51.100.2" },
]

[[heartbeat]]
kind = "udp-multicast"
interface = "eth0"
group = "$GROUP"
interval = "100ms"
timeout = "500ms"

[[heartbeat]]
kind = "tcp"
port = 5406
interval = "100ms"
timeout = "500ms"

[[heartbeat]]
kind = "serial"
device = "$LAB_DIR/$tty"
baud = 115200
interval = "100ms"
timeout = "500ms"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = $prio
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
EOT
    } >"$LAB_DIR/$name.toml"
    "$TANDEM_BIN" check -c "$LAB_DIR/$name.toml" >/dev/null ||
        fail "config of $name refused: $("$TANDEM_BIN" check -c "$LAB_DIR/$name.toml" 2>&1)"
done

links() { "$TANDEM_BIN" links --json --socket "$LAB_DIR/$1.sock"; }
# chan_is NODE PEER CHANNEL up|down
chan_is() { [ "$(links "$1" | jq -r --arg p "$2" --argjson c "$3" '.peers[] | select(.name == $p) | .links[] | select(.channel == $c) | .state')" = "$4" ]; }
all_up() { chan_is "$1" "$2" 0 up && chan_is "$1" "$2" 1 up && chan_is "$1" "$2" 2 up; }
# peer_field NODE PEER FIELD
peer_field() { links "$1" | jq -r --arg p "$2" ".peers[] | select(.name == \$p) | .$3"; }
# last_seq NODE PEER CHANNEL
last_seq() { links "$1" | jq -r --arg p "$2" --argjson c "$3" '.peers[] | select(.name == $p) | .links[] | select(.channel == $c) | .last_seq'; }
# drops NODE CHANNEL: the channel's drop counters, one JSON object
drops() { links "$1" | jq -c --argjson c "$2" '.channels[] | select(.id == $c) | .drops'; }
# transport NODE CHANNEL FIELD: a counter of the channel's I/O shell
transport() { links "$1" | jq -r --argjson c "$2" ".channels[] | select(.id == \$c) | .transport.$3"; }
# delta BEFORE AFTER: the drop counters that changed, as "name=+n" words
delta() { jq -rn --argjson a "$1" --argjson b "$2" '[$b | to_entries[] | select(.value != $a[.key]) | "\(.key)=+\(.value - $a[.key])"] | join(" ")'; }
delta_is() { [ "$(delta "$1" "$(drops lb1 "$2")")" = "$3" ]; }
# Membership events in lb1's event log (the log keeps the last 256; this test makes few).
membership_events() { "$TANDEM_BIN" events --socket "$LAB_DIR/lb1.sock" | jq -c 'select(.type == "peer" or .type == "channel" or .type == "peer_restarted")'; }

# inject CHANNEL "EXPECTED DELTA" DESCRIPTION COMMAND...: run the injector, wait (bounded)
# for lb1's channel to count it, then require exactly that change of its drop counters.
inject() {
    local ch=$1 want=$2 desc=$3 before got
    shift 3
    before=$(drops lb1 "$ch")
    "$@" || fail "$desc: the injector failed"
    wait_for "$desc counted" 5 delta_is "$before" "$ch" "$want" || true
    sleep 0.3 # anything counted late, or twice, shows now
    got=$(delta "$before" "$(drops lb1 "$ch")")
    [ "$got" = "$want" ] || fail "$desc: lb1 channel $ch drops changed by '$got', expected '$want'"
    echo "ok: $desc: lb1 channel $ch ${got:-no drop counted}"
}

# inject_raw CHANNEL MIN DESCRIPTION COMMAND...: raw random bytes on a stream transport: at
# least MIN more framing errors in the transport, or (TCP, when the random length prefixes
# happen to be plausible) frames counted as malformed; no other drop counter moves.
inject_raw() {
    local ch=$1 min=$2 desc=$3 before fe0 fe1 got mal
    shift 3
    before=$(drops lb1 "$ch")
    fe0=$(transport lb1 "$ch" framing_errors)
    "$@" || fail "$desc: the injector failed"
    sleep 0.5
    fe1=$(transport lb1 "$ch" framing_errors)
    got=$(delta "$before" "$(drops lb1 "$ch")")
    mal=0
    case "$got" in
    "") ;;
    malformed=+*) mal=${got#malformed=+} ;;
    *) fail "$desc: lb1 channel $ch drops changed by '$got', expected at most malformed" ;;
    esac
    [ $((fe1 - fe0 + mal)) -ge "$min" ] ||
        fail "$desc: lb1 channel $ch counted $((fe1 - fe0)) framing errors and $mal malformed, expected at least $min in all"
    echo "ok: $desc: lb1 channel $ch framing_errors=+$((fe1 - fe0))${got:+ $got}"
}

tandem_start lb1 "$LAB_DIR/lb1.toml"
tandem_start lb2 "$LAB_DIR/lb2.toml"
wait_for "lb1 MASTER" 10 is_state lb1 VI_1 MASTER || fail "lb1 never became master"
wait_for "lb2 BACKUP" 10 is_state lb2 VI_1 BACKUP || fail "lb2 never became backup"
wait_for "lb1 sees lb2 up on all channels" 10 all_up lb1 lb2 || fail "lb1: $(links lb1 | jq -c '.peers')"
wait_for "lb2 sees lb1 up on all channels" 10 all_up lb2 lb1 || fail "lb2: $(links lb2 | jq -c '.peers')"
sleep 1
"$TANDEM_BIN" links --socket "$LAB_DIR/lb1.sock"

INC=$(peer_field lb1 lb2 incarnation)
[[ $INC =~ ^[0-9a-f]{16}$ ]] || fail "lb2's incarnation as lb1 sees it: '$INC'"
restarts0=$(peer_field lb1 lb2 restarts)
events0=$(membership_events | wc -l)
# Sanity: the count is of real events (lb2's three channels and lb2 itself came up).
[ "$events0" -ge 4 ] || fail "lb1's event log shows $events0 membership events: $(membership_events)"
tr1=$(counter lb1 VI_1 transitions) tr2=$(counter lb2 VI_1 transitions)
# wrong_key CHANNEL: the forged-frame options, ahead of lb2's sequence on that channel.
wrong_key() {
    echo --wrong-key "$LAB_DIR/wrong.key" --cluster lab --node lb2 --channel "$1" \
        --incarnation "0x$INC" --seq $(($(last_seq lb1 lb2 "$1") + 1000)) --count 3
}

step "channel 0, UDP multicast (injected from the client on bridge 1)"
# shellcheck disable=SC2046
inject 0 "bad_auth=+3" "wrong key" \
    lab_exec client "$HB_INJECT" udp --dst $GROUP --src-if eth0 $(wrong_key 0)
inject 0 "replay=+3" "replay of a captured lb2 frame" \
    lab_exec client "$HB_INJECT" udp --dst $GROUP --replay-capture $GROUP --iface eth0 \
    --from lb2 --channel 0 --count 3 --save "$LAB_DIR/lb2-udp.frame"
inject 0 "malformed=+3" "random datagrams" \
    lab_exec client "$HB_INJECT" udp --dst $GROUP --src-if eth0 --random 80 --count 3

step "channel 1, TCP"
# lb1 accepts heartbeat connections only from its peers' addresses: from the client, the
# connection is refused before a byte is read.
rej0=$(transport lb1 1 rejected_sources)
inject 1 "" "random bytes from a non-peer address" \
    lab_exec client "$HB_INJECT" tcp --dst $LB1_TCP --random 80 --framing framed --count 3
rej1=$(transport lb1 1 rejected_sources)
[ "$rej1" -gt "$rej0" ] || fail "the client's connection was not counted as rejected"
echo "ok: refused: lb1 channel 1 rejected_sources=+$((rej1 - rej0))"
# From lb2's namespace, that is from lb2's address, as an attacker on the cluster link would.
# shellcheck disable=SC2046
inject 1 "bad_auth=+3" "wrong key" \
    lab_exec lb2 "$HB_INJECT" tcp --dst $LB1_TCP $(wrong_key 1)
inject 1 "replay=+3" "replay of an lb2 frame sniffed from its own connection" \
    lab_exec lb2 "$HB_INJECT" tcp --dst $LB1_TCP --replay-sniff --from lb2 --channel 1 --count 3
inject 1 "wrong_channel=+3" "replay of lb2's UDP frame re-framed for TCP" \
    lab_exec lb2 "$HB_INJECT" tcp --dst $LB1_TCP --replay "$LAB_DIR/lb2-udp.frame" --count 3
inject 1 "malformed=+3" "length-prefixed frames of random bytes" \
    lab_exec lb2 "$HB_INJECT" tcp --dst $LB1_TCP --random 80 --framing framed --count 3
inject_raw 1 1 "raw random bytes" \
    lab_exec lb2 "$HB_INJECT" tcp --dst $LB1_TCP --random 4096 --framing raw

step "channel 2, serial (written to lb2's end of the pty pair, relayed to lb1)"
# shellcheck disable=SC2046
inject 2 "bad_auth=+3" "wrong key" \
    "$HB_INJECT" serial --device "$LAB_DIR/ttyB" $(wrong_key 2)
inject 2 "replay=+3" "replay of an lb2 frame from socat's dump of the line" \
    "$HB_INJECT" serial --device "$LAB_DIR/ttyB" --replay-socat-log "$LAB_DIR/socat.log" \
    --from lb2 --channel 2 --count 3
inject 2 "wrong_channel=+3" "replay of lb2's UDP frame re-framed for serial" \
    "$HB_INJECT" serial --device "$LAB_DIR/ttyB" --replay "$LAB_DIR/lb2-udp.frame" --count 3
inject 2 "malformed=+3" "COBS frames of random bytes" \
    "$HB_INJECT" serial --device "$LAB_DIR/ttyB" --random 80 --framing framed --count 3
inject_raw 2 3 "raw random bytes" \
    "$HB_INJECT" serial --device "$LAB_DIR/ttyB" --random 200 --framing raw --count 3

step "membership did not change"
# lb2's genuine frames are still accepted on every channel, and nothing more is dropped (a
# forged frame that had been accepted would make them count as replays now).
quiet0=$(for c in 0 1 2; do drops lb1 $c; done)
seqs0=() seqs1=()
for c in 0 1 2; do seqs0+=("$(last_seq lb1 lb2 $c)"); done
sleep 2
quiet1=$(for c in 0 1 2; do drops lb1 $c; done)
for c in 0 1 2; do seqs1+=("$(last_seq lb1 lb2 $c)"); done
[ "$quiet0" = "$quiet1" ] || fail "lb1 kept dropping frames after the injections: $quiet0 -> $quiet1"
for c in 0 1 2; do
    [ "${seqs1[$c]}" -gt "${seqs0[$c]}" ] ||
        fail "lb1 stopped accepting lb2's frames on channel $c (last_seq ${seqs0[$c]} -> ${seqs1[$c]})"
done
expect "lb2 up on every channel of lb1" all_up lb1 lb2
expect "lb1 up on every channel of lb2" all_up lb2 lb1
[ "$(peer_field lb1 lb2 state)" = up ] || fail "lb2 is not up on lb1"
[ "$(peer_field lb1 lb2 incarnation)" = "$INC" ] || fail "lb2's incarnation changed: $(peer_field lb1 lb2 incarnation)"
[ "$(peer_field lb1 lb2 restarts)" = "$restarts0" ] || fail "lb2 restarted on lb1: $(peer_field lb1 lb2 restarts)"
events1=$(membership_events | wc -l)
[ "$events1" = "$events0" ] || fail "membership events happened: $(membership_events | tail -n $((events1 - events0)))"
[ "$(tandem_status lb1 --json | jq -r '.membership.peers[] | select(.name == "lb2") | .state')" = up ] ||
    fail "tandem status --json does not show lb2 up"
expect "lb1 still MASTER" is_state lb1 VI_1 MASTER
expect "lb2 still BACKUP" is_state lb2 VI_1 BACKUP
[ "$(counter lb1 VI_1 transitions)" = "$tr1" ] || fail "lb1 VI_1 changed state"
[ "$(counter lb2 VI_1 transitions)" = "$tr2" ] || fail "lb2 VI_1 changed state"
# Not lab.sh's holders_are: its `ip ... | grep -q` fails now and then under pipefail (grep
# exits at the first match and ip, still writing, dies of SIGPIPE).
has_vip() { [[ "$(ip -n "$(lab_ns "$1")" -o addr show dev eth0)" == *" $VIP/"* ]]; }
has_vip lb1 || fail "lb1 lost the VIP"
! has_vip lb2 || fail "lb2 has the VIP"
"$TANDEM_BIN" links --socket "$LAB_DIR/lb1.sock"
echo PASS
