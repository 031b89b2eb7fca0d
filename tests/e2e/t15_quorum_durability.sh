#!/usr/bin/env bash
# Issue 4, acceptance 3: durability of the Raft log. Three rounds: a writer keeps toggling
# lb2's standby flag through one node while two of the three nodes are killed with -9 and
# restarted (a different pair each round). Every write the writer saw acknowledged (with its
# log index and term) must then be in every node's store, which must open cleanly after the
# last kill -9 of all three.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host arb 3
VIP=192.0.2.100
quorum_configs $VIP

q() { quorum_field "$@"; }
all_caught_up() { # INDEX: every node has quorum and has applied INDEX
    local n a
    for n in lb1 lb2 arb; do
        [ "$(q $n .quorum)" = true ] || return 1
        a=$(q $n .applied_index)
        [ "$a" != null ] && [ "$a" -ge "$1" ] || return 1
    done
}
ACKS=$LAB_DIR/acks
: >"$ACKS"
# writer NODE COUNT: toggle lb2's standby through NODE; log "index term value" per ack.
writer() {
    local node=$1 count=$2 i val out
    for ((i = 0; i < count; i++)); do
        if ((i % 2 == 0)); then val=true; verb=standby; else val=false; verb=unstandby; fi
        if out=$(timeout 5 "$TANDEM_BIN" "$verb" lb2 --socket "$LAB_DIR/$node.sock" 2>/dev/null); then
            sed -n "s/.*raft log index \([0-9]*\), term \([0-9]*\)).*/\1 \2 $val/p" <<<"$out" >>"$ACKS"
        fi
        sleep 0.05
    done
}

for n in arb lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
wait_for "lb1 holds the VIP" 30 holders_are $VIP lb1 || fail "cluster did not form"

round=0
for plan in "lb1 lb2 arb" "lb2 lb1 arb" "arb lb1 lb2"; do
    round=$((round + 1))
    read -r survivor v1 v2 <<<"$plan"
    step "round $round: writes through $survivor, kill -9 $v1 and $v2 meanwhile"
    writer "$survivor" 60 &
    wpid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    tandem_stop "$v1" KILL
    tandem_stop "$v2" KILL
    sleep 1
    tandem_start "$v1" "$LAB_DIR/$v1.toml"
    tandem_start "$v2" "$LAB_DIR/$v2.toml"
    wait $wpid || true
    max=$(awk 'BEGIN{m=0} $1>m{m=$1} END{print m}' "$ACKS")
    echo "acknowledged writes so far: $(wc -l <"$ACKS"), highest index $max"
    wait_for "every node back and caught up to $max" 30 all_caught_up "$max" || fail "a node did not come back or catch up"
done
[ "$(wc -l <"$ACKS")" -ge 60 ] || fail "too few acknowledged writes to prove anything ($(wc -l <"$ACKS"))"

step "kill -9 all three; every acknowledged write is in every store"
for n in lb1 lb2 arb; do tandem_stop "$n" KILL; done
for n in lb1 lb2 arb; do
    "$TANDEM_BIN" raft-log --state-dir "$LAB_DIR/$n.state" >"$LAB_DIR/$n.raft.json" ||
        fail "the store of $n does not open after kill -9"
    # Entries below the first one in the log were compacted into the snapshot.
    first=$(jq '[.entries[].log_id.index] | min // 0' "$LAB_DIR/$n.raft.json")
    bad=0
    while read -r idx term val; do
        if [ "$idx" -lt "$first" ]; then continue; fi
        got=$(jq -c --argjson i "$idx" '.entries[] | select(.log_id.index == $i) | [.log_id.leader_id.term, .payload.Normal.SetStandby.node, .payload.Normal.SetStandby.standby]' "$LAB_DIR/$n.raft.json")
        if [ "$got" != "[$term,\"lb2\",$val]" ]; then
            echo "$n: acknowledged write at index $idx term $term ($val) is missing or different: ${got:-absent}" >&2
            bad=$((bad + 1))
        fi
    done <"$ACKS"
    [ "$bad" = 0 ] || fail "$n lost $bad acknowledged writes"
    echo "$n: store opens; $(jq '.entries | length' "$LAB_DIR/$n.raft.json") entries, committed $(jq -c .committed.index "$LAB_DIR/$n.raft.json"), all $(wc -l <"$ACKS") acknowledged writes present"
done
echo "PASS"
