#!/usr/bin/env bash
# Reload benchmark: how long queries wait while sedns reloads a large set.
# For each N: N ServiceEntries (scripts/gen-serviceentries.sh), sedns started
# (cold start to first answer timed), then dnsperf sends 1000 queries/s of
# local names for 8 s while sedns gets 4 SIGHUPs (nothing changed) and one
# file change; prints dnsperf's latency (max = the longest stall a client
# saw; p50/p99/p99.9 from dnsperf -v), every reload's duration, and RSS
# steady / peak during the reloads (VmHWM reset first) / peak at start.
#
# Usage: scripts/bench-reload.sh [N...]   (default: 10000 50000)
# Env: SEDNS (default build/sedns). Loopback only; every loop is bounded.
set -uo pipefail
cd "$(dirname "$0")/.."
SEDNS=${SEDNS:-build/sedns}
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(10000 50000)
TMP=$(mktemp -d /tmp/sedns-bench-reload.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
command -v dnsperf >/dev/null || { echo "bench-reload: dnsperf missing (make deps)" >&2; exit 1; }
[ -x "$SEDNS" ] || { echo "bench-reload: $SEDNS missing" >&2; exit 1; }
port() { local p; for _ in $(seq 1 100); do p=$((10000 + RANDOM % 20000)); ss -Hlnu "sport = :$p" | grep -q . || { echo "$p"; return; }; done; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

echo "# sedns reload benchmark, $(date -u +%FT%TZ), $(nproc) cores, $SEDNS"
for n in "${SIZES[@]}"; do
	d=$TMP/n$n; mkdir -p "$d/se"
	# 20 files, so that one changed file is a twentieth of the input
	scripts/gen-serviceentries.sh "$n" >"$d/all.yaml"
	awk -v dir="$d/se" 'BEGIN { f = 0 } /^---$/ { c++; f = int(c / (('"$n"' + 19) / 20)) } { print > (dir "/part" f ".yaml") }' "$d/all.yaml"
	p=$(port)
	for i in $(seq 0 50 $((n - 1))); do echo "svc$i.bench.example A"; done >"$d/q.txt"
	t0=$(date +%s.%N)
	"$SEDNS" serve --listen "127.0.0.1:$p" --state-dir "$d/state" -s "$d/se" --upstream 127.0.0.1:9 \
		--reload-debounce 100ms >"$d/log" 2>&1 &
	PID=$!
	up=0
	for _ in $(seq 1 1200); do
		dig @127.0.0.1 -p "$p" +short +time=1 +tries=1 "svc$((n - 1)).bench.example" | grep -q '^240\.' && { up=1; break; }
		sleep 0.05
	done
	t1=$(date +%s.%N)
	[ $up = 1 ] || { echo "bench-reload: N=$n never answered: $(tail -2 "$d/log")" >&2; exit 1; }
	sleep 2
	steady=$(rss_kb "$PID")
	start_hwm=$(hwm_kb "$PID")
	# the peak of the reloads alone: 5 resets VmHWM to the current RSS
	echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true
	# -v: one line per answer with its latency, for the percentiles
	dnsperf -v -s 127.0.0.1 -p "$p" -d "$d/q.txt" -l 8 -Q 1000 >"$d/perf" 2>&1 &
	perf=$!
	sleep 1
	for _ in 1 2 3 4; do kill -HUP "$PID"; sleep 1.2; done
	sed -i '0,/- address: .*$/s//- address: 198.18.250.1/' "$d/se/part3.yaml"
	wait "$perf"
	sleep 1
	peak=$(hwm_kb "$PID")
	kill "$PID"; wait "$PID" 2>/dev/null; PID=""
	lat=$(grep 'Average Latency' "$d/perf" | sed 's/.*Latency (s): *//')
	durs=$(grep -o 'reloaded .*duration_ms=[0-9.]*' "$d/log" | sed 's/.*duration_ms=//' | tr '\n' ' ')
	printf 'N=%-6s cold start to first answer %.2f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
	printf 'N=%-6s queries during 4 SIGHUPs + 1 file change: %s\n' "$n" "$(grep 'Queries completed' "$d/perf" | sed 's/ *Queries completed: *//')"
	printf 'N=%-6s latency (s): %s\n' "$n" "$lat"
	grep '^> ' "$d/perf" | awk '{print $NF * 1000}' | sort -g >"$d/lat"
	cnt=$(wc -l <"$d/lat")
	pct() { sed -n "$(((cnt * $1 + 999) / 1000))p" "$d/lat"; }
	[ "$cnt" -gt 0 ] && printf 'N=%-6s latency (ms) p50 %s p99 %s p99.9 %s max %s (%d answers)\n' "$n" "$(pct 500)" \
		"$(pct 990)" "$(pct 999)" "$(tail -1 "$d/lat")" "$cnt"
	printf 'N=%-6s reload durations (ms): %s\n' "$n" "$durs"
	printf 'N=%-6s RSS steady %d MiB, peak during the reloads %d MiB (%.2fx steady), peak at start %d MiB (%.0f bytes per host steady)\n' \
		"$n" $((steady / 1024)) $((peak / 1024)) "$(echo "scale=2; $peak / $steady" | bc)" $((start_hwm / 1024)) \
		"$(echo "$steady * 1024 / $n" | bc)"
done
