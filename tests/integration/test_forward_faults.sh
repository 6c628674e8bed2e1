#!/usr/bin/env bash
# sedns serve forwarding to misbehaving upstreams (tests/tools/fakeupstream.c):
# truncation, TCP retry, EDNS relay, failover, dead upstreams, spoofing,
# relayed error codes, the pending cap, and refusing itself as upstream.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"
SE=config/serviceentries

fu_build || { notok "fakeupstream builds"; finish; }

# up PORTVAR LOG ARGS...: a fakeupstream on a free port
up() {
	local var=$1 log=$2 try; shift 2
	local p
	for try in 1 2 3; do
		p=$(free_port) || return 1
		printf -v "$var" %s "$p"
		if fu_start "$p" -l "$log" "$@"; then
			printf -v "${var}_PID" %s "$FU_PID"
			return 0
		fi
	done
	return 1
}

# sd NAME ARGS...: a sedns instance on a free port (sets PORT, SEDNS_PID)
# (a port taken between free_port and bind: another try on another port)
sd() {
	local name=$1 try; shift
	for try in 1 2 3; do
		PORT=$(free_port)
		if start_sedns "$T_TMP/$name.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-$name" \
			--serviceentries "$SE" "$@"; then
			return 0
		fi
		stop_pid "$SEDNS_PID"
	done
	notok "sedns ($name) starts: $(tail -3 "$T_TMP/$name.log")"
	finish
}

D() { dig @127.0.0.1 -p "$PORT" +time=3 +tries=1 "$@" 2>&1; }

up UP1 "$T_TMP/up1.log" || { notok "fakeupstream starts"; finish; }
up UP2 "$T_TMP/up2.log" -m plain || { notok "fakeupstream (plain) starts"; finish; }
up DROP1 "$T_TMP/drop1.log" -m drop || { notok "fakeupstream (drop) starts"; finish; }
up DROP2 "$T_TMP/drop2.log" -m drop || { notok "fakeupstream (drop) starts"; finish; }
up SPOOF "$T_TMP/spoof.log" -m spoof || { notok "fakeupstream (spoof) starts"; finish; }
CLOSED1=$(free_port)
CLOSED2=$(free_port)

# --- A: one well-behaved upstream ------------------------------------------------
sd a --upstream "127.0.0.1:$UP1" --upstream-timeout 300ms

out=$(D +noedns +ignore big.test A)
expect_match "big answer to a 512-byte client: TC=1" 'flags: qr[a-z ]* tc' "$out"
n=$(echo "$out" | grep -c '^big\.test\..*IN[[:space:]]A')
check "the truncated UDP reply fits 512 bytes (fewer than 64 records: $n)" test "$n" -lt 64
out=$(D +noedns big.test A)
expect_eq "dig retries over TCP and gets all 64 records" 64 "$(echo "$out" | grep -c '^big\.test\..*IN[[:space:]]A')"
expect_match "the retry was over TCP" '\(TCP\)' "$out"
out=$(D +bufsize=600 +ignore big.test A)
expect_match "big answer to an EDNS-600 client: TC=1" 'flags: qr[a-z ]* tc' "$out"
expect_match "the truncated EDNS reply keeps OPT" 'EDNS: version: 0' "$out"
out=$(D +bufsize=4096 big.test A)
expect_eq "an EDNS-4096 client gets all 64 records over UDP" 64 "$(echo "$out" | grep -c '^big\.test\..*IN[[:space:]]A')"
check "... without TC" test -z "$(echo "$out" | grep -E 'flags: qr[a-z ]* tc')"

: >"$T_TMP/up1.log"
out=$(D +bufsize=4096 +ignore tc.test A)
expect_eq "upstream TC: sedns retries over TCP, client gets 3 records" 3 "$(echo "$out" | grep -c '^tc\.test\..*IN[[:space:]]A[[:space:]]192\.0\.2\.10[012]')"
check "... and the client's reply is not truncated" test -z "$(echo "$out" | grep -E 'flags: qr[a-z ]* tc')"
expect_match "the upstream saw the query over UDP then TCP" $'udp tc.test 1\ntcp tc.test 1' "$(cat "$T_TMP/up1.log")"

out=$(D +nocookie +ednsopt=65001:abcd +short echo-edns.test TXT)
expect_match "EDNS option 65001=abcd reaches the upstream intact" 'opts=fde90002abcd"' "$out"
out=$(D +nocookie +ednsopt=65001:abcd +ednsopt=65002:0102030405 +short echo-edns.two.test TXT)
expect_match "two EDNS options reach the upstream intact, in order" 'opts=fde90002abcdfdea00050102030405"' "$out"
out=$(D +noedns +short echo-edns.test TXT)
expect_match "a query without EDNS reaches the upstream without OPT" 'edns=none' "$out"

