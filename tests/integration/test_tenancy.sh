#!/usr/bin/env bash
# Tenancy: a ServiceEntry author in one namespace cannot capture other
# namespaces' names (with and without per-namespace views), everybody's
# names through a wildcard, or another host's VIP; a NXDOMAIN endpoint does
# not set a query rate. Real daemon, dig, a fake upstream that logs queries.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

fu_build || { notok "fakeupstream builds"; finish; }
UPORT=$(free_port)
fu_start "$UPORT" -l "$T_TMP/up.log" || { notok "fakeupstream starts"; finish; }

SE=$T_TMP/se
mkdir -p "$SE"
cat >"$SE/team-a.yaml" <<'YAML'
# team-a tries to take names that are not its own
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grab, namespace: team-a}
spec:
  hosts: [kubernetes.default, payments-db.payments, redis]
  addresses: [198.18.66.1]
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.66.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grab-fqdn, namespace: team-a}
spec:
  hosts: [prometheus.monitoring.svc.cluster.local]
  addresses: [198.18.66.2]
  resolution: STATIC
  ports: [{number: 9090, name: http, protocol: HTTP}]
  endpoints: [{address: 10.66.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grab-wild, namespace: team-a}
spec:
  hosts: ["*.svc.cluster.local", "*.com", "*.example.org"]
  addresses: [198.18.66.3]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.66.0.3}]
YAML
cat >"$SE/payments.yaml" <<'YAML'
# a VM behind a ServiceEntry, in its own namespace: a real pattern
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments-db, namespace: payments}
spec:
  hosts: [payments-db.payments.svc.cluster.local]
  addresses: [198.18.67.1]
  resolution: STATIC
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 10.67.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: payments}
spec:
  hosts: [db.internal.example]
  exportTo: ["."]
  resolution: DNS
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 10.67.0.2}]
YAML

# --- sedns check reports the captures with file:line -------------------------------
"$SEDNS" check "$SE" >"$T_TMP/check.out" 2>&1; rc=$?
out=$(cat "$T_TMP/check.out")
expect_eq "sedns check: captures are errors (exit 1)" 1 "$rc"
expect_match "... a name of another namespace, with file:line and the reason" \
	"team-a\.yaml:[0-9]+: team-a/grab-fqdn: spec\.hosts\[0\]: \"prometheus\.monitoring\.svc\.cluster\.local\" is a name of namespace \"monitoring\"" "$out"
expect_match "... *.svc.cluster.local covers every namespace" 'team-a/grab-wild: spec\.hosts\[0\]: "\*\.svc\.cluster\.local" covers the cluster domain' "$out"
expect_match "... *.com is a public suffix" 'team-a/grab-wild: spec\.hosts\[1\]: wildcard "\*\.com" covers the public suffix "com"' "$out"
check "... *.example.org is fine" bash -c "! grep -q 'spec.hosts\[2\]' '$T_TMP/check.out'"
expect_match "... and exportTo without views is noted" 'note: 1 ServiceEntries restrict exportTo, but per-namespace views are off' "$out"

# --- without views ------------------------------------------------------------------
PORT=$(free_port)
start_sedns "$T_TMP/a.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --endpoint-min-ttl 200ms --endpoint-max-ttl 10s --reload-debounce 100ms ||
	{ notok "sedns starts ($(tail -3 "$T_TMP/a.log"))"; finish; }
q() { dig @127.0.0.1 -p "$PORT" +short +time=2 +tries=1 "$@"; }
expect_eq "kubernetes.default is answered as written" "198.18.66.1" "$(q kubernetes.default)"
expect_eq "... but kubernetes.default.svc.cluster.local is the cluster's, not team-a's" "" \
	"$(q kubernetes.default.svc.cluster.local)"
expect_eq "payments-db.payments.svc.cluster.local: the payments entry, not team-a's" "198.18.67.1" \
	"$(q payments-db.payments.svc.cluster.local)"
expect_eq "redis.prod.svc.cluster.local: prod's Service, not team-a's host 'redis'" "" "$(q redis.prod.svc.cluster.local)"
expect_eq "redis.team-a.svc.cluster.local: team-a's own namespace" "198.18.66.1" "$(q redis.team-a.svc.cluster.local | tail -1)"
expect_eq "prometheus.monitoring.svc.cluster.local is not answered from team-a" "" \
	"$(q prometheus.monitoring.svc.cluster.local)"
