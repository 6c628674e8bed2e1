#!/usr/bin/env bash
# run.sh TARGET...: runs each libFuzzer target in build-fuzz/ for
# FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/TARGET). Prints one "fuzz TARGET: ..." line each and
# exits non-zero if any target crashed, leaked or timed out; the crashing
# input is kept in build-fuzz/artifacts/ (add it to the corpus with a fix).
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
mkdir -p build-fuzz/artifacts
rc=0
for t in "$@"; do
	work=$(mktemp -d /tmp/sedns-fuzz-$t.XXXXXX)
	cp tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
	log=build-fuzz/$t.log
	"build-fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65535 \
		-artifact_prefix=build-fuzz/artifacts/"$t"- -print_final_stats=1 "$work" >"$log" 2>&1
	st=$?
	runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
	if [ "$st" -ne 0 ]; then
		echo "fuzz $t: FAILED (exit $st) after ${runs:-?} runs; see $log and build-fuzz/artifacts/"
		grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log"
		rc=1
	else
		echo "fuzz $t: ok, ${runs:-0} runs in ${secs}s"
	fi
	rm -rf "$work"
done
exit $rc