out=$(D nx.test A)
expect_match "upstream NXDOMAIN is relayed" 'status: NXDOMAIN' "$out"
out=$(D servfail.test A)
expect_match "upstream SERVFAIL is relayed" 'status: SERVFAIL' "$out"
expect_match "... it is the upstream's own reply (its EDE text)" 'fakeupstream servfail' "$out"
t0=$(date +%s%N)
out=$(rq -w 2000 servfail.test)
el=$(ms_since "$t0")
expect_match "... relayed as rcode 2" '^REPLY .* rcode=2 ' "$out"
check "... at once, not after a failover timeout (${el} ms)" test "$el" -lt 250
out=$(D +short refused.test A; D refused.test A | grep -o 'status: [A-Z]*')
expect_match "upstream REFUSED is relayed" 'status: REFUSED' "$out"

for i in 1 2 3; do
	out=$(D +short "wrongid.w$i.test" A)
	expect_match "wrong-ID reply ignored, the correct reply that follows is used ($i)" '^192\.0\.2\.[0-9]+$' "$out"
done
out=$(D "wrongidonly.test" A)
expect_match "only a wrong-ID reply from the only upstream: SERVFAIL" 'status: SERVFAIL' "$out"
out=$(D "wrongq.test" A)
expect_match "a reply to another question from the only upstream: SERVFAIL" 'status: SERVFAIL' "$out"
check "... never the other question's data" test -z "$(echo "$out" | grep 203.0.113.66)"
out=$(D "formerr-noq.test" A)
expect_match "an upstream FORMERR without a question is relayed (its answer), not turned into SERVFAIL" 'status: FORMERR' "$out"
out=$(D "nx-noq.test" A)
expect_match "NXDOMAIN without a question is not an answer: the upstream failed, SERVFAIL" 'status: SERVFAIL' "$out"
out=$(D "garbage.test" A)
expect_match "random bytes from the only upstream: SERVFAIL" 'status: SERVFAIL' "$out"

# TCP clients and forwarding
t0=$(date +%s%N)
out=$(rq -T -w 3000 delay-200.p.test host1.test api.stripe.com)
el=$(ms_since "$t0")
expect_eq "3 pipelined TCP queries (slow forwarded, fast forwarded, local): 3 replies" 3 "$(echo "$out" | grep -c '^REPLY .* rcode=0 .* an=1 ')"
expect_match "the slow one comes last: no head-of-line blocking" "hex=[0-9a-f]*$(printf delay-200 | od -An -tx1 | tr -d ' \n')[0-9a-f]*\$" "$(echo "$out" | tail -1)"
check "... all within ~1 upstream delay (${el} ms)" test "$el" -lt 1500
out=$(rq -T -w 100 delay-250.gone.test)
sleep 0.7
out=$(rq -w 1000 host2.test)
expect_match "a TCP client that left before its forwarded answer: sedns carries on" '^REPLY .* rcode=0 .* an=1 ' "$out"
out=$(rq -T -H -w 2000 api.stripe.com)
expect_match "TCP client that half-closes after its query: local answer still sent" '^REPLY .* rcode=0 .* an=1 ' "$out"
got=0
for i in 1 2 3 4; do
	out=$(rq -T -H -w 1000 "delay-100.h$i.half.test")
	[[ "$out" =~ ^REPLY\ .*\ rcode=0\ .*\ an=1\  ]] && got=$((got + 1))
done
expect_eq "TCP clients that half-close after their query: forwarded answers (100 ms upstream delay) still sent (4 tries)" 4 "$got"
check "sedns (a) is still running" kill -0 "$SEDNS_PID"
stop_pid "$SEDNS_PID"

# --- B: a misbehaving first upstream, a good second one ------------------------------
sd b --upstream "127.0.0.1:$UP1" --upstream "127.0.0.1:$UP2" --upstream-timeout 300ms
for n in wrongq.b1.test wrongidonly.b2.test garbage.b3.test wrongq.b4.test; do
	out=$(D "$n" A)
	expect_match "$n: failed over, client gets the good upstream's answer" $'\n'"${n//./\\.}"'\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.[0-9]+' "$out"
	check "$n: never the spoofed data" test -z "$(echo "$out" | grep 203.0.113.66)"
done
check "the good upstream saw the failed-over queries" grep -q 'wrongq.b1.test' "$T_TMP/up2.log"
stop_pid "$SEDNS_PID"

