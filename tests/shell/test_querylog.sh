#!/usr/bin/env bash
# The query log (log_queries): one line per query with the time, the client,
# the name, type and class names, the rcode the client was sent (not the
# upstream's), where the answer came from and the latency; log_format json
# lines parsed by jq and python3; log_queries_rate caps lines and counts the
# rest.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../integration/fu.sh"
cd "$ROOT"

fu_build || { notok "fakeupstream builds"; finish; }
UPORT=$(free_port)
fu_start "$UPORT" -l "$T_TMP/up.log" || { notok "fakeupstream starts"; finish; }
SE="$T_TMP/se"; mkdir -p "$SE"
cp config/serviceentries/*.yaml "$SE/"
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

queries() {
	local D=(dig @127.0.0.1 -p "$PORT" +time=3 +tries=1)
	"${D[@]}" api.stripe.com A >/dev/null            # local
	"${D[@]}" nothing.example A >/dev/null           # upstream NXDOMAIN
	"${D[@]}" servfail.test A >/dev/null             # upstream SERVFAIL
	"${D[@]}" host1.test A >/dev/null                # upstream NOERROR
	"${D[@]}" host1.test A >/dev/null                # ... then from the cache
	"${D[@]}" +tcp host2.test TYPE65534 >/dev/null   # unknown type, TCP
	"${D[@]}" api.stripe.com MX >/dev/null           # owned name: NXDOMAIN -> NODATA
	"${D[@]}" CH TXT version.bind >/dev/null         # class CH
}

# --- text ---------------------------------------------------------------------------
PORT=$(free_port)
env -u JOURNAL_STREAM "$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream 127.0.0.1:$UPORT --log-queries >"$T_TMP/t.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT || notok "sedns starts"
queries
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
q=$(grep ' query client=' "$T_TMP/t.log")
line() { grep -E "name=$1 type=$2 " <<<"$q"; }
expect_match "a local answer: stamp, client, names for type and class, source, rcode, latency" \
	"^$TS info query client=127\.0\.0\.1 proto=udp name=api\.stripe\.com type=A class=IN action=local rcode=NOERROR answers=1 latency_us=[0-9]+$" \
	"$(line 'api\.stripe\.com' A)"
expect_match "an upstream NXDOMAIN is logged NXDOMAIN, with the zone and the upstream that answered" \
	"action=forward zone=\. upstream=127\.0\.0\.1:$UPORT rcode=NXDOMAIN answers=0 latency_us=[0-9]+$" "$(line 'nothing\.example' A)"
expect_match "an upstream SERVFAIL is logged SERVFAIL" "upstream=127\.0\.0\.1:$UPORT rcode=SERVFAIL " "$(line 'servfail\.test' A)"
expect_match "a cached answer says cache and the TTL left" 'action=cache ttl_left=[0-9]+ rcode=NOERROR answers=1 ' \
	"$(line 'host1\.test' A | tail -1)"
expect_match "an unknown type is TYPE65534 (RFC 3597), over TCP" 'proto=tcp name=host2\.test type=TYPE65534 class=IN action=forward' \
	"$(line 'host2\.test' TYPE65534)"
expect_match "the owned name's upstream NXDOMAIN: the client got NOERROR, and the log says so" \
	'type=MX class=IN action=forward .* rcode=NOERROR answers=0 note=was_nxdomain ' "$(line 'api\.stripe\.com' MX)"
expect_match "class CH by name" 'name=version\.bind type=TXT class=CH action=local rcode=NOERROR' "$q"
expect_eq "one line per query (version.bind aside: wait_dns asks it too)" 7 "$(grep -vc 'name=version\.bind' <<<"$q")"

# --- json ----------------------------------------------------------------------------
"$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream 127.0.0.1:$UPORT --log-queries --log-format json >"$T_TMP/j.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT || notok "sedns starts (json)"
queries
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
check "log_format json: every line parses with jq" bash -c 'jq -e . "$1" >/dev/null' _ "$T_TMP/j.log"
n=0; bad=0
while IFS= read -r l; do
	n=$((n + 1))
	/usr/bin/python3 -m json.tool <<<"$l" >/dev/null 2>&1 || bad=$((bad + 1))
done <"$T_TMP/j.log"
check "... and with python3 -m json.tool, line by line ($n lines)" test "$bad" -eq 0 -a "$n" -gt 8
jqq() { jq -r "select(.msg == \"query\" and $1) | $2" "$T_TMP/j.log"; }
expect_eq "the NXDOMAIN line's fields" "forward . 127.0.0.1:$UPORT NXDOMAIN A IN udp 127.0.0.1" \
	"$(jqq '.name == "nothing.example"' '"\(.action) \(.zone) \(.upstream) \(.rcode) \(.type) \(.class) \(.proto) \(.client)"')"
expect_eq "numbers are JSON numbers (latency_us, answers, ttl_left)" "number number number" \
	"$(jqq '.action == "cache"' '"\(.latency_us|type) \(.answers|type) \(.ttl_left|type)"')"
expect_match "ts is RFC 3339 and level is info" "^$TS info$" "$(jqq '.name == "api.stripe.com" and .type == "A"' '"\(.ts) \(.level)"')"
expect_eq "the other log lines are JSON objects too (the serving line)" 1 \
	"$(jq -r 'select(.msg | test(" serving ")) | .level' "$T_TMP/j.log" | grep -c '^info$')"

# --- log_queries_rate ----------------------------------------------------------------
for i in $(seq 1 60); do echo "host$i.rate.test A"; done >"$T_TMP/batch"
"$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream 127.0.0.1:$UPORT --log-queries --log-queries-rate 5 >"$T_TMP/r.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT || notok "sedns starts (rate)"
sleep 1.1   # the window of wait_dns's probe is over
t0=$(date +%s%N)
dig @127.0.0.1 -p $PORT +time=2 +tries=1 -f "$T_TMP/batch" >/dev/null
el=$(ms_since "$t0")
sleep 1.5   # the count is reported once the window is over, with no query after it
lines=$(grep -c 'name=host[0-9]*\.rate\.test' "$T_TMP/r.log")
supp=$(grep -o 'lines over log_queries_rate not written suppressed=[0-9]*' "$T_TMP/r.log" | awk -F= '{s += $2} END {print s + 0}')
secs=$(( el / 1000 + 1 ))
check "at most 5 lines a second: $lines lines for 60 queries in ${el} ms" test "$lines" -le $((5 * (secs + 1))) -a "$lines" -ge 5
expect_eq "... and the rest counted in 'suppressed' lines (written + suppressed = 60)" 60 "$((lines + supp))"
expect_match "... which name the cap" 'suppressed=[0-9]+ seconds=[0-9]+ log_queries_rate=5' "$(cat "$T_TMP/r.log")"
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null

finish
