#!/usr/bin/env bash
# IPv6: listening on ::1 (UDP and TCP), the optional IPv6 VIP pool (AAAA and
# ip6.arpa PTR), and IPv6 clients against allow_from.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
if ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
	ok "# SKIP no IPv6 loopback"; finish
fi
PORT=$(free_port)
SEDNS_ADDR=::1 start_sedns "$T_TMP/s.log" --listen "[::1]:$PORT" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/st" \
	--serviceentries config/serviceentries --upstream 127.0.0.1:9 --upstream-timeout 100ms --vip-pool6 on
v4=$(dig @::1 -p $PORT +short api.stripe.com)
v6=$(dig @::1 -p $PORT +short AAAA api.stripe.com)
expect_match "A over UDP on ::1" '^240\.240\.' "$v4"
expect_eq "A over TCP on ::1" "$v4" "$(dig @::1 -p $PORT +short +tcp api.stripe.com)"
expect_match "AAAA from the IPv6 pool 2001:2::/48" '^2001:2:0?:' "$v6"
expect_eq "PTR of the IPv6 VIP (ip6.arpa)" "api.stripe.com." "$(dig @::1 -p $PORT +short -x "$v6")"
expect_eq "the same name answers the same VIPs on 127.0.0.1" "$v4" "$(dig @127.0.0.1 -p $PORT +short api.stripe.com)"
expect_match "vips lists both addresses" "api.stripe.com +$v4 +active .* +$v6" "$("$SEDNS" vips --state-dir "$T_TMP/st")"
stop_pid "$SEDNS_PID"
SEDNS_ADDR=::1 start_sedns "$T_TMP/s2.log" --listen "[::1]:$PORT" --state-dir "$T_TMP/st" \
	--serviceentries config/serviceentries --upstream 127.0.0.1:9 --upstream-timeout 100ms --vip-pool6 on \
	--allow-from 127.0.0.0/8
expect_match "an IPv6 client outside allow_from is REFUSED" 'status: REFUSED' "$(dig @::1 -p $PORT +time=2 +tries=1 api.stripe.com)"
stop_pid "$SEDNS_PID"
finish