# --- C: spoofed replies from a wrong source port --------------------------------
sd c --upstream "127.0.0.1:$SPOOF" --upstream-timeout 1s
bad=0
for i in $(seq 1 8); do
	out=$(D +short "host$i.spoof.test" A)
	if ! [[ "$out" =~ ^192\.0\.2\.[0-9]+$ ]]; then bad=$((bad + 1)); echo "# spoof $i: $out"; fi
done
expect_eq "8 queries, each racing a right-ID reply from another port: all get the real answer" 0 "$bad"
expect_eq "the spoofing upstream saw the 8 queries" 8 "$(grep -c 'spoof.test' "$T_TMP/spoof.log")"
stop_pid "$SEDNS_PID"

# --- D: every upstream dead ------------------------------------------------------
sd d --upstream "127.0.0.1:$DROP1" --upstream "127.0.0.1:$DROP2" --upstream-timeout 300ms
t0=$(date +%s%N)
out=$(D host1.test A)
el=$(ms_since "$t0")
expect_match "two silent upstreams: SERVFAIL" 'status: SERVFAIL' "$out"
check "... within ~2x the upstream timeout (${el} ms, want 500..2000)" test "$el" -ge 500 -a "$el" -lt 2000
check "both silent upstreams were asked" grep -q host1.test "$T_TMP/drop2.log"
out=$(D +tcp host2.test A)
expect_match "two silent upstreams, TCP client: SERVFAIL" 'status: SERVFAIL' "$out"
stop_pid "$SEDNS_PID"

sd e --upstream "127.0.0.1:$CLOSED1" --upstream "127.0.0.1:$CLOSED2" --upstream-timeout 300ms
t0=$(date +%s%N)
out=$(D host1.test A)
el=$(ms_since "$t0")
expect_match "two closed upstream ports: SERVFAIL" 'status: SERVFAIL' "$out"
check "... within 2 s (${el} ms)" test "$el" -lt 2000
stop_pid "$SEDNS_PID"

# --- F: one dead of two ----------------------------------------------------------
sd f --upstream "127.0.0.1:$DROP1" --upstream "127.0.0.1:$UP1" --upstream-timeout 300ms
t0=$(date +%s%N)
out=$(D +short host1.test A)
el=$(ms_since "$t0")
expect_match "first upstream silent: the second answers" '^192\.0\.2\.[0-9]+$' "$out"
check "... after about one timeout (${el} ms)" test "$el" -lt 1500
: >"$T_TMP/drop1.log"
slow=0
for i in $(seq 1 5); do
	t0=$(date +%s%N)
	out=$(rq -w 2000 "host$i.f.test")
	el=$(ms_since "$t0")
	if ! [[ "$out" =~ ^REPLY\ .*\ rcode=0\ .*\ an=1\  ]] || [ "$el" -ge 200 ]; then slow=$((slow + 1)); echo "# query $i: ${el} ms '${out:0:80}'"; fi
done
expect_eq "the dead upstream is not asked again for the next 5 queries" "" "$(grep 'f\.test' "$T_TMP/drop1.log")"
expect_eq "once the first is known dead, 5 queries each answer in < 200 ms" 0 "$slow"
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 30); do grep -q reloaded "$T_TMP/f.log" && break; sleep 0.1; done
check "SIGHUP reload done" grep -q reloaded "$T_TMP/f.log"
: >"$T_TMP/drop1.log"
t0=$(date +%s%N)
out=$(rq -w 2000 host9.f.test)
el=$(ms_since "$t0")
expect_match "after a reload with the same upstreams: answered" '^REPLY .* rcode=0 .* an=1 ' "$out"
expect_eq "... and the upstream known dead is not asked first again (health kept across reload)" "" "$(grep 'f\.test' "$T_TMP/drop1.log")"
check "... quickly (${el} ms)" test "$el" -lt 200
stop_pid "$SEDNS_PID"

