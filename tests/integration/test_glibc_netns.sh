#!/usr/bin/env bash
# glibc's resolver in a pod-like network namespace (Kubernetes resolv.conf:
# search path, ndots:5) querying sedns over a veth pair: ServiceEntry names
# and all their search expansions are answered locally, other names go
# through the upstream. Needs root (ip netns); skips only if that fails.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

source "$(dirname "$0")/podns.sh"

N=$(( $$ % 10000 ))
podns_init "sedns-pod$N" "svh$N" "svp$N" "198.19.$(( $$ % 250 + 1 ))"
ok "network namespace $NS created"

fu_build || { notok "fakeupstream builds"; finish; }

podns_veth
ok "veth pair: host $HOST_IP, pod $POD_IP"

mkdir -p "/etc/netns/$NS"
cat >"/etc/netns/$NS/resolv.conf" <<EOF
nameserver $HOST_IP
search ns1.svc.cluster.local svc.cluster.local cluster.local
options ndots:5 timeout:2 attempts:1
EOF
check "the pod sees its own resolv.conf" bash -c "ip netns exec '$NS' cat /etc/resolv.conf | grep -q 'nameserver $HOST_IP'"

UPORT=$(free_port)
fu_start "$UPORT" -l "$T_TMP/up.log" || { notok "fakeupstream starts"; finish; }

PORT=53
SEDNS_ADDR=$HOST_IP
if ! start_sedns "$T_TMP/sedns.log" --listen "$HOST_IP:53" --allow-from 198.18.0.0/15 --allow-from 127.0.0.0/8 \
	--state-dir "$T_TMP/state" --serviceentries tests/integration/data/se-pod --upstream "127.0.0.1:$UPORT"; then
	notok "sedns listens on $HOST_IP:53 ($(tail -3 "$T_TMP/sedns.log"))"
	finish
fi
ok "sedns listens on $HOST_IP:53"

VIP=$(dig @"$HOST_IP" +time=2 +tries=1 +short api.stripe.com A)
expect_match "sedns gives api.stripe.com a VIP" '^240\.240\.[0-9]+\.[0-9]+$' "$VIP"
[ -n "$VIP" ] || VIP=no-vip
: >"$T_TMP/up.log"

out=$(ip netns exec "$NS" timeout 10 getent ahostsv4 api.stripe.com); rc=$?
expect_eq "getent ahostsv4 api.stripe.com in the pod succeeds" 0 "$rc"
expect_eq "... and returns the VIP" "$VIP" "$(echo "$out" | awk 'NR == 1 {print $1}')"
expect_match "... with api.stripe.com as a name" 'api\.stripe\.com' "$out"
out=$(ip netns exec "$NS" timeout 10 getent hosts api.stripe.com); rc=$?
expect_match "getent hosts api.stripe.com (gethostbyname path) returns the VIP" "^${VIP//./\\.}[[:space:]]" "$out"
out=$(ip netns exec "$NS" timeout 10 getent ahostsv4 API.Stripe.COM)
expect_eq "mixed-case name resolves to the VIP too" "$VIP" "$(echo "$out" | awk 'NR == 1 {print $1}')"
sleep 0.2
# AAAA on the first expansion is NODATA (Istio's answer), so glibc's
# gethostbyname2(AF_INET6) walks the search list; api.stripe.com.svc.cluster.local
# is a name of Kubernetes namespace "com" (tenancy: never ours to answer) and
# goes to the zone's upstream, as it would to kube-dns. Every other form is local.
expect_eq "the upstream received no query for api.stripe.com or its own expansions" "" \
	"$(grep -i 'stripe' "$T_TMP/up.log" | grep -viE ' api\.stripe\.com\.svc\.cluster\.local ')"

out=$(ip netns exec "$NS" timeout 10 getent ahostsv4 host1.test); rc=$?
expect_eq "getent ahostsv4 host1.test (not a ServiceEntry) succeeds" 0 "$rc"
expect_match "... through the upstream (192.0.2.x)" '^192\.0\.2\.[0-9]+[[:space:]]' "$out"
check "the upstream saw host1.test" grep -q '^udp host1\.test 1$' "$T_TMP/up.log"
check "the upstream saw the search expansions of host1.test (NXDOMAIN there)" \
	grep -q '^udp host1\.test\.ns1\.svc\.cluster\.local 1$' "$T_TMP/up.log"
out=$(ip netns exec "$NS" timeout 10 getent ahostsv4 nosuch.invalid); rc=$?
expect_eq "a name nobody knows: getent exits 2 (not found), not a timeout" 2 "$rc"

out=$(ip netns exec "$NS" dig @"$HOST_IP" +time=2 +tries=1 api.stripe.com A)
expect_match "dig from the pod (allowed by 198.18.0.0/15): NOERROR" 'status: NOERROR' "$out"
# a second pod-side address outside the allowed prefixes gets REFUSED
ip netns exec "$NS" ip addr add 192.0.2.200/32 dev "$VP" 2>/dev/null
ip route add 192.0.2.200/32 dev "$VH" 2>/dev/null   # goes away with the veth
out=$(ip netns exec "$NS" dig @"$HOST_IP" -b 192.0.2.200 +time=2 +tries=1 api.stripe.com A 2>&1)
expect_match "a pod-side source outside --allow-from gets REFUSED" 'status: REFUSED' "$out"
check "sedns is still running" kill -0 "$SEDNS_PID"

stop_pid "$SEDNS_PID"
podns_cleanup
NS_MADE=0
check "namespace removed" bash -c "! ip netns list | grep -qw '$NS'"
check "veth removed" bash -c "! ip link show '$VH' >/dev/null 2>&1"
check "/etc/netns/$NS removed" test ! -e "/etc/netns/$NS"
finish
