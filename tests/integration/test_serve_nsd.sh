#!/usr/bin/env bash
# sedns serve in front of a real nsd: forwarded answers parsed by dig, kdig
# and drill; local ServiceEntry answers; packet acceptance; TCP.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"
DATA=$ROOT/tests/integration/data

for t in dig kdig drill nsd nsd-checkconf; do
	if ! command -v "$t" >/dev/null; then
		notok "$t is installed (scripts/install-deps.sh)"
		finish
	fi
done
fu_build || { notok "fakeupstream builds"; finish; }

# --- nsd serving example.test, wild.test and stripe.com on loopback ----------
NPORT=$(free_port)
mkdir -p "$T_TMP/nsd"
cp "$DATA"/nsd/*.zone "$T_TMP/nsd/"
nsd_conf "$T_TMP/nsd" "$NPORT" example.test wild.test stripe.com
check "nsd-checkconf accepts the test config" nsd-checkconf "$T_TMP/nsd/nsd.conf"
nsd_start "$T_TMP/nsd"
wait_dns_a() { dig @127.0.0.1 -p "$NPORT" +time=1 +tries=1 +short www.example.test | grep -q 192.0.2.80; }
for _ in $(seq 1 50); do wait_dns_a && break; sleep 0.1; done
if ! wait_dns_a; then
	notok "nsd answers on port $NPORT ($(tail -3 "$T_TMP/nsd/nsd.log" "$T_TMP/nsd/stdout" 2>/dev/null))"
	finish
fi
ok "nsd serves example.test on 127.0.0.1:$NPORT"

# --- sedns in front of it ------------------------------------------------------
PORT=$(free_port)
if ! start_sedns "$T_TMP/sedns.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" \
	--serviceentries config/serviceentries --serviceentries "$DATA/se" --upstream "127.0.0.1:$NPORT" \
	--allow-from 127.0.0.1/32 --ttl 17 --tcp-idle-timeout 500ms --upstream-timeout 1s; then
	notok "sedns starts ($(tail -5 "$T_TMP/sedns.log"))"
	finish
fi
ok "sedns serves on 127.0.0.1:$PORT, forwarding to nsd"

D=(dig @127.0.0.1 -p "$PORT" +time=2 +tries=1)
K=(kdig @127.0.0.1 -p "$PORT" +time=2 +retry=0)
R=(drill -p "$PORT")

# tool_check TOOL DESC EXPECT_STATUS EXPECT_REGEX ARGS...: runs the tool,
# checks exit 0, the header status and a regex in the output.
tool_check() {
	local tool=$1 desc=$2 status=$3 re=$4; shift 4
	local out rc
	case $tool in
	dig) out=$("${D[@]}" "$@" 2>&1); rc=$? ;;
	kdig) out=$("${K[@]}" "$@" 2>&1); rc=$? ;;
	drill) out=$("${R[@]}" "$@" @127.0.0.1 2>&1); rc=$? ;;
	esac
	if [ "$rc" -ne 0 ]; then
		notok "$tool $desc: exit $rc ($(echo "$out" | head -3))"
		return
	fi
	if ! [[ "$out" =~ (status|rcode):\ $status[,\;] ]]; then
		notok "$tool $desc: status $status ($(echo "$out" | grep -E 'status|rcode' | head -1))"
		return
	fi
	if [[ "$out" =~ $re ]]; then ok "$tool $desc"; else notok "$tool $desc: no /$re/ in: $(echo "$out" | grep -v '^;' | grep . | head -4)"; fi
}

for tool in dig kdig drill; do
	tool_check $tool "forwarded A" NOERROR 'www\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.80' www.example.test A
	tool_check $tool "NXDOMAIN relayed (with nsd's SOA)" NXDOMAIN 'example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA' nope.example.test A
	tool_check $tool "forwarded MX" NOERROR 'MX[[:space:]]+10 mail\.example\.test\.' example.test MX
	tool_check $tool "forwarded TXT" NOERROR 'TXT[[:space:]]+"v=spf1 -all"' example.test TXT
	tool_check $tool "local A for a ServiceEntry host" NOERROR 'api\.stripe\.com\.[[:space:]]+17[[:space:]]+IN[[:space:]]+A[[:space:]]+240\.240\.[0-9]+\.[0-9]+' api.stripe.com A
done
out=$("${D[@]}" +tcp bigtxt.example.test TXT 2>&1)
expect_eq "dig +tcp: large TXT RRset (12 records) over TCP" 12 "$(echo "$out" | grep -c '^bigtxt.*TXT')"
out=$("${D[@]}" bigtxt.example.test TXT 2>&1)
expect_eq "dig over UDP: truncated, retried over TCP, 12 records" 12 "$(echo "$out" | grep -c '^bigtxt.*TXT')"
out=$("${D[@]}" +ignore +bufsize=1232 bigtxt.example.test TXT 2>&1)
expect_match "the UDP answer of the large TXT has TC set" 'flags: qr[a-z ]* tc' "$out"
out=$("${K[@]}" +tcp bigtxt.example.test TXT 2>&1)
expect_eq "kdig +tcp: large TXT, 12 records" 12 "$(echo "$out" | grep -c '^bigtxt.*TXT')"
out=$("${R[@]}" -t bigtxt.example.test TXT @127.0.0.1 2>&1)
expect_eq "drill -t: large TXT, 12 records" 12 "$(echo "$out" | grep -c '^bigtxt.*TXT')"

# --- local answers -------------------------------------------------------------
out=$("${D[@]}" api.stripe.com A)
VIP=$(echo "$out" | awk '$1 == "api.stripe.com." && $4 == "A" {print $5; exit}')
expect_match "VIP is in 240.240.0.0/16" '^240\.240\.[0-9]+\.[0-9]+$' "$VIP"
expect_match "local answer has AA" 'flags: qr aa' "$out"
check "local A never comes from nsd's stripe.com zone" test "$VIP" != 203.0.113.9
out=$("${D[@]}" ApI.StRiPe.CoM A)
expect_match "question case preserved in the answer" $'\nApI\\.StRiPe\\.CoM\\.[[:space:]]+17[[:space:]]+IN[[:space:]]+A[[:space:]]+'"${VIP//./\\.}" "$out"
expect_match "question section keeps the case" ';ApI\.StRiPe\.CoM\.' "$out"
out=$("${D[@]}" api.stripe.com AAAA)
expect_match "AAAA for a v4-only ServiceEntry host is NODATA (NOERROR)" 'status: NOERROR' "$out"
expect_match "AAAA NODATA has 0 answers and AA" 'flags: qr aa[a-z ]*; QUERY: 1, ANSWER: 0' "$out"
for suf in ns1.svc.cluster.local cluster.local; do
	out=$("${D[@]}" "api.stripe.com.$suf" A)
	expect_match "search expansion .$suf: CNAME to api.stripe.com." "api\\.stripe\\.com\\.${suf//./\\.}\\.[[:space:]]+17[[:space:]]+IN[[:space:]]+CNAME[[:space:]]+api\\.stripe\\.com\\." "$out"
	expect_match "search expansion .$suf: A for the target in the same reply" $'\napi\\.stripe\\.com\\.[[:space:]]+17[[:space:]]+IN[[:space:]]+A[[:space:]]+'"${VIP//./\\.}" "$out"
done
# api.stripe.com.svc.cluster.local is <pod>.<service>.<namespace "com">.svc:
# a Kubernetes name of another namespace, never answered from a ServiceEntry
out=$("${D[@]}" api.stripe.com.svc.cluster.local A)
check "search expansion .svc.cluster.local of a dotted host is not answered locally (namespace com's name)" \
	bash -c "! grep -q 'CNAME' <<<'$out'"
for n in a.wild.test x.y.wild.test; do
	out=$("${D[@]}" "$n" A)
	expect_match "wildcard *.wild.test answers $n with its address, owned by $n" $'\n'"${n//./\\.}"'\.[[:space:]]+17[[:space:]]+IN[[:space:]]+A[[:space:]]+198\.18\.5\.5' "$out"
done
out=$("${D[@]}" +noall +answer a.wild.test.ns1.svc.cluster.local A)
expect_match "search expansion of a wildcard name: CNAME to the name meant, never to *" $'CNAME[[:space:]]+a\\.wild\\.test\\.\n'"a\\.wild\\.test\\.[[:space:]]+17[[:space:]]+IN[[:space:]]+A[[:space:]]+198\\.18\\.5\\.5" "$out"
out=$("${D[@]}" +short wild.test A)
expect_eq "the wildcard's apex wild.test is forwarded (nsd's answer)" 192.0.2.55 "$out"
out=$("${D[@]}" +short -x "$VIP")
expect_eq "PTR of the VIP is api.stripe.com." api.stripe.com. "$out"
out=$("${D[@]}" +short CH TXT version.bind)
expect_match "CH TXT version.bind names sedns" '^"sedns ' "$out"
out=$("${D[@]}" +short CH TXT api.stripe.com)
expect_match "CH TXT api.stripe.com names the ServiceEntry" 'serviceentry=payments/stripe-api' "$out"
expect_match "CH TXT api.stripe.com names the port" 'port=443' "$out"
expect_match "CH TXT api.stripe.com names the VIP" "${VIP//./\\.}" "$out"
out=$("${D[@]}" +short api.stripe.com MX)
expect_eq "MX for a ServiceEntry host is forwarded (nsd's MX)" "10 mx-from-nsd.stripe.com." "$out"
out=$("${D[@]}" +short multi.rot.test A | sort | tr '\n' ' ')
expect_eq "several spec.addresses are all answered" "198.18.1.1 198.18.1.2 198.18.1.3 " "$out"
f1=$("${D[@]}" +short multi.rot.test A | head -1)
f2=$("${D[@]}" +short multi.rot.test A | head -1)
check "two consecutive queries get a different first address ($f1, $f2)" test -n "$f1" -a "$f1" != "$f2"

# --- packet acceptance -----------------------------------------------------------
Q=03777777076578616d706c650474657374000001000
out=$(rq -w 700 "hex:abcd81000001000000000000${Q}1")
expect_eq "QR=1 (a response) gets no reply" NOREPLY "$out"
out=$(rq -w 1000 "hex:abcd11000001000000000000${Q}1")
expect_match "opcode 2 gets NOTIMP" '^REPLY id=43981 qr=1 opcode=2 .* rcode=4 ' "$out"
out=$(rq -w 1000 "hex:abcd01000002000000000000${Q}1${Q}1")
expect_match "QDCOUNT 2 gets FORMERR" '^REPLY id=43981 qr=1 .* rcode=1 ' "$out"
out=$(rq -w 1000 "hex:abcd0100000100000000000003666f6fc00c00010001")
expect_match "a compression pointer in the question gets FORMERR" '^REPLY id=43981 qr=1 .* rcode=1 ' "$out"
out=$(rq -w 700 "hex:abcd01")
expect_eq "a 3-byte packet gets no reply" NOREPLY "$out"
out=$(rq -w 1000 -e 1232 www.example.test)
expect_match "EDNS query (forwarded) gets OPT back" '^REPLY .* rcode=0 .* an=1 ns=[0-9]+ ar=[1-9].*hex=.*000029[0-9a-f]{4}0000' "$out"
out=$(rq -w 1000 -e 1232 api.stripe.com)
expect_match "EDNS query (local) gets OPT back" '^REPLY .* aa=1 .* rcode=0 .* an=1 ns=0 ar=1 ' "$out"
out=$(rq -w 1000 api.stripe.com)
expect_match "query without EDNS gets no OPT" '^REPLY .* an=1 ns=0 ar=0 ' "$out"
out=$("${D[@]}" +edns=1 +noednsnegotiation api.stripe.com A 2>&1)
expect_match "EDNS version 1 gets BADVERS" 'status: BADVERS' "$out"
out=$("${D[@]}" -b 127.0.0.5 www.example.test A 2>&1)
expect_match "client outside --allow-from gets REFUSED" 'status: REFUSED' "$out"
out=$("${D[@]}" -b 127.0.0.5 api.stripe.com A 2>&1)
expect_match "client outside --allow-from gets REFUSED for a local name too" 'status: REFUSED' "$out"

# --- TCP -----------------------------------------------------------------------
out=$("${D[@]}" +tcp +short api.stripe.com A)
expect_eq "dig +tcp: local answer" "$VIP" "$out"
out=$("${D[@]}" +tcp +short www.example.test A)
expect_eq "dig +tcp: forwarded answer" 192.0.2.80 "$out"
out=$(rq -T -w 3000 www.example.test api.stripe.com example.test/MX)
expect_eq "3 pipelined queries on one TCP connection get 3 replies" 3 "$(echo "$out" | grep -c '^REPLY .* rcode=0 .* an=1 ')"
ids=$(echo "$out" | sed -n 's/^REPLY id=\([0-9]*\) .*/\1/p' | sort -u | wc -l)
expect_eq "the 3 pipelined replies have 3 distinct IDs" 3 "$ids"
out=$(kdig @127.0.0.1 -p "$PORT" +tcp +keepopen +time=2 +retry=0 www.example.test A api.stripe.com A example.test MX 2>&1)
expect_eq "kdig +keepopen: 3 answers over one connection" 3 "$(echo "$out" | grep -c 'status: NOERROR')"
start=$(date +%s%N)
out=$(rq -T -I -w 3000)
el=$(ms_since "$start")
expect_match "an idle TCP connection is closed by the server" '^CLOSED ' "$out"
check "idle close after --tcp-idle-timeout 500ms comes within ~1 s (${el} ms)" test "$el" -ge 300 -a "$el" -lt 1500

check "sedns is still running" kill -0 "$SEDNS_PID"
check "nsd is still running" kill -0 "$NSD_PID"
finish