expect_eq "*.svc.cluster.local answers nothing" "" "$(q anything.monitoring.svc.cluster.local)"
expect_eq "*.com answers nothing (www.google.com)" "" "$(q www.google.com)"
expect_eq "*.example.org still answers its names" "198.18.66.3" "$(q www.example.org)"
check "the startup log says exportTo is not enforced without views" \
	grep -q 'info 1 ServiceEntries restrict exportTo' "$T_TMP/a.log"
check "the daemon logs each capture as an error" grep -q 'error .*team-a/grab-wild: spec.hosts\[1\]' "$T_TMP/a.log"
kill -HUP "$SEDNS_PID"; sleep 0.5
expect_eq "... once: a reload with nothing changed does not repeat it" 1 \
	"$(grep -c 'error .*team-a/grab-wild: spec.hosts\[1\]' "$T_TMP/a.log")"
sleep 0.3
check "those names went upstream instead" grep -q '^udp kubernetes\.default\.svc\.cluster\.local 1$' "$T_TMP/up.log"

# --- VIP squat ------------------------------------------------------------------------
VIP=$(q db.internal.example)
expect_match "db.internal.example has a VIP" '^240\.240\.' "$VIP"
cat >"$SE/team-b.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: squat, namespace: team-b}
spec:
  hosts: [squat.example]
  addresses: [$VIP]
  resolution: STATIC
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 10.68.0.1}]
YAML
kill -HUP "$SEDNS_PID"; sleep 0.5
expect_eq "a squat on db.internal.example's VIP: the VIP does not move" "$VIP" "$(q db.internal.example)"
expect_eq "... and the squatter is not answered" "" "$(q squat.example)"
check "... said in the log with the reason" grep -q "team-b/squat: spec.addresses: $VIP is the VIP of host db.internal.example" "$T_TMP/a.log"
rm -f "$SE/team-b.yaml"
stop_pid "$SEDNS_PID"

# --- with views ---------------------------------------------------------------------------
cat >"$T_TMP/pods.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- metadata: {name: p, namespace: prod}
  status: {phase: Running, podIP: 127.0.0.21}
- metadata: {name: a, namespace: team-a}
  status: {phase: Running, podIP: 127.0.0.22}
YAML
start_sedns "$T_TMP/b.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$SE" \
	--upstream "127.0.0.1:$UPORT" --workloads "$T_TMP/pods.yaml" || { notok "sedns starts with views"; finish; }
qb() { local src=$1; shift; dig @127.0.0.1 -p "$PORT" -b "$src" +short +time=2 +tries=1 "$@"; }
expect_eq "views: a prod pod's kubernetes.default.svc.cluster.local is not team-a's" "" \
	"$(qb 127.0.0.21 kubernetes.default.svc.cluster.local)"
expect_eq "views: a prod pod's search path for 'redis' is not team-a's" "" "$(qb 127.0.0.21 redis.prod.svc.cluster.local)"
expect_eq "views: team-a's own pod gets its short host in its namespace" "198.18.66.1" \
	"$(qb 127.0.0.22 redis.team-a.svc.cluster.local | tail -1)"
expect_eq "views: payments-db still answered for prod" "198.18.67.1" "$(qb 127.0.0.21 payments-db.payments.svc.cluster.local)"
stop_pid "$SEDNS_PID"

# --- a NXDOMAIN endpoint does not set a query rate --------------------------------------
mkdir -p "$T_TMP/se2"
cat >"$T_TMP/se2/nx.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: typo, namespace: team-a}
spec:
  hosts: [typo.example]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: no-such-host.invalid}]
YAML
: >"$T_TMP/up.log"
start_sedns "$T_TMP/c.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state2" --serviceentries "$T_TMP/se2" \
	--upstream "127.0.0.1:$UPORT" --endpoint-min-ttl 200ms --endpoint-max-ttl 10s || { notok "sedns starts"; finish; }
sleep 4
n=$(grep -c 'no-such-host\.invalid' "$T_TMP/up.log")
echo "# measured: NXDOMAIN endpoint queried $n times in 4 s (min_ttl 200ms: 20 without backoff)"
check "NXDOMAIN endpoint backs off: $n queries in 4 s (at most 6; 20 at a fixed 200ms)" test "$n" -ge 2 -a "$n" -le 6
stop_pid "$SEDNS_PID"

# --- the node-wide cap ---------------------------------------------------------------------
{
	for i in $(seq 1 200); do
		cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: e$i, namespace: team-a}