# --- F2: upstream list changed while a query is in flight -------------------------
# The in-flight query times out on the silent upstream after the reload: the
# blame must land on that upstream, not on whichever now has its old index.
MP=$(free_port)
printf 'upstreams: ["127.0.0.1:%s"]\nupstream_timeout: 1500ms\nmetrics: "127.0.0.1:%s"\n' "$DROP1" "$MP" > "$T_TMP/f2.yaml"
sd f2 -c "$T_TMP/f2.yaml"
rq -w 4000 "late.f2.test" > "$T_TMP/f2.out" &
F2Q=$!
sleep 0.3
printf 'upstreams: ["127.0.0.1:%s", "127.0.0.1:%s"]\nupstream_timeout: 1500ms\nmetrics: "127.0.0.1:%s"\n' "$UP1" "$DROP1" "$MP" > "$T_TMP/f2.yaml"
kill -HUP "$SEDNS_PID"
wait "$F2Q"
m=$(curl -s "127.0.0.1:$MP/metrics")
expect_match "after a reload mid-query, the silent upstream takes the timeout" "sedns_upstream_timeouts_total\{upstream=\"127.0.0.1:$DROP1\",zone=\"\.\"\} 1" "$m"
expect_match "... and the newly first upstream is not blamed" "sedns_upstream_failures_total\{upstream=\"127.0.0.1:$UP1\",zone=\"\.\"\} 0" "$m"
expect_match "... and stays healthy" "sedns_upstream_healthy\{upstream=\"127.0.0.1:$UP1\",zone=\"\.\"\} 1" "$m"
stop_pid "$SEDNS_PID"

