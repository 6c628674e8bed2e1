#!/usr/bin/env bash
# The answer cache and request coalescing, against the controllable fake
# upstream (it logs every query it gets): TTLs count down, negative answers
# follow the SOA, DO/CD separate entries, the client's case, TC for a small
# UDP client, the size bound, prefetch, serve-stale, coalescing, a
# ServiceEntry winning over a cached name, SIGUSR1 flush.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

fu_build || { notok "fakeupstream builds"; finish; }
UPORT=$(free_port)
fu_start "$UPORT" -l "$T_TMP/up.log" || { notok "fakeupstream starts"; finish; }
PORT=$(free_port)
MPORT=$(free_port)
SE=$T_TMP/se
mkdir -p "$SE"
start_sedns "$T_TMP/s.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" --reload-debounce 100ms --log-queries \
	--cache-min-ttl 1s || { notok "sedns starts ($(tail -3 "$T_TMP/s.log"))"; finish; }
D=(dig @127.0.0.1 -p "$PORT" +time=3 +tries=1)
ups() { grep -c -- "$1" "$T_TMP/up.log"; }   # queries the upstream saw for a pattern
metric() { curl -s "127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

# --- hits and TTLs ---------------------------------------------------------------
a1=$("${D[@]}" +noall +answer host1.test A)
sleep 2.1
a2=$("${D[@]}" +noall +answer host1.test A)
t1=$(awk '{print $2; exit}' <<<"$a1"); t2=$(awk '{print $2; exit}' <<<"$a2")
expect_eq "a repeated question is answered from the cache (the upstream saw it once)" 1 "$(ups ' host1\.test 1$')"
check "the TTL counts down on a hit ($t1 -> $t2)" test "$t2" -le "$((t1 - 2))" -a "$t2" -ge "$((t1 - 3))"
check "the query log says cache and the TTL left" grep -q 'name=host1.test type=A class=IN action=cache ttl_left=' "$T_TMP/s.log"
expect_match "CH TXT says the name is cached and for how long" 'cache type=A edns ttl_left=[0-9]+ rcode=NOERROR' \
	"$("${D[@]}" +short CH TXT host1.test)"

# --- negative caching per RFC 2308 ------------------------------------------------
"${D[@]}" nxsoa-3.neg.test A >/dev/null
out=$("${D[@]}" nxsoa-3.neg.test A)
expect_match "NXDOMAIN is cached" 'status: NXDOMAIN' "$out"
expect_eq "... the upstream saw it once" 1 "$(ups ' nxsoa-3\.neg\.test 1$')"
sleep 3.2
"${D[@]}" nxsoa-3.neg.test A >/dev/null
expect_eq "... and it expires after min(SOA TTL, MINIMUM) = 3 s" 2 "$(ups ' nxsoa-3\.neg\.test 1$')"

# --- DO and CD get their own entries; the client's case comes back ----------------
"${D[@]}" +dnssec do.test A >/dev/null
"${D[@]}" do.test A >/dev/null
"${D[@]}" +cdflag do.test A >/dev/null
expect_eq "DO, CD and neither are three entries (three upstream queries)" 3 "$(ups ' do\.test 1$')"
out=$("${D[@]}" +noall +answer +question DO.Test A)
expect_match "a hit keeps the client's question case" 'DO\.Test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A' "$out"
expect_eq "... (still one upstream query for the plain form)" 3 "$(ups ' do\.test 1$')"

# --- TC for a UDP client that cannot take the cached reply --------------------------
"${D[@]}" +tcp big.test A >/dev/null
out=$("${D[@]}" +bufsize=512 +ignore big.test A)
expect_match "a cached 1 KB reply to a 512-byte UDP client is truncated (TC)" 'flags: qr[a-z ]* tc' "$out"
expect_eq "... from the cache (the upstream saw big.test once, over TCP)" 1 "$(ups ' big\.test 1$')"

# --- a ServiceEntry for a cached name wins at once -----------------------------------
"${D[@]}" +short takeover.test A >/dev/null
cat >"$SE/takeover.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: takeover, namespace: t}
spec:
  hosts: [takeover.test]
  addresses: [198.18.80.1]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.80.0.1}]
YAML
sleep 0.6
expect_eq "a ServiceEntry added for a cached name answers at once" 198.18.80.1 "$("${D[@]}" +short takeover.test A)"

# --- SIGUSR1 flushes ------------------------------------------------------------------
kill -USR1 "$SEDNS_PID"; sleep 0.2
"${D[@]}" host1.test A >/dev/null
expect_eq "after SIGUSR1 the next query goes upstream again" 2 "$(ups ' host1\.test 1$')"
check "the flush is logged" grep -q 'SIGUSR1: answer cache flushed' "$T_TMP/s.log"

