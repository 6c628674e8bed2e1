#!/usr/bin/env bash
# No DNS gap when sedns stops, restarts or is upgraded. dnsperf sends at a
# fixed rate while sedns is replaced, and counts the queries that got no
# answer:
#   1. socket activation (sockact plays systemd: it holds the sockets and
#      restarts the service as `systemctl restart` does): 0 lost;
#   2. SO_REUSEPORT hand-over (a second sedns serves the same address, the
#      first gets SIGTERM, as in a DaemonSet rollout with maxSurge 1):
#      at most REUSEPORT_MAX_LOST lost;
#   3. a plain restart with neither (the control: the gap the other two
#      close; it must lose queries, or this test could not see a gap).
# Also: SIGTERM drains (a forwarded query in flight is answered, over UDP
# and TCP; past stop_timeout it gets SERVFAIL), and sedns adopts the UDP
# socket of systemd's own systemd-socket-activate.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

RATE=${RATE:-2000}              # queries per second
SECS=${SECS:-4}                 # length of each dnsperf run
REUSEPORT_MAX_LOST=${REUSEPORT_MAX_LOST:-5}

for t in dnsperf dig systemd-socket-activate; do
	command -v "$t" >/dev/null || { notok "$t is installed (scripts/install-deps.sh)"; finish; }
done
fu_build || { notok "fakeupstream builds"; finish; }
SOCKACT=$(tool_build sockact) || { notok "sockact builds"; finish; }

UPORT=$(free_port)
fu_start "$UPORT" -l /dev/null || { notok "fakeupstream starts"; finish; }
COMMON=(--state-dir "$T_TMP/state" --serviceentries config/serviceentries --upstream "127.0.0.1:$UPORT"
	--allow-from 127.0.0.0/8)

# half local answers, half forwarded
QF=$T_TMP/queries
for i in $(seq 1 20); do
	echo "api.stripe.com A"
	echo "host$i.test A"
done >"$QF"

# perf_lost LOG: "Queries lost" of a dnsperf output
perf_lost() { awk '/Queries lost:/ {print $3; exit}' "$1"; }
perf_sent() { awk '/Queries sent:/ {print $3; exit}' "$1"; }

# run_perf LOG PORT: dnsperf in the background, PERF_PID set
run_perf() {
	dnsperf -s 127.0.0.1 -p "$2" -d "$QF" -Q "$RATE" -l "$SECS" -t 3 -c 1 -q 500 >"$1" 2>&1 &
	PERF_PID=$!
	T_PIDS+=("$PERF_PID")
}

# --- 1. socket activation ----------------------------------------------------
PORT=$(free_port)
"$SOCKACT" -l "127.0.0.1:$PORT" -p "$T_TMP/sa.pid" -t 120 -- \
	"$SEDNS" serve --listen "127.0.0.1:$PORT" "${COMMON[@]}" >"$T_TMP/sa.log" 2>&1 &
SA_PID=$!
T_PIDS+=("$SA_PID")
if ! wait_dns 127.0.0.1 "$PORT"; then
	notok "sedns starts under sockact ($(tail -3 "$T_TMP/sa.log"))"
	finish
fi
expect_eq "sedns adopts the UDP and TCP sockets it is handed" 2 "$(grep -c 'socket from systemd' "$T_TMP/sa.log")"
out=$(dig @127.0.0.1 -p "$PORT" +tcp +time=2 +tries=1 +short api.stripe.com)
expect_match "TCP on the adopted listener answers" '^240\.240\.' "$out"
pid1=$(cat "$T_TMP/sa.pid")
run_perf "$T_TMP/perf1" "$PORT"
sleep 1.5
kill -USR1 "$SA_PID"
wait "$PERF_PID"
pid2=$(cat "$T_TMP/sa.pid")
check "the service was restarted (pid $pid1 -> $pid2)" test "$pid1" != "$pid2" -a -n "$pid2"
check "the new process serves" kill -0 "$pid2"
lost1=$(perf_lost "$T_TMP/perf1"); sent1=$(perf_sent "$T_TMP/perf1")
echo "# measured: socket activation restart: sent=$sent1 lost=$lost1"
expect_eq "socket activation: no query lost across the restart (sent $sent1)" 0 "${lost1:-missing}"
kill "$SA_PID"; wait "$SA_PID" 2>/dev/null

# --- 2. SO_REUSEPORT hand-over -------------------------------------------------
PORT=$(free_port)
start_sedns "$T_TMP/a.log" --listen "127.0.0.1:$PORT" "${COMMON[@]}" || { notok "sedns A starts"; finish; }
A=$SEDNS_PID
run_perf "$T_TMP/perf2" "$PORT"
sleep 1
# the new pod of a rollout: A holds the state lock, B serves read-only
# beside it until A exits (as config/kubernetes does)
"$SEDNS" serve --listen "127.0.0.1:$PORT" "${COMMON[@]}" --state-lock wait >"$T_TMP/b.log" 2>&1 &
B=$!
T_PIDS+=("$B")
for _ in $(seq 1 50); do grep -q ' serving ' "$T_TMP/b.log" && break; sleep 0.05; done
check "a second sedns binds the same address beside the first (SO_REUSEPORT)" grep -q ' serving ' "$T_TMP/b.log"
sleep 0.5
kill -TERM "$A"
wait "$A"
wait "$PERF_PID"
lost2=$(perf_lost "$T_TMP/perf2"); sent2=$(perf_sent "$T_TMP/perf2")
echo "# measured: reuseport hand-over: sent=$sent2 lost=$lost2"
check "reuseport hand-over: at most $REUSEPORT_MAX_LOST lost (lost ${lost2:-?} of $sent2)" \
	test "${lost2:-999999}" -le "$REUSEPORT_MAX_LOST"
