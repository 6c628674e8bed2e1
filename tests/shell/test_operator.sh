#!/usr/bin/env bash
# What an operator sees (issue 13): search expansions of a host with no
# address of the asked family, log timestamps and journald priorities,
# VIP pool exhaustion in the summary, the metrics and `sedns vips`, and
# refused clients logged once per prefix.
source "$(dirname "$0")/../lib.sh"
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

finish