# --- TCP to the upstream: one connection, reused ---------------------------------------
for i in 1 2 3 4 5; do "${D[@]}" +tcp "tcpreuse$i.test" A >/dev/null; done
expect_eq "5 TCP queries went upstream over TCP" 5 "$(grep -c '^tcp tcpreuse[1-5]\.test 1$' "$T_TMP/up.log")"
expect_eq "... on one reused connection" 1 "$(ss -Htn state established "( dport = :$UPORT )" | wc -l)"
check "the upstream sockets are a small pool (UDP: at most 4 per upstream)" \
	test "$(ss -Hun "( dport = :$UPORT )" | wc -l)" -le 4

# --- coalescing: 100 concurrent identical queries, cold cache -------------------------
for i in $(seq 1 100); do echo "delay-300.same.test A"; done >"$T_TMP/same.txt"
out=$(dnsperf -s 127.0.0.1 -p "$PORT" -d "$T_TMP/same.txt" -n 1 -c 1 -q 100 -t 3 2>&1)
expect_match "100 concurrent identical queries are all answered" 'Queries completed:[[:space:]]+100 ' "$out"
expect_eq "... with one upstream query" 1 "$(ups ' delay-300\.same\.test 1$')"
check "... counted as coalesced" test "$(metric sedns_cache_coalesced_total)" -ge 99
stop_pid "$SEDNS_PID"

# --- the size bound --------------------------------------------------------------------
start_sedns "$T_TMP/b.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" --cache-size 50 || { notok "sedns starts"; finish; }
for i in $(seq 1 200); do echo "n$i.bound.test A"; done >"$T_TMP/bound.txt"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$T_TMP/bound.txt" -n 1 -c 1 -q 20 >/dev/null 2>&1
expect_eq "cache.size 50 holds at most 50 entries after 200 names" 50 "$(metric sedns_cache_entries)"
check "... evicting the rest ($(metric sedns_cache_evictions_total))" test "$(metric sedns_cache_evictions_total)" -ge 150
stop_pid "$SEDNS_PID"

# --- prefetch -----------------------------------------------------------------------------
: >"$T_TMP/up.log"
start_sedns "$T_TMP/p.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" --cache-min-ttl 0s || { notok "sedns starts"; finish; }
"${D[@]}" ttl-4.pf.test A >/dev/null          # miss
sleep 0.5; "${D[@]}" ttl-4.pf.test A >/dev/null  # hit
sleep 3.3; "${D[@]}" ttl-4.pf.test A >/dev/null  # hit in the last 10 %: refresh
sleep 0.4
expect_eq "a popular entry hit in the last 10% of its TTL is refreshed upstream" 2 "$(ups ' ttl-4\.pf\.test 1$')"
sleep 0.2
out=$("${D[@]}" +noall +answer ttl-4.pf.test A)
t=$(awk '{print $2; exit}' <<<"$out")
expect_eq "... before it expired: the client still hits, with a fresh TTL ($t)" 2 "$(ups ' ttl-4\.pf\.test 1$')"
for _ in $(seq 1 20); do [ "$(metric sedns_cache_prefetches_total)" = 1 ] && break; sleep 0.1; done
check "... counted" test "$(metric sedns_cache_prefetches_total)" -ge 1
stop_pid "$SEDNS_PID"

# --- serve-stale ----------------------------------------------------------------------------
start_sedns "$T_TMP/st.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" --cache-min-ttl 0s --cache-stale-max 3s \
	--upstream-timeout 300ms --log-queries || { notok "sedns starts"; finish; }
"${D[@]}" ttl-1.stale.test A >/dev/null
kill "$FU_PID"; wait "$FU_PID" 2>/dev/null
sleep 1.3
out=$("${D[@]}" +noall +answer +comments ttl-1.stale.test A)
expect_match "upstream dead, entry expired: a stale answer, not SERVFAIL" 'status: NOERROR' "$out"
expect_match "... with TTL 30 (RFC 8767)" 'ttl-1\.stale\.test\.[[:space:]]+30[[:space:]]+IN[[:space:]]+A' "$out"
check "... logged as stale" grep -q 'name=ttl-1.stale.test ..*note=stale' "$T_TMP/st.log"
sleep 3
out=$("${D[@]}" ttl-1.stale.test A)
expect_match "after cache.stale_max: SERVFAIL" 'status: SERVFAIL' "$out"
stop_pid "$SEDNS_PID"
finish
