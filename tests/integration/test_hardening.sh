#!/usr/bin/env bash
# Hardening of the TCP listener and the rule-apply child: a refused client
# gets no slot (closed at accept), one address cannot take every
# connection, a connection has a lifetime whatever it sends, and the
# iptables tools sedns runs hold none of its sockets.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

fu_build || { notok "fakeupstream builds"; finish; }
UPORT=$(free_port)
fu_start "$UPORT" -l /dev/null || { notok "fakeupstream starts"; finish; }
PORT=$(free_port)
MPORT=$(free_port)
start_sedns "$T_TMP/s.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries config/serviceentries \
	--upstream "127.0.0.1:$UPORT" --allow-from 127.0.0.1/32 --tcp-max-connections 20 --tcp-max-per-client 3 \
	--tcp-max-lifetime 1s --tcp-idle-timeout 10s --metrics "127.0.0.1:$MPORT" ||
	{ notok "sedns starts ($(tail -3 "$T_TMP/s.log"))"; finish; }
metric() { curl -s "127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

expect_eq "the VIP store is readable by its owner only (0600)" 600 "$(stat -c %a "$T_TMP/state/vips.mdb")"

# --- a client outside allow_from: closed at accept ---------------------------------
out=$(rq -I -b 127.0.0.2 -w 2000)
expect_match "a TCP client outside allow_from is closed at once" '^CLOSED ([0-9]|[1-9][0-9]|[1-2][0-9][0-9])$' "$out"
pids=()
for i in $(seq 1 40); do rq -I -b 127.0.0.2 -w 300 >/dev/null & pids+=($!); done
wait "${pids[@]}"
out=$(dig @127.0.0.1 -p "$PORT" +tcp +time=2 +tries=1 +short api.stripe.com)
expect_match "40 refused connections later, an allowed TCP client is served (cap 20)" '^240\.240\.' "$out"
check "... refusals counted" test "$(metric 'sedns_tcp_refused_total{reason="allow_from"}')" -ge 41
check "... and logged (once for its /24, then counted)" grep -q 'refused a TCP connection from 127.0.0.2: not in allow_from' "$T_TMP/s.log"
expect_eq "... one line, not one per connection" 1 "$(grep -c 'refused a TCP connection' "$T_TMP/s.log")"

# --- one address cannot take every connection ---------------------------------------
pids=()
for i in 1 2 3 4 5; do rq -I -w 700 >"$T_TMP/pc.$i" & pids+=($!); done
wait "${pids[@]}"
quick=$(cat "$T_TMP"/pc.* | awk '$1 == "CLOSED" && $2 < 300' | wc -l)
expect_eq "5 idle connections from one address, cap 3: 2 closed at once" 2 "$quick"
check "... counted" test "$(metric 'sedns_tcp_refused_total{reason="per_client_cap"}')" -ge 2

# --- a lifetime, busy or not ----------------------------------------------------------
out=$(rq -I -w 3000)
ms=$(awk '{print $2}' <<<"$out")
check "an idle connection (idle timeout 10s) ends at tcp_max_lifetime 1s ($out)" \
	test "$(awk '{print $1}' <<<"$out")" = CLOSED -a "${ms:-0}" -ge 900 -a "${ms:-0}" -lt 2500
check "... counted" test "$(metric sedns_tcp_lifetime_ends_total)" -ge 1
stop_pid "$SEDNS_PID"

# --- endpoint resolution: our question only, TC retried over TCP ---------------------------
mkdir -p "$T_TMP/se-ep"
cat >"$T_TMP/se-ep/ep.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ep, namespace: t}
spec:
  hosts: [trunc.example, wrong.example]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: tc.ep.test}, {address: wrongq.ep.test}]
YAML
start_sedns "$T_TMP/ep.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-ep" --serviceentries "$T_TMP/se-ep" --rules-format iptables \
	--upstream "127.0.0.1:$UPORT" || { notok "sedns starts"; finish; }