spec:
  hosts: [e$i.example]
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: ep$i.cap.test}]
YAML
	done
} >"$T_TMP/se2/many.yaml"
rm -f "$T_TMP/se2/nx.yaml"
: >"$T_TMP/up.log"
MPORT=$(free_port)
start_sedns "$T_TMP/d.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state3" --serviceentries "$T_TMP/se2" \
	--upstream "127.0.0.1:$UPORT" --endpoint-max-qps 40 --metrics "127.0.0.1:$MPORT" || { notok "sedns starts"; finish; }
sleep 1
n1=$(grep -c '\.cap\.test' "$T_TMP/up.log")
echo "# measured: 200 new endpoint names, endpoint_max_qps 40: $n1 queries in the first ~1 s"
check "the cap holds: $n1 queries in the first second for 200 names (burst 40 + 40/s)" test "$n1" -le 120
m=$(curl -s "127.0.0.1:$MPORT/metrics")
expect_match "deferred resolutions are counted" 'sedns_endpoint_resolutions_deferred_total [1-9]' "$m"
sleep 5
n2=$(grep -c '\.cap\.test' "$T_TMP/up.log")
check "... and every name is resolved in the end ($n2 queries after 6 s)" test "$n2" -ge 200
stop_pid "$SEDNS_PID"

# --- one bad entry affects only itself -------------------------------------------------
mkdir -p "$T_TMP/se5"
list_entry() { # NAME HOST PROTOCOL
	cat <<YAML
- apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: $1, namespace: team-$1}
  spec:
    hosts: [$2]
    addresses: [198.18.70.$3]
    resolution: STATIC
    ports: [{number: 443, name: tls, protocol: $4}]
    endpoints: [{address: 10.70.0.$3}]
YAML
}
{ echo "apiVersion: v1"; echo "items:"; list_entry a a.example 1 TLS; list_entry b b.example 2 TLS; echo "kind: List"; } \
	>"$T_TMP/se5/all.yaml"
start_sedns "$T_TMP/e.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state5" --serviceentries "$T_TMP/se5" \
	--upstream "127.0.0.1:$UPORT" --reload-debounce 100ms || { notok "sedns starts"; finish; }
expect_eq "List file: a answered" "198.18.70.1" "$(q a.example)"
expect_eq "List file: b answered" "198.18.70.2" "$(q b.example)"
# b breaks (protocol QUIC), a changes, c is new: all in the same file
{ echo "apiVersion: v1"; echo "items:"; list_entry a a2.example 1 TLS; list_entry b b2.example 2 QUIC
	list_entry c c.example 3 TLS; echo "kind: List"; } >"$T_TMP/se5/all.yaml.new"
mv "$T_TMP/se5/all.yaml.new" "$T_TMP/se5/all.yaml"
sleep 0.6
expect_eq "one broken entry does not freeze the file: a's change is live" "198.18.70.1" "$(q a2.example)"
expect_eq "... a new entry of the same file is live" "198.18.70.3" "$(q c.example)"
expect_eq "... and the broken entry keeps its last valid version" "198.18.70.2" "$(q b.example)"
expect_eq "... (not its broken new one)" "" "$(q b2.example)"
check "the log names the entry kept" grep -q 'serviceentry=team-b/b .* has errors: keeping its last valid version' "$T_TMP/e.log"
stop_pid "$SEDNS_PID"
start_sedns "$T_TMP/f.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state5" --serviceentries "$T_TMP/se5" \
	--upstream "127.0.0.1:$UPORT" || { notok "sedns restarts"; finish; }
expect_eq "after a restart with the same file: a as the running node had it" "198.18.70.1" "$(q a2.example)"
expect_eq "... c too" "198.18.70.3" "$(q c.example)"
expect_eq "... and b, which never had a valid version in this process, is absent" "" "$(q b.example)"
stop_pid "$SEDNS_PID"

# --- a 14,000-entry kubectl dump (about 18 MB) loads after a restart ---------------------
mkdir -p "$T_TMP/se6"
scripts/gen-kubectl-list.sh 14000 >"$T_TMP/se6/dump.yaml"
size=$(stat -c %s "$T_TMP/se6/dump.yaml")
start_sedns "$T_TMP/g.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state6" --serviceentries "$T_TMP/se6" \
	--upstream "127.0.0.1:$UPORT" --endpoint-max-qps 1 || { notok "sedns starts on the big dump"; finish; }
expect_match "a $size-byte dump: the last entry is answered" '^240\.240\.' "$(q "api-13999.partner$((13999 % 97)).example")"
check "... every entry loaded" grep -q 'entries=14000 hosts=14000' "$T_TMP/g.log"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$SEDNS_PID/status")
echo "# measured: $size-byte kubectl dump, 14000 entries: peak RSS ${rss} kB"
stop_pid "$SEDNS_PID"
finish