check "B still serves after A left" bash -c "dig @127.0.0.1 -p $PORT +time=2 +tries=1 api.stripe.com | grep -q NOERROR"
for _ in $(seq 1 30); do grep -q 'state lock .* taken' "$T_TMP/b.log" && break; sleep 0.1; done
check "... and took over the state lock from A" grep -q 'state lock .* taken' "$T_TMP/b.log"
stop_pid "$B"

# --- 3. the control: a plain restart --------------------------------------------
PORT=$(free_port)
start_sedns "$T_TMP/c1.log" --listen "127.0.0.1:$PORT" "${COMMON[@]}" || { notok "sedns starts"; finish; }
run_perf "$T_TMP/perf3" "$PORT"
sleep 1.5
stop_pid "$SEDNS_PID"
start_sedns "$T_TMP/c2.log" --listen "127.0.0.1:$PORT" "${COMMON[@]}"
wait "$PERF_PID"
lost3=$(perf_lost "$T_TMP/perf3"); sent3=$(perf_sent "$T_TMP/perf3")
echo "# measured: plain restart (no socket activation, no second process): sent=$sent3 lost=$lost3"
check "the control loses queries, so the method sees a gap (lost ${lost3:-?})" test "${lost3:-0}" -gt 0
stop_pid "$SEDNS_PID"

# --- draining on SIGTERM -----------------------------------------------------
PORT=$(free_port)
start_sedns "$T_TMP/d.log" --listen "127.0.0.1:$PORT" "${COMMON[@]}" || { notok "sedns starts"; finish; }
dig @127.0.0.1 -p "$PORT" +time=4 +tries=1 delay-800.drain.test >"$T_TMP/d.udp" 2>&1 &
DU=$!
dig @127.0.0.1 -p "$PORT" +tcp +time=4 +tries=1 delay-800.draintcp.test >"$T_TMP/d.tcp" 2>&1 &
DT=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$SEDNS_PID"
wait "$SEDNS_PID"; rc=$?
ms=$(ms_since "$t0")
wait "$DU" "$DT"
expect_eq "sedns exits 0 after SIGTERM" 0 "$rc"
expect_match "a UDP query forwarded before SIGTERM is answered" 'status: NOERROR.*ANSWER: 1' "$(tr '\n' ' ' <"$T_TMP/d.udp")"
expect_match "a TCP query forwarded before SIGTERM is answered" 'status: NOERROR.*ANSWER: 1' "$(tr '\n' ' ' <"$T_TMP/d.tcp")"
check "sedns waited for the answer, then exited at once (${ms} ms after SIGTERM)" test "$ms" -ge 300 -a "$ms" -lt 2000
start_sedns "$T_TMP/d2.log" --listen "127.0.0.1:$PORT" "${COMMON[@]}" --stop-timeout 300ms ||
	{ notok "sedns starts"; finish; }
dig @127.0.0.1 -p "$PORT" +time=6 +tries=1 delay-3000.late.test >"$T_TMP/d2.udp" 2>&1 &
DU=$!
dig @127.0.0.1 -p "$PORT" +tcp +time=6 +tries=1 delay-3000.latetcp.test >"$T_TMP/d2.tcp" 2>&1 &
DT=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$SEDNS_PID"
wait "$SEDNS_PID"
ms=$(ms_since "$t0")
wait "$DU" "$DT"
expect_match "past stop_timeout the query still upstream gets SERVFAIL" 'status: SERVFAIL' "$(cat "$T_TMP/d2.udp")"
expect_match "... over TCP too (written before the connection closes)" 'status: SERVFAIL' "$(cat "$T_TMP/d2.tcp")"
check "... and sedns exits at the deadline (${ms} ms)" test "$ms" -ge 250 -a "$ms" -lt 1500
check "the log says what happened" grep -q 'stop deadline: answering SERVFAIL' "$T_TMP/d2.log"

# --- TCP: forwarding that fails at once, under pipelining and half-close ---
# (no upstream at all: every forwarded query is answered from inside the
# read loop; the loop must not re-enter itself per frame)
PORT=$(free_port)
start_sedns "$T_TMP/e.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" \
	--serviceentries config/serviceentries --resolv-conf /dev/null || { notok "sedns starts"; finish; }
names=()
for i in $(seq 1 400); do names+=("n$i.nowhere.test"); done
out=$(rq -T -H -w 3000 "${names[@]}")
expect_eq "400 pipelined TCP queries with no upstream: 400 SERVFAIL answers" 400 "$(grep -c 'rcode=2 ' <<<"$out")"
check "sedns survived it" kill -0 "$SEDNS_PID"
stop_pid "$SEDNS_PID"

# --- systemd's own activator (UDP) ------------------------------------------
PORT=$(free_port)
systemd-socket-activate --datagram -l "127.0.0.1:$PORT" "$SEDNS" serve --listen "127.0.0.1:$PORT" "${COMMON[@]}" \
	>"$T_TMP/ssa.log" 2>&1 &
SSA=$!
T_PIDS+=("$SSA")
# it starts the service on the first datagram
out=$(dig @127.0.0.1 -p "$PORT" +time=3 +tries=2 +short api.stripe.com)
expect_match "under systemd-socket-activate the first query is answered" '^240\.240\.' "$out"
check "... on the socket systemd passed" grep -q 'listening on udp 127.0.0.1 port '"$PORT"' (socket from systemd)' "$T_TMP/ssa.log"
out=$(dig @127.0.0.1 -p "$PORT" +tcp +time=3 +tries=1 +short api.stripe.com)
expect_match "... and TCP, not passed, is bound by sedns itself" '^240\.240\.' "$out"
kill "$SSA" 2>/dev/null; wait "$SSA" 2>/dev/null

finish
