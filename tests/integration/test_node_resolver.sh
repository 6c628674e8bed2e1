#!/usr/bin/env bash
# sedns as the node resolver of a pod (where NodeLocal DNSCache sits): a pod
# in a network namespace, glibc with the Kubernetes resolv.conf (ndots:5),
# resolves Kubernetes Services through a fake kube-dns (nsd serving
# cluster.local and 96.10.in-addr.arpa), external names through the node's
# resolver (fakeupstream), ServiceEntry hosts locally; each upstream sees
# only its zone. Owned names: HTTPS/SVCB NODATA, NXDOMAIN -> NODATA, an SOA
# in every local NODATA (dig, kdig, drill). FREEBIND: sedns starts on an
# address that is added to the interface afterwards.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"
DATA=$ROOT/tests/integration/data

source "$(dirname "$0")/podns.sh"
N=$(( ($$ + 17) % 10000 ))
podns_init "sedns-node$N" "snh$N" "snp$N" "198.18.$(( ($$ + 101) % 250 + 1 ))"

for t in dig kdig drill nsd getent; do
	command -v "$t" >/dev/null || { notok "$t is installed (scripts/install-deps.sh)"; finish; }
done
fu_build || { notok "fakeupstream builds"; finish; }

# --- the fake kube-dns: nsd on loopback -----------------------------------------
KPORT=$(free_port)
mkdir -p "$T_TMP/nsd"
cp "$DATA"/kube-dns/*.zone "$T_TMP/nsd/"
nsd_conf "$T_TMP/nsd" "$KPORT" cluster.local 96.10.in-addr.arpa
nsd_start "$T_TMP/nsd"
kd_up() { dig @127.0.0.1 -p "$KPORT" +time=1 +tries=1 +short kubernetes.default.svc.cluster.local | grep -q 10.96.0.1; }
for _ in $(seq 1 50); do kd_up && break; sleep 0.1; done
kd_up || { notok "fake kube-dns (nsd) answers ($(tail -3 "$T_TMP/nsd/nsd.log" "$T_TMP/nsd/stdout" 2>/dev/null))"; finish; }
ok "fake kube-dns (nsd) serves cluster.local and 96.10.in-addr.arpa on 127.0.0.1:$KPORT"

# --- the node's resolver ----------------------------------------------------------
UPORT=$(free_port)
fu_start "$UPORT" -l "$T_TMP/up.log" || { notok "fakeupstream starts"; finish; }

# --- sedns, started before its address exists (FREEBIND) -------------------------
# kube-dns comes from the environment a pod in kube-system gets
export KUBE_DNS_SERVICE_HOST=127.0.0.1 KUBE_DNS_SERVICE_PORT=$KPORT
out=$("$SEDNS" serve --listen "$HOST_IP:53" --listen-freebind false --state-dir "$T_TMP/state0" \
	--serviceentries "$DATA/se-node" --upstream "127.0.0.1:$UPORT" 2>&1)
expect_match "without FREEBIND an address not on any interface is refused, clearly" \
	"cannot listen on udp $HOST_IP port 53: Cannot assign requested address" "$out"
cat >"$T_TMP/sedns.yaml" <<EOF
listen: ["$HOST_IP:53"]
state_dir: "$T_TMP/state"
serviceentries: ["$DATA/se-node"]
upstreams: ["127.0.0.1:$UPORT"]
forward_zones:
  - zone: cluster.local
    upstreams: [kube-dns]
  - zone: in-addr.arpa
    upstreams: [kube-dns]
  - zone: ip6.arpa
    upstreams: [kube-dns]
allow_from: [198.18.0.0/15, 127.0.0.0/8]
ttl: 20
log_queries: true
rules:
  format: iptables
EOF
"$SEDNS" serve -c "$T_TMP/sedns.yaml" >"$T_TMP/sedns.log" 2>&1 &
SEDNS_PID=$!
T_PIDS+=("$SEDNS_PID")
for _ in $(seq 1 50); do grep -q ' serving ' "$T_TMP/sedns.log" && break; sleep 0.1; done
check "sedns starts on $HOST_IP:53 before the address exists (FREEBIND)" grep -q ' serving ' "$T_TMP/sedns.log"

podns_veth
mkdir -p "/etc/netns/$NS"
cat >"/etc/netns/$NS/resolv.conf" <<EOF
nameserver $HOST_IP
search ns1.svc.cluster.local svc.cluster.local cluster.local
options ndots:5 timeout:2 attempts:2
EOF
PORT=53
SEDNS_ADDR=$HOST_IP
wait_dns "$HOST_IP" 53
check "once the address is added, sedns answers on it" kill -0 "$SEDNS_PID"

podget() { ip netns exec "$NS" timeout 10 getent "$@"; }

# --- glibc in the pod --------------------------------------------------------------
out=$(podget ahostsv4 web)
expect_match "pod: 'web' (a Service of its namespace) resolves through kube-dns" '^10\.96\.5\.5[[:space:]]' "$out"
out=$(podget ahostsv4 kubernetes.default)
expect_match "pod: 'kubernetes.default' resolves through the search path" '^10\.96\.0\.1[[:space:]]' "$out"
out=$(podget hosts 10.96.0.1)
expect_match "pod: reverse lookup of a Service IP goes to kube-dns" 'kubernetes\.default\.svc\.cluster\.local' "$out"
out=$(podget ahostsv4 host1.test)
expect_match "pod: an external name resolves through the node's resolver" '^192\.0\.2\.[0-9]+[[:space:]]' "$out"
VIP=$(dig @"$HOST_IP" +time=2 +tries=1 +short api.stripe.com A)
out=$(podget ahostsv4 api.stripe.com)
expect_match "pod: a ServiceEntry host gets its VIP" "^${VIP//./\\.}[[:space:]]" "$out"
out=$(podget ahostsv4 nosuch.invalid); rc=$?
expect_eq "pod: an unknown name is 'not found' (exit 2), not a timeout" 2 "$rc"

sleep 0.3
leak=$(grep -E 'cluster\.local|in-addr\.arpa|ip6\.arpa' "$T_TMP/up.log" | head -3)
expect_eq "the node's resolver never saw a cluster name or a reverse name" "" "$leak"
check "the node's resolver saw the external name" grep -q '^udp host1\.test 1$' "$T_TMP/up.log"
to_kube=$(grep 'action=forward' "$T_TMP/sedns.log" | grep "upstream=127.0.0.1:$KPORT" | grep -o 'name=[^ ]*' | sort -u)
check "kube-dns got queries ($(echo "$to_kube" | wc -l) names)" test -n "$to_kube"
expect_eq "kube-dns saw only names of its zones" "" \
	"$(echo "$to_kube" | grep -vE '\.(cluster\.local|in-addr\.arpa|ip6\.arpa)$')"
expect_eq "nobody upstream saw api.stripe.com A" "" \
	"$(grep -E 'api\.stripe\.com[^ ]* (1|28)$' "$T_TMP/up.log"; grep 'action=forward' "$T_TMP/sedns.log" | grep 'name=api.stripe.com.* type=A ')"
expect_match "the query log names the zone and the upstream" \
	"name=web\.ns1\.svc\.cluster\.local type=A class=IN action=forward zone=cluster\.local upstream=127\.0\.0\.1:$KPORT rcode=NOERROR" \
	"$(cat "$T_TMP/sedns.log")"
out=$(dig @"$HOST_IP" +time=2 +tries=1 +short CH TXT kubernetes.default.svc.cluster.local)
expect_match "CH TXT says which zone and upstreams a name goes to" "forward zone=cluster\.local upstreams=127\.0\.0\.1:$KPORT" "$out"
out=$(dig @"$HOST_IP" +time=2 +tries=1 +short CH TXT www.example.org)
expect_match "... and the default zone for the rest" "forward zone=\. upstreams=127\.0\.0\.1:$UPORT" "$out"

# a DNS-resolution endpoint under the cluster domain is resolved via kube-dns
for _ in $(seq 1 30); do grep -q '10\.96\.5\.5' "$T_TMP/state/rules.iptables" 2>/dev/null && break; sleep 0.1; done
check "an endpoint named web.ns1.svc.cluster.local resolves through kube-dns into the rules (10.96.5.5)" \
	grep -q 'to-destination 10\.96\.5\.5:80' "$T_TMP/state/rules.iptables"

# --- owned names, every type ----------------------------------------------------------
D=(dig @"$HOST_IP" +time=2 +tries=1)
: >"$T_TMP/up.log"
for t in HTTPS SVCB; do
	out=$("${D[@]}" api.stripe.com "$t")
	expect_match "$t for an owned name: NOERROR, no answer" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(echo "$out" | tr '\n' ' ')"
	expect_match "... with an SOA (owner the host, MINIMUM = ttl 20)" \
		'api\.stripe\.com\.[[:space:]]+20[[:space:]]+IN[[:space:]]+SOA[[:space:]]+api\.stripe\.com\. hostmaster\.api\.stripe\.com\. 1 3600 600 86400 20' "$out"
done
out=$("${D[@]}" api.stripe.com.ns1.svc.cluster.local HTTPS)
expect_match "HTTPS of a search expansion: NODATA with the SOA, no lone CNAME (as Istio, istio#31251)" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(echo "$out" | tr '\n' ' ')"
sleep 0.2
expect_eq "HTTPS/SVCB of owned names never reach an upstream" "" "$(grep -E ' (64|65)$' "$T_TMP/up.log")"

out=$("${D[@]}" api.stripe.com MX)
expect_match "MX of an owned name that the upstream says NXDOMAIN for: NODATA" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(echo "$out" | tr '\n' ' ')"
check "... after asking the upstream" grep -q '^udp api\.stripe\.com 15$' "$T_TMP/up.log"
expect_match "... and the log says it was rewritten" 'name=api\.stripe\.com type=MX .*rcode=NOERROR .*note=was_nxdomain' "$(cat "$T_TMP/sedns.log")"
out=$("${D[@]}" api.stripe.com.ns1.svc.cluster.local MX)
expect_match "MX of an owned search expansion: kube-dns's NXDOMAIN becomes NODATA" 'status: NOERROR' "$out"
out=$("${D[@]}" +short owned.example.test MX)
expect_match "MX that exists upstream for an owned name is relayed" '^10 mail\.owned\.example\.test\.$' "$out"
out=$("${D[@]}" nosuch.example.org MX)
expect_match "a name nobody owns keeps its NXDOMAIN" 'status: NXDOMAIN' "$out"

# local NODATA (AAAA of a v4-only VIP) through three clients
out=$("${D[@]}" api.stripe.com AAAA)
expect_match "dig: AAAA of a v4-only host is NODATA with an SOA" 'status: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(echo "$out" | tr '\n' ' ')"
out=$(kdig @"$HOST_IP" +time=2 +retry=0 api.stripe.com AAAA)
expect_match "kdig: NOERROR" 'status: NOERROR' "$out"
expect_match "kdig: the SOA is in the authority section" 'AUTHORITY SECTION:[[:space:]]+api\.stripe\.com\.[[:space:]]+20[[:space:]]+IN[[:space:]]+SOA' "$(echo "$out" | tr '\n' ' ')"
out=$(drill @"$HOST_IP" api.stripe.com AAAA)
expect_match "drill: NOERROR, one authority record" 'rcode: NOERROR.*ANSWER: 0, AUTHORITY: 1' "$(echo "$out" | tr '\n' ' ')"
expect_match "drill: it is the SOA" 'api\.stripe\.com\.[[:space:]]+20[[:space:]]+IN[[:space:]]+SOA' "$out"
out=$(podget ahosts api.stripe.com)
expect_match "pod: getent ahosts (A+AAAA) still gives the VIP" "^${VIP//./\\.}[[:space:]]" "$out"

check "sedns is still running" kill -0 "$SEDNS_PID"
stop_pid "$SEDNS_PID"
podns_cleanup
NS_MADE=0
finish
