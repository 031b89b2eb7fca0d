#!/usr/bin/env bash
# Issue 4: `tandem node add|remove` through Raft membership changes. lb1, lb2 and an arbiter
# run; lb3 starts with `--join` (its config lists all four) and must not bootstrap a cluster
# of its own; `tandem node add` makes it a voter that can hold the VIP; `tandem node remove`
# refuses a lease holder and a change that leaves fewer than three voters, and removes lb3.
# vip-watch checks for two holders over the whole test.
source "$(dirname "$0")/lib.sh"
lab_init
lab_host lb1 1
lab_host lb2 2
lab_host arb 3
lab_host lb3 4
lab_host client 9
VIP=192.0.2.100
quorum_configs $VIP
# lb3: lb2's config with its own name, paths and priority, and itself in [cluster] nodes.
sed -e 's/^name = "lb2"$/name = "lb3"/' -e 's/lb2\.state/lb3.state/' -e 's/lb2\.sock/lb3.sock/' \
    -e 's/^priority = 100$/priority = 50/' \
    -e "s/^\(  { name = \"arb\".*\)\$/\1\n  { name = \"lb3\", address = \"$LAB_NET4.4\" },/" \
    "$LAB_DIR/lb2.toml" >"$LAB_DIR/lb3.toml"
"$TANDEM_BIN" check -c "$LAB_DIR/lb3.toml" >/dev/null || fail "lb3's config refused: $("$TANDEM_BIN" check -c "$LAB_DIR/lb3.toml" 2>&1)"

q() { quorum_field "$@"; }
voters() { q "$1" '.members | map(select(.voter) | .name) | join(",")'; }
voters_are() { [ "$(voters "$1")" = "$2" ]; }
has_quorum() { [ "$(q "$1" .quorum)" = true ]; }

step "start vip-watch, lb1, lb2 and the arbiter"
vip_watch_start "$VIP" lb1 lb2 lb3 arb
for n in arb lb1 lb2; do tandem_start "$n" "$LAB_DIR/$n.toml"; done
for n in arb lb1 lb2; do wait_for "$n in a quorum" 20 has_quorum $n || fail "$n has no quorum"; done
wait_for "lb1 holds the VIP" 20 holders_are $VIP lb1 || fail "lb1 did not get the VIP"

step "lb3 starts with --join: it waits, it does not bootstrap"
tandem_start lb3 "$LAB_DIR/lb3.toml" --join
wait_for "lb3's control socket" 10 tandem_status lb3 || fail "lb3 did not start: $(tail -5 "$LAB_DIR/lb3.log")"
sleep 2
expect "lb3 has no quorum yet" test "$(q lb3 .quorum)" = false
expect "lb3 has no members yet" test "$(q lb3 '.members | length')" = 0
expect "the cluster has three voters" voters_are lb1 arb,lb1,lb2
grep -q "joining: waiting to be added" "$LAB_DIR/lb3.log" || fail "lb3 did not say it waits to be added"

step "tandem node add lb3 (from lb2): a learner, then a voter"
"$TANDEM_BIN" node add lb3 "$LAB_NET4.4" --socket "$LAB_DIR/lb2.sock" >"$LAB_DIR/add.out" 2>&1 ||
    fail "node add failed: $(cat "$LAB_DIR/add.out")"
cat "$LAB_DIR/add.out"
grep -q "raft log index" "$LAB_DIR/add.out" || fail "node add did not print the log index"
for n in lb1 lb2 arb lb3; do
    wait_for "$n sees four voters" 10 voters_are $n arb,lb1,lb2,lb3 || fail "$n: voters $(voters $n)"
done
wait_for "lb3 in the quorum" 10 has_quorum lb3 || fail "lb3 has no quorum"
"$TANDEM_BIN" node add lb3 "$LAB_NET4.4" --socket "$LAB_DIR/lb1.sock" 2>"$LAB_DIR/err" && fail "adding lb3 twice accepted"
grep -q "already a voter" "$LAB_DIR/err" || fail "unclear error: $(cat "$LAB_DIR/err")"
"$TANDEM_BIN" node add 'bad name' "$LAB_NET4.5" --socket "$LAB_DIR/lb1.sock" 2>"$LAB_DIR/err" && fail "a bad name accepted"
grep -q "is not a node name" "$LAB_DIR/err" || fail "unclear error: $(cat "$LAB_DIR/err")"

step "the new voter can hold the VIP: lb1 and lb2 on standby → lb3"
"$TANDEM_BIN" standby lb1 --socket "$LAB_DIR/lb3.sock" || fail "standby lb1 failed"
wait_for "lb2 holds the VIP" 10 holders_are $VIP lb2 || fail "the VIP did not go to lb2"
"$TANDEM_BIN" standby lb2 --socket "$LAB_DIR/lb3.sock" || fail "standby lb2 failed"
wait_for "lb3 holds the VIP" 10 holders_are $VIP lb3 || fail "the VIP did not go to lb3: $(tandem_status lb3)"
tandem_status lb3 | sed -n '/^raft/,$p'
"$TANDEM_BIN" unstandby lb1 --socket "$LAB_DIR/arb.sock" || fail "unstandby lb1 failed"
"$TANDEM_BIN" unstandby lb2 --socket "$LAB_DIR/arb.sock" || fail "unstandby lb2 failed"
wait_for "lb1 takes it back (preempt)" 10 holders_are $VIP lb1 || fail "the VIP did not come back to lb1"

step "tandem node remove: refused for a holder, done for lb3, refused below three voters"
"$TANDEM_BIN" node remove lb1 --socket "$LAB_DIR/lb2.sock" 2>"$LAB_DIR/err" && fail "removing the holder accepted"
grep -q "lb1 holds the lease of VI_1" "$LAB_DIR/err" || fail "unclear error: $(cat "$LAB_DIR/err")"
"$TANDEM_BIN" node remove lb3 --socket "$LAB_DIR/arb.sock" || fail "node remove lb3 failed"
for n in lb1 lb2 arb; do
    wait_for "$n sees three voters" 10 voters_are $n arb,lb1,lb2 || fail "$n: voters $(voters $n)"
done
tandem_stop lb3
"$TANDEM_BIN" node remove arb --socket "$LAB_DIR/lb1.sock" 2>"$LAB_DIR/err" && fail "removing down to two voters accepted"
grep -q "would leave 2 voters" "$LAB_DIR/err" || fail "unclear error: $(cat "$LAB_DIR/err")"
for n in lb1 lb2 arb; do expect "$n still has quorum" has_quorum $n; done
expect "lb1 still holds the VIP" holders_are $VIP lb1

step "vip-watch: never two holders"
vip_watch_verdict 500 100
echo "PASS"
