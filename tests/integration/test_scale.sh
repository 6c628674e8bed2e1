#!/usr/bin/env bash
# Scale: a reload of a large set is built beside the event loop, so queries
# are answered while it runs (the benchmark with figures is
# scripts/bench-reload.sh; this checks the behaviour, with a wide margin).
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
command -v dnsperf >/dev/null || { notok "dnsperf installed"; finish; }

N=20000
mkdir -p "$T_TMP/se"
scripts/gen-serviceentries.sh "$N" >"$T_TMP/se/all.yaml"
for i in $(seq 0 40 $((N - 1))); do echo "svc$i.bench.example A"; done >"$T_TMP/q.txt"
PORT=$(free_port)
start_sedns "$T_TMP/s.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se" \
	--upstream 127.0.0.1:9 || { notok "sedns starts with $N hosts"; finish; }
for _ in $(seq 1 100); do
	dig @127.0.0.1 -p "$PORT" +short "svc$((N - 1)).bench.example" | grep -q '^240\.' && break
	sleep 0.1
done
expect_match "$N hosts: the last one is answered" '^240\.240\.' "$(dig @127.0.0.1 -p "$PORT" +short "svc$((N - 1)).bench.example")"

# 500 queries/s for 5 s; three full reloads in the middle (the file touched:
# a new mtime is new input; a SIGHUP with nothing changed builds nothing)
dnsperf -s 127.0.0.1 -p "$PORT" -d "$T_TMP/q.txt" -l 5 -Q 500 >"$T_TMP/perf" 2>&1 &
perf=$!
sleep 1
for _ in 1 2 3; do touch "$T_TMP/se/all.yaml"; sleep 1; done
wait "$perf"
sleep 0.5
reloads=$(grep -o 'reloaded files=.*duration_ms=[0-9.]*' "$T_TMP/s.log" | sed 's/.*duration_ms=//')
min_reload=$(sort -n <<<"$reloads" | head -1)
max_ms=$(awk '/Average Latency/ { sub(/.*max /, ""); sub(/\).*/, ""); printf "%.1f", $0 * 1000 }' "$T_TMP/perf")
echo "# reloads (ms): $(echo $reloads); longest query wait: $max_ms ms"
expect_eq "three file changes under load: three full reloads" 3 "$(wc -l <<<"$reloads")"
expect_match "... every query answered" 'Queries lost: +0 ' "$(tr -s ' ' <"$T_TMP/perf" | grep 'Queries lost')"
check "... and none waited for a reload (longest wait $max_ms ms, shortest reload $min_reload ms)" \
	awk -v m="$max_ms" -v r="$min_reload" 'BEGIN { exit !(r > 100 && m < r / 2) }'

# a SIGHUP with nothing changed: the input's fingerprint (names, inodes,
# sizes, mtimes) matches the installed table's, so nothing is rebuilt
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 50); do grep -q 'reloaded unchanged' "$T_TMP/s.log" && break; sleep 0.1; done
line=$(grep 'reloaded unchanged' "$T_TMP/s.log" | tail -1)
expect_match "SIGHUP with nothing changed: no rebuild" "reloaded unchanged files=1 hosts=$N " "$line"
ms=$(sed 's/.*duration_ms=//' <<<"$line")
check "... and it took less than a tenth of a full reload ($ms ms vs $min_reload ms)" \
	awk -v m="$ms" -v r="$min_reload" 'BEGIN { exit !(m != "" && m < r / 10) }'
expect_eq "... nothing rebuilt: still three full reloads" 3 "$(grep -c 'reloaded files=' "$T_TMP/s.log")"

# a dry run streams its rules to the file in 1 MiB pieces (megabytes here):
# the file is exactly what `sedns rules` prints for the same input and store
rf=$(ls "$T_TMP"/state/rules.nft "$T_TMP"/state/rules.iptables 2>/dev/null | head -1)
fmt=${rf##*.}
check "dry run: the rules file is written, several MiB ($(stat -c %s "$rf" 2>/dev/null) bytes)" \
	test "$(stat -c %s "$rf" 2>/dev/null || echo 0)" -gt 3000000
"$SEDNS" rules --format "$fmt" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se" --upstream 127.0.0.1:9 \
	>"$T_TMP/cli.rules" 2>"$T_TMP/cli.err"
check "... byte for byte what \`sedns rules --format $fmt\` prints" cmp -s "$rf" "$T_TMP/cli.rules"
# one endpoint changed: the file follows
sed -i '0,/- address: .*$/s//- address: 198.18.250.1/' "$T_TMP/se/all.yaml"
for _ in $(seq 1 100); do grep -q '198\.18\.250\.1' "$rf" 2>/dev/null && break; sleep 0.1; done
"$SEDNS" rules --format "$fmt" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se" --upstream 127.0.0.1:9 \
	>"$T_TMP/cli.rules" 2>"$T_TMP/cli.err"
check "... after an endpoint change, still identical (the new endpoint in it)" \
	bash -c "grep -q '198\\.18\\.250\\.1' '$rf' && cmp -s '$rf' '$T_TMP/cli.rules'"
stop_pid "$SEDNS_PID"
finish
