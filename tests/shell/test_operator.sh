#!/usr/bin/env bash
# What an operator sees (issue 13): search expansions of a host with no
# address of the asked family, log timestamps and journald priorities,
# VIP pool exhaustion in the summary, the metrics and `sedns vips`, and
# refused clients logged once per prefix.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../integration/fu.sh"
cd "$ROOT"

SE="$T_TMP/se"; mkdir -p "$SE"
cp config/serviceentries/*.yaml "$SE/"

# --- search expansion, family missing: NODATA + SOA, no lone CNAME ------------
PORT=$(free_port)
start_sedns "$T_TMP/s12.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state12" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms
out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 +norec api.stripe.com.ns1.svc.cluster.local AAAA)
expect_match "AAAA on a search expansion of a v4-only host: NOERROR" 'status: NOERROR' "$out"
expect_match "... with no answer record and the SOA in authority" 'ANSWER: 0, AUTHORITY: 1' "$out"
check "... and no lone CNAME" bash -c "! grep -q CNAME <<<\"\$1\"" _ "$out"
out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 +norec +noall +answer api.stripe.com.ns1.svc.cluster.local A)
expect_match "A on the same expansion still answers CNAME then A" $'CNAME[[:space:]]+api\\.stripe\\.com\\.\napi\\.stripe\\.com\\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+240\\.240\\.' "$out"
out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 +norec api.stripe.com.ns1.svc.cluster.local HTTPS)
expect_match "HTTPS on an expansion: NODATA with the SOA" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(tr '\n' ' ' <<<"$out")"
check "... and no CNAME" bash -c "! grep -q CNAME <<<\"\$1\"" _ "$out"
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null

# --- log lines: RFC 3339 stamps, or journald priorities; debug detail --------
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
STAMP="^$TS (error|warn|info|debug)[: ]"
echo 'not: [valid' >"$SE/broken.yaml"
PORT=$(free_port)
env -u JOURNAL_STREAM "$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state9" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms --log-level debug >"$T_TMP/s9.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 50); do grep -q ' reloaded ' "$T_TMP/s9.log" && grep -q 'rules: rendered' "$T_TMP/s9.log" && break; sleep 0.1; done
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
log9=$(cat "$T_TMP/s9.log")
expect_match "no JOURNAL_STREAM: the serving line starts with an RFC 3339 UTC stamp" "^$TS info sedns [^ ]+ serving " "$(grep ' serving ' <<<"$log9")"
expect_eq "... and so does every line" "" "$(grep -vE "$STAMP" <<<"$log9")"
now=$(date -u +%s); ts=$(head -1 <<<"$log9" | cut -d' ' -f1)
check "... the stamp is the current time" test $(( now - $(date -u -d "$ts" +%s) )) -lt 60
expect_match "a diagnostic is a line of its level after the stamp (one form for every line)" "$TS error $SE/broken.yaml:[0-9]+:[0-9]+: " "$log9"
expect_match "log_level debug: the reload says what it re-reads" ' debug reload: start \(' "$log9"
expect_match "... what it read" ' debug load: read paths=1 files=[0-9]+ entries=[0-9]+' "$log9"
expect_match "... what the VIP sync did" ' debug load: VIP sync hosts=[0-9]+ unchanged=(yes|no) allocated=[0-9]+ released=[0-9]+ exhausted=0 ' "$log9"
expect_match "... and what each rule sync rendered" ' debug rules: rendered bytes=[0-9]+ ' "$log9"
start_sedns "$T_TMP/s9i.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state9" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms
kill -HUP "$SEDNS_PID"; sleep 0.5
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
expect_eq "log_level info: no debug lines" 0 "$(grep -c ' debug ' "$T_TMP/s9i.log")"

# stderr is the journal when JOURNAL_STREAM names its device:inode
: >"$T_TMP/j.log"
JS=$(stat -c '%d:%i' "$T_TMP/j.log")
JOURNAL_STREAM=$JS "$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state9" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms 2>>"$T_TMP/j.log" &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
logj=$(cat "$T_TMP/j.log")
expect_match "JOURNAL_STREAM is stderr: <6> before info, no stamp" '^<6>info sedns [^ ]+ serving ' "$(grep ' serving ' <<<"$logj")"
expect_match "... <3> before an error" "^<3>error $SE/broken.yaml:[0-9]+:[0-9]+: " "$(grep 'broken.yaml' <<<"$logj")"
expect_match "... <4> before a warning" '^<4>warn ' "$(grep '^<4>' <<<"$logj" | head -1)"
expect_eq "... every line has a priority" "" "$(grep -vE '^<[3467]>' <<<"$logj")"
JOURNAL_STREAM=1:2 "$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state9" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms 2>"$T_TMP/j2.log" &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 $PORT
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
expect_match "JOURNAL_STREAM naming another file (inherited): stamps" "$STAMP" "$(head -1 "$T_TMP/j2.log")"
rm -f "$SE/broken.yaml"

# --- clients outside allow_from: a warning per prefix, then counts; metrics ----
PORT=$(free_port); MPORT=$(free_port)
"$SEDNS" serve --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state6" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms --allow-from 10.0.0.0/8 --allow-from 192.168.0.0/16 \
	--log-refused-period 2s --metrics 127.0.0.1:$MPORT >"$T_TMP/s6.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
for _ in $(seq 1 50); do grep -q ' serving ' "$T_TMP/s6.log" && break; sleep 0.1; done
t0=$(date +%s%N)
out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 api.stripe.com)
expect_match "a client outside allow_from gets REFUSED" 'status: REFUSED' "$out"
for i in 1 2; do dig @127.0.0.1 -p $PORT +time=2 +tries=1 api.stripe.com >/dev/null; done
for i in 1 2; do dig -b 127.0.0.2 @127.0.0.1 -p $PORT +time=2 +tries=1 api.stripe.com >/dev/null; done
dig @127.0.0.1 -p $PORT +time=1 +tries=1 +tcp api.stripe.com >/dev/null
el=$(ms_since "$t0" 2>/dev/null || echo 0)
first=$(grep 'refused a query' "$T_TMP/s6.log")
expect_match "the first refusal is logged at once, with the client, allow_from and its /24" \
	'warn refused a query from 127\.0\.0\.1: not in allow_from=10\.0\.0\.0/8,192\.168\.0\.0/16; more from 127\.0\.0\.0/24 are counted and logged every 2s \(reason=allow_from\)' "$first"
expect_eq "... once for the prefix (5 queries from 127.0.0.1 and .2, in ${el} ms)" 1 "$(grep -c 'refused a query' <<<"$first")"
expect_match "a refused TCP connection is its own reason" 'refused a TCP connection from 127\.0\.0\.1: .*reason=allow_from_tcp' "$(cat "$T_TMP/s6.log")"
counted() { grep -o 'refused [0-9]* queries from 127\.0\.0\.0/24 ' "$T_TMP/s6.log" | awk '{s += $2} END {print s + 0}'; }
for _ in $(seq 1 50); do [ "$(counted)" -ge 4 ] && break; sleep 0.1; done
expect_match "... then a count per prefix and period" \
	'warn refused [1-4] queries from 127\.0\.0\.0/24 in the last 2s: not in allow_from \([2-5] since it was first seen; reason=allow_from\)' \
	"$(cat "$T_TMP/s6.log")"
expect_eq "... the counts add up to the 4 after the first" 4 "$(counted)"
m=$(curl -s 127.0.0.1:$MPORT/metrics)
expect_match "metric by reason: queries" 'sedns_refused_total\{reason="allow_from"\} 5' "$m"
expect_match "metric by reason: TCP connections" 'sedns_refused_total\{reason="allow_from_tcp"\} [1-9]' "$m"
expect_match "metric: prefixes tracked" 'sedns_refused_prefixes 2' "$m"
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null

# --- VIP pool exhausted: an error in the summary, a metric, sedns vips -------
PORT=$(free_port); MPORT=$(free_port)
start_sedns "$T_TMP/s5.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state5" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms --vip-pool 240.240.0.0/30 --metrics 127.0.0.1:$MPORT
# 6 hosts want a VIP, the /30 has 2
expect_match "the load summary counts the 4 hosts without a VIP as errors" ' serving .* vips=2 errors=4 ' "$(cat "$T_TMP/s5.log")"
expect_eq "... with one error line for the load, not one per host" 1 "$(grep -c 'exhausted' "$T_TMP/s5.log")"
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 30); do grep -q ' reloaded ' "$T_TMP/s5.log" && break; sleep 0.1; done
expect_match "a reload's summary says so too" ' reloaded .* vips=2 errors=4 ' "$(cat "$T_TMP/s5.log")"
expect_eq "... again one line" 2 "$(grep -c 'exhausted' "$T_TMP/s5.log")"
expect_match "metric: hosts without a VIP" 'sedns_vip_exhausted 4' "$(curl -s 127.0.0.1:$MPORT/metrics)"
out=$("$SEDNS" vips --state-dir "$T_TMP/state5" 2>"$T_TMP/vips.err")
expect_eq "sedns vips (daemon running) lists the hosts with no VIP" \
	"es.example.com legacy-monitoring.internal legacy-session.internal orders-db.abc123.us-east-1.rds.amazonaws.com" \
	"$(awk '$3 == "no-vip" {print $1}' <<<"$out" | sort | xargs)"
expect_eq "... beside the 2 that have one" 2 "$(awk '$3 == "active"' <<<"$out" | wc -l)"
expect_match "... and says why on stderr" '4 host\(s\) got no VIP at the last sync: the pool \(2 addresses\) is full' "$(cat "$T_TMP/vips.err")"
j=$("$SEDNS" vips --state-dir "$T_TMP/state5" --json 2>/dev/null)
expect_eq "sedns vips --json: state no-vip, vip null" "4 4" \
	"$(jq '[.[] | select(.state == "no-vip")] | length' <<<"$j") $(jq '[.[] | select(.state == "no-vip" and .vip == null)] | length' <<<"$j")"
# a host that lost its place to the full pool is forwarded, not answered with nothing
out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 +short es.example.com)
check "a host with no VIP gets no VIP answer (forwarded)" bash -c "! grep -q '^240\.240\.' <<<'$out'"
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
# room again (a wider pool needs --reallocate): the record goes with the next sync
start_sedns "$T_TMP/s5b.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state5" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --vip-pool 240.240.0.0/28 --reallocate
kill "$SEDNS_PID"; wait "$SEDNS_PID" 2>/dev/null
expect_eq "once every host has a VIP, sedns vips lists none without" 0 "$("$SEDNS" vips --state-dir "$T_TMP/state5" 2>&1 | grep -c 'no-vip')"

finish
