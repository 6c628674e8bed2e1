#!/usr/bin/env bash
# Runs every shell-level test (tests/shell, tests/integration, tests/e2e),
# each of which ends with "N passed, M failed", and prints the total.
set -u
cd "$(dirname "$0")/.."
export SEDNS=${SEDNS:-$PWD/build/sedns}
total_pass=0
total_fail=0
failed_scripts=()
for t in tests/shell/test_*.sh tests/integration/test_*.sh tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	if [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]]; then continue; fi
	echo "=== $t"
	start=$(date +%s)
	out=$(timeout 900 bash "$t" 2>&1)
	rc=$?
	echo "$out"
	line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
	p=$(echo "$line" | awk '{print $1}')
	f=$(echo "$line" | awk '{print $3}')
	[ -z "$p" ] && p=0
	[ -z "$f" ] && f=0
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $t exited $rc without reporting a failure"
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$f" -ne 0 ] && failed_scripts+=("$t")
	echo "--- $t: $p passed, $f failed ($(( $(date +%s) - start ))s)"
done
[ ${#failed_scripts[@]} -gt 0 ] && echo "failed: ${failed_scripts[*]}"
echo "shell: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
