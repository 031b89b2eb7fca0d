#!/usr/bin/env bash
# Acceptance 6: `tandem check` prints the expected file:line:col diagnostics and exits 1 on
# every broken config, and exits 0 on every example config (tests/configs/valid, deploy/).
set -euo pipefail
cd "$(dirname "$0")/../.."
TANDEM_BIN=${TANDEM_BIN:-target/debug/tandem}
n=0
for f in tests/configs/broken/*.toml; do
    exp=${f%.toml}.expected
    [ -f "$exp" ] || { echo "FAIL: $exp missing"; exit 1; }
    set +e
    out=$("$TANDEM_BIN" check -c "$f" 2>&1)
    rc=$?
    set -e
    if [ $rc -ne 1 ]; then echo "FAIL: $f: exit $rc, expected 1"; echo "$out"; exit 1; fi
    if ! diff -u "$exp" <(printf '%s\n' "$out"); then echo "FAIL: $f: output differs"; exit 1; fi
    n=$((n + 1))
done
echo "ok: $n broken configs refused with the expected diagnostics"
m=0
for f in tests/configs/valid/*.toml deploy/*.toml; do
    [ -e "$f" ] || continue
    # --no-local: the examples name key files and serial devices of other machines.
    "$TANDEM_BIN" check --no-local -c "$f" || { echo "FAIL: $f should be valid"; exit 1; }
    m=$((m + 1))
done
[ $m -ge 2 ] || { echo "FAIL: only $m example configs found"; exit 1; }
echo "ok: $m example configs accepted"
echo PASS