for _ in $(seq 1 40); do grep -q '192\.0\.2\.100' "$T_TMP/state-ep/rules.iptables" 2>/dev/null && break; sleep 0.1; done
check "an endpoint whose UDP answer is truncated is resolved over TCP (3 addresses)" \
	test "$(grep -c 'to-destination 192\.0\.2\.10[012]:443' "$T_TMP/state-ep/rules.iptables")" -ge 3
expect_eq "a reply for another question is not taken as the endpoint's address" "" \
	"$(grep '203\.0\.113\.66' "$T_TMP/state-ep/rules.iptables")"
stop_pid "$SEDNS_PID"

# --- descriptors are bounded: 2,000 DNS endpoints under ulimit -n 128 --------------------------
mkdir -p "$T_TMP/se-fd"
{
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: many, namespace: fd}\nspec:\n  hosts: [many.example]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  endpoints:\n'
	for i in $(seq 1 2000); do printf '  - {address: ep%d.fd.test}\n' "$i"; done
} >"$T_TMP/se-fd/many.yaml"
# both limits at 128 (sedns raises its soft limit to the hard one);
# endpoint_max_qps 5000 so that only the in-flight cap holds the sockets
(ulimit -n 128; exec "$SEDNS" serve --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-fd" \
	--serviceentries "$T_TMP/se-fd" --upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" \
	--endpoint-max-qps 5000 --reload-debounce 100ms) >"$T_TMP/fd.log" 2>&1 &
SEDNS_PID=$!; T_PIDS+=("$SEDNS_PID")
wait_dns 127.0.0.1 "$PORT"
expect_match "ulimit -n 128, 2,000 DNS endpoints: sedns starts and answers" '^240\.240\.' \
	"$(dig @127.0.0.1 -p "$PORT" +short many.example)"
res=0
for _ in $(seq 1 100); do res=$(metric sedns_endpoint_resolutions_total); [ "${res:-0}" -ge 2000 ] && break; sleep 0.1; done
check "... every endpoint name resolves ($res of 2000)" test "${res:-0}" -ge 2000
expect_eq "... never out of descriptors" "" "$(grep -i 'too many open files' "$T_TMP/fd.log" | head -1)"
expect_match "... forwarded queries still answered" '^192\.0\.2\.' "$(dig @127.0.0.1 -p "$PORT" +short fwd.fd.test)"
cp config/serviceentries/payments.yaml "$T_TMP/se-fd/"
for _ in $(seq 1 30); do [ -n "$(dig @127.0.0.1 -p "$PORT" +short api.stripe.com | grep '^240')" ] && break; sleep 0.1; done
expect_match "... and file changes are still watched" '^240\.240\.' "$(dig @127.0.0.1 -p "$PORT" +short api.stripe.com)"
stop_pid "$SEDNS_PID"