# --- G: pending cap -------------------------------------------------------------
sd g --upstream "127.0.0.1:$UP1" --upstream-timeout 3s --max-pending 2
pids=()
for i in $(seq 1 10); do
	(
		s=$(date +%s%N)
		o=$(dig @127.0.0.1 -p "$PORT" +time=5 +tries=1 "drop.p$i.test" A 2>&1)
		echo "$(ms_since "$s") $(echo "$o" | grep -o 'status: [A-Z]*' | head -1)" >"$T_TMP/pc.$i"
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
quick=$(cat "$T_TMP"/pc.* | awk '$1 < 1000 && $3 == "SERVFAIL"' | wc -l)
check "--max-pending 2, 10 concurrent never-answered queries: >= 5 get SERVFAIL at once ($quick)" test "$quick" -ge 5
check "... and at most 8 ($quick)" test "$quick" -le 8
out=$(D +short host1.test A)
expect_match "after the cap episode, queries are forwarded again" '^192\.0\.2\.[0-9]+$' "$out"
stop_pid "$SEDNS_PID"

# --- G2: one TCP client cannot take every forward slot ------------------------------
# (the per-client quota is lifted here: this is about the TCP connection's cap)
sd g2 --upstream "127.0.0.1:$UP1" --upstream-timeout 3s --max-pending 100 --max-pending-per-client 200
names=(); for i in $(seq 1 200); do names+=("delay-500.t$i.flood.test"); done
rq -T -w 10000 "${names[@]}" > "$T_TMP/flood.out" &
FLOOD=$!; T_PIDS+=("$FLOOD")
sleep 0.2
out=$(D host3.test A)
expect_match "200 slow queries pipelined on one TCP connection (pending cap 100): another client is still served" 'status: NOERROR' "$out"
wait "$FLOOD"
expect_eq "... and the TCP client still gets all 200 answers, in batches" 200 "$(grep -c '^REPLY .* rcode=0 ' "$T_TMP/flood.out")"
stop_pid "$SEDNS_PID"

# --- G3: one client cannot starve the others' forwarding (per-client quota) -----------
MP3=$(free_port)
sd g3 --upstream "127.0.0.1:$UP1" --upstream-timeout 3s --max-pending 64 --max-pending-per-client 16 \
	--metrics "127.0.0.1:$MP3"
for i in $(seq 1 60); do echo "drop.q$i.test A"; done >"$T_TMP/q3.txt"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$T_TMP/q3.txt" -n 1 -c 1 -q 60 -t 4 >"$T_TMP/q3.out" 2>&1 &
Q3=$!; T_PIDS+=("$Q3")
sleep 0.5
ok2=0
for i in $(seq 1 5); do
	dig @127.0.0.1 -b 127.0.0.2 -p "$PORT" +time=2 +tries=1 +short "host$i.test" A | grep -q '^192\.0\.2\.' && ok2=$((ok2 + 1))
done
expect_eq "60 never-answered queries from 127.0.0.1 (quota 16): 127.0.0.2 is still served, 5 of 5" 5 "$ok2"
wait "$Q3"
expect_match "... and the flooding client got SERVFAIL beyond its share" 'SERVFAIL [1-9]' "$(cat "$T_TMP/q3.out")"
expect_match "... counted" 'sedns_forward_quota_hits_total [1-9]' "$(curl -s "127.0.0.1:$MP3/metrics")"
stop_pid "$SEDNS_PID"

# --- H: wildcard listen address: replies leave from the address queried ----------
up_h=0
for try in 1 2 3; do
	PORT=$(free_port)
	"$SEDNS" serve --listen "0.0.0.0:$PORT" --state-dir "$T_TMP/state-h" --serviceentries "$SE" \
		--upstream "127.0.0.1:$UP1" >"$T_TMP/h.log" 2>&1 &
	SEDNS_PID=$!
	T_PIDS+=("$SEDNS_PID")
	if wait_dns 127.0.0.2 "$PORT"; then up_h=1; break; fi
	stop_pid "$SEDNS_PID"
done
if [ "$up_h" = 1 ]; then
	out=$(dig @127.0.0.2 -p "$PORT" +time=2 +tries=1 api.stripe.com A 2>&1)
	expect_match "listen 0.0.0.0, query to 127.0.0.2: local answer comes from 127.0.0.2" 'status: NOERROR.*SERVER: 127\.0\.0\.2#' "$(echo "$out" | tr '\n' ' ')"
	out=$(dig @127.0.0.2 -p "$PORT" +time=2 +tries=1 host1.test A 2>&1)
	expect_match "listen 0.0.0.0, query to 127.0.0.2: forwarded answer comes from 127.0.0.2" 'status: NOERROR.*SERVER: 127\.0\.0\.2#' "$(echo "$out" | tr '\n' ' ')"
	check "... no reply from an unexpected source" test -z "$(echo "$out" | grep -i 'unexpected source')"
else
	notok "sedns listening on 0.0.0.0:$PORT answers on 127.0.0.2 ($(tail -3 "$T_TMP/h.log"))"
fi
stop_pid "$SEDNS_PID"

# --- I: TCP connection cap --------------------------------------------------------
sd i --upstream "127.0.0.1:$UP1" --tcp-max-connections 2 --tcp-idle-timeout 1s
rq -T -I -w 5000 >"$T_TMP/idle1" &
i1=$!
rq -T -I -w 5000 >"$T_TMP/idle2" &
i2=$!
sleep 0.3
t0=$(date +%s%N)
out=$(dig @127.0.0.1 -p "$PORT" +tcp +time=4 +tries=1 api.stripe.com A 2>&1)
el=$(ms_since "$t0")
wait "$i1" "$i2"
expect_match "a third TCP client at --tcp-max-connections 2 is served once an idle one is closed" 'status: NOERROR' "$out"
check "... after waiting for the idle timeout (${el} ms, want 400..3000)" test "$el" -ge 400 -a "$el" -lt 3000
expect_match "the idle connections were closed by the server" '^CLOSED' "$(cat "$T_TMP/idle1" "$T_TMP/idle2" | sort -u)"
out=$(dig @127.0.0.1 -p "$PORT" +tcp +time=2 +tries=1 +short host1.test A 2>&1)
expect_match "after the cap episode TCP queries are answered at once" '^192\.0\.2\.[0-9]+$' "$out"
stop_pid "$SEDNS_PID"

# --- J: a short load run ---------------------------------------------------------
if command -v dnsperf >/dev/null; then
	sd j --upstream "127.0.0.1:$UP1" --upstream-timeout 1s
	for i in $(seq 1 100); do
		echo "host$i.test A"; echo "api.stripe.com A"; echo "nope$i.invalid A"; echo "big.test A"
		echo "api.stripe.com.ns1.svc.cluster.local AAAA"
	done >"$T_TMP/perf.txt"
	out=$(dnsperf -s 127.0.0.1 -p "$PORT" -d "$T_TMP/perf.txt" -l 2 -c 4 -q 100 2>&1)
	expect_match "dnsperf 2 s, mixed local/forwarded/NXDOMAIN/big: every query completed" 'Queries lost:[[:space:]]+0 ' "$out"
	expect_match "... with the expected mix (80% NOERROR, 20% NXDOMAIN)" 'NOERROR [0-9]+ \(80\.00%\), NXDOMAIN [0-9]+ \(20\.00%\)' "$out"
	check "sedns (j) survived the load run" kill -0 "$SEDNS_PID"
	stop_pid "$SEDNS_PID"
else
	notok "dnsperf is installed (scripts/install-deps.sh)"
fi

check "the fakeupstream instances are all still running" kill -0 "$UP1_PID" "$UP2_PID" "$DROP1_PID" "$DROP2_PID" "$SPOOF_PID"

# --- own listen address as upstream --------------------------------------------
P=$(free_port)
timeout 3 "$SEDNS" serve --listen "127.0.0.1:$P" --upstream "127.0.0.1:$P" --state-dir "$T_TMP/state-self" \
	--serviceentries "$SE" >"$T_TMP/self.log" 2>&1
rc=$?
expect_match "own listen address as upstream is logged clearly" 'own listen address' "$(cat "$T_TMP/self.log")"
expect_eq "explicit --upstream equal to --listen is a config error (exit 2)" 2 "$rc"

finish
