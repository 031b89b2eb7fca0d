#!/usr/bin/env bash
# Run the end-to-end tests (each in its own lab, bounded in time) and print a summary line.
# Usage: tests/e2e/run.sh [PATTERN]   e.g. tests/e2e/run.sh t04
set -uo pipefail
cd "$(dirname "$0")"
pattern=${1:-}
passed=0 failed=0 failures=()
for t in t[0-9]*.sh; do
    [ -n "$pattern" ] && [[ $t != *"$pattern"* ]] && continue
    start=$(date +%s)
    log=$(mktemp "/tmp/tandem-e2e.${t%.sh}.XXXX")
    if timeout --kill-after=10 "${E2E_TIMEOUT:-300}" bash "$t" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "test e2e::${t%.sh} ... ok ($(($(date +%s) - start))s)"
        rm -f "$log"
    else
        failed=$((failed + 1))
        failures+=("$t")
        echo "test e2e::${t%.sh} ... FAILED ($(($(date +%s) - start))s)"
        sed 's/^/    /' "$log"
    fi
done
echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