# --- unreadable is not empty ---------------------------------------------------------------
mkdir -p "$T_TMP/se-mv"
cp config/serviceentries/*.yaml "$T_TMP/se-mv/"
start_sedns "$T_TMP/mv.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-mv" --serviceentries "$T_TMP/se-mv" \
	--upstream "127.0.0.1:$UPORT" --metrics "127.0.0.1:$MPORT" --reload-debounce 100ms ||
	{ notok "sedns starts"; finish; }
vip=$(dig @127.0.0.1 -p "$PORT" +short api.stripe.com)
mv "$T_TMP/se-mv" "$T_TMP/se-mv.moved"
kill -HUP "$SEDNS_PID"; sleep 0.5
expect_eq "the ServiceEntry directory moved away: answers unchanged" "$vip" "$(dig @127.0.0.1 -p "$PORT" +short api.stripe.com)"
expect_eq "... and no VIP goes on hold" "" "$("$SEDNS" vips --state-dir "$T_TMP/state-mv" | awk '$3 == "held"')"
check "... the reload failed, saying why" grep -q 'could not be read (see above); nothing changed' "$T_TMP/mv.log"
expect_match "... and /readyz says so" 'not ready: last reload failed' "$(curl -s "127.0.0.1:$MPORT/readyz")"
mv "$T_TMP/se-mv.moved" "$T_TMP/se-mv"; sleep 0.6
expect_eq "back in place: picked up by the watch, ready again" "ready" "$(curl -s "127.0.0.1:$MPORT/readyz")"
stop_pid "$SEDNS_PID"

# --- a truncated store is an error, not a SIGBUS -------------------------------------------
for size in 8192 half; do
	rm -rf "$T_TMP/state-tr"; cp -r "$T_TMP/state-mv" "$T_TMP/state-tr"
	full=$(stat -c %s "$T_TMP/state-tr/vips.mdb")
	[ "$size" = half ] && size=$((full / 2 / 4096 * 4096))
	truncate -s "$size" "$T_TMP/state-tr/vips.mdb"
	out=$("$SEDNS" vips --state-dir "$T_TMP/state-tr" 2>&1); rc=$?
	expect_eq "vips.mdb cut to $size of $full bytes: sedns vips exits 1 (no crash)" 1 "$rc"
	expect_match "... saying it is truncated and what to do" 'is truncated: [0-9]+ bytes, its meta page needs [0-9]+; restore it' "$out"
	out=$(timeout 10 "$SEDNS" serve --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-tr" \
		--serviceentries config/serviceentries --upstream "127.0.0.1:$UPORT" 2>&1); rc=$?
	expect_eq "... and sedns serve exits 1 with the same error" 1 "$rc"
done

# --- log injection ---------------------------------------------------------------------------
mkdir -p "$T_TMP/se-inj"
printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: "x\\ninfo reloaded files=1 entries=999"\n  namespace: a\nspec:\n  hosts: [inj.example]\n  resolution: DNS\n' \
	>"$T_TMP/se-inj/inj.yaml"
out=$("$SEDNS" check "$T_TMP/se-inj" 2>&1)
expect_eq "a name with a newline cannot forge a log line" "" "$(grep '^info reloaded' <<<"$out")"
expect_match "... it is shown escaped" 'x\\ninfo reloaded' "$out"

# --- the rule-apply child and its tools hold none of sedns's sockets --------------------
# fake iptables tools record their own descriptors and their parent's (the
# apply child), then succeed
mkdir -p "$T_TMP/bin"
for tool in iptables-restore iptables iptables-save; do
	cat >"$T_TMP/bin/$tool" <<EOF
#!/bin/bash
cat >/dev/null
{ echo "tool \$\$:"; ls -l /proc/\$\$/fd; echo "parent \$PPID:"; ls -l /proc/\$PPID/fd; } >>"$T_TMP/fds.txt" 2>/dev/null
exit 0
EOF
	chmod +x "$T_TMP/bin/$tool"
done
PATH="$T_TMP/bin:$PATH" start_sedns "$T_TMP/r.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state2" \
	--serviceentries config/serviceentries --upstream "127.0.0.1:$UPORT" --rules-apply true \
	--metrics "127.0.0.1:$MPORT" || { notok "sedns starts with rules.apply"; finish; }
for _ in $(seq 1 50); do [ -s "$T_TMP/fds.txt" ] && break; sleep 0.1; done
check "the fake iptables tools ran" test -s "$T_TMP/fds.txt"
expect_eq "no socket in the tools or the apply child (listeners, clients, upstreams)" "" \
	"$(grep -c 'socket:' "$T_TMP/fds.txt" | grep -v '^0$')"
expect_eq "no LMDB file either" "" "$(grep 'vips.mdb' "$T_TMP/fds.txt")"
for _ in $(seq 1 100); do grep -q 'rules applied' "$T_TMP/r.log" && break; sleep 0.1; done
kill -HUP "$SEDNS_PID"; sleep 0.4; kill -HUP "$SEDNS_PID"
# an apply through the fake tools takes ~3 s: wait long enough to see one
for _ in $(seq 1 80); do [ "$(grep -c 'rules applied' "$T_TMP/r.log")" -gt 1 ] && break; sleep 0.1; done
expect_eq "two SIGHUPs with nothing changed: no second apply" 1 "$(grep -c 'rules applied' "$T_TMP/r.log")"
stop_pid "$SEDNS_PID"
finish
