#!/usr/bin/env bash
# The daemon as operators run it: sd_notify messages, SIGHUP and inotify
# reloads under load (broken files keep their last good version), metrics,
# health and debug endpoints, per-namespace views, clean stop.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
mkdir -p build/tools
cc -O2 -Wall -Werror -o build/tools/notifysink tests/tools/notifysink.c || { notok "build notifysink"; finish; }

SE="$T_TMP/se"; mkdir -p "$SE"
cp config/serviceentries/*.yaml "$SE/"
PORT=$(free_port); MPORT=$(free_port)
SOCK="$T_TMP/notify.sock"
build/tools/notifysink "$SOCK" 300 > "$T_TMP/notify.log" &
SINK=$!; T_PIDS+=("$SINK")
sleep 0.2
NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=400000 start_sedns "$T_TMP/sedns.log" --listen 127.0.0.1:$PORT \
	--state-dir "$T_TMP/state" --serviceentries "$SE" --upstream 127.0.0.1:9 --upstream-timeout 200ms \
	--metrics 127.0.0.1:$MPORT --reload-debounce 100ms
check "daemon starts" kill -0 "$SEDNS_PID"
# libcurl (and its 26 libraries) is loaded only when the API watch starts
expect_eq "without kubernetes.*, libcurl is not loaded" "" "$(grep -o 'libcurl[^ ]*' /proc/$SEDNS_PID/maps | sort -u)"
q() { dig @127.0.0.1 -p $PORT +short +time=2 +tries=1 "$@"; }

# --- sd_notify ---------------------------------------------------------------
sleep 0.6
expect_match "READY=1 sent once serving" '^READY=1\|STATUS=serving [0-9]+ hosts' "$(cat "$T_TMP/notify.log")"
check "WATCHDOG=1 pings from the event loop (WATCHDOG_USEC honoured)" test "$(grep -c '^WATCHDOG=1$' "$T_TMP/notify.log")" -ge 2
kill -HUP "$SEDNS_PID"; sleep 0.3
expect_match "RELOADING=1 with MONOTONIC_USEC, then READY=1, on SIGHUP" 'RELOADING=1\|MONOTONIC_USEC=[0-9]+
(WATCHDOG=1
)*READY=1' "$(grep -v '^READY=1|STATUS' "$T_TMP/notify.log")"

# --- health, metrics, debug ----------------------------------------------------
expect_eq "/healthz" "ok" "$(curl -s 127.0.0.1:$MPORT/healthz)"
expect_eq "/readyz" "ready" "$(curl -s 127.0.0.1:$MPORT/readyz)"
VIP=$(q api.stripe.com)
expect_match "api.stripe.com has a VIP" '^240\.240\.' "$VIP"
m=$(curl -s 127.0.0.1:$MPORT/metrics)
expect_match "metrics count local answers" 'sedns_responses_total\{outcome="local"\} [1-9]' "$m"
expect_match "metrics has the local latency histogram" 'sedns_local_answer_duration_seconds_count [1-9]' "$m"
expect_match "metrics has VIP pool gauges" 'sedns_vip_active 6' "$m"
expect_match "metrics counts the SIGHUP reload" 'sedns_reloads_total\{result="ok"\} 1' "$m"
expect_match "metrics names the upstream" 'sedns_upstream_requests_total\{upstream="127.0.0.1:9",zone="\."\}' "$m"
expect_match "build info" 'sedns_build_info\{version="[^"]+"\} 1' "$m"
r=$(curl -s "127.0.0.1:$MPORT/debug/resolve?host=Api.Stripe.com.")
expect_match "/debug/resolve answers from which ServiceEntry with which VIP" "\"a\": \\[\"$VIP\"\\].*\"namespace\": \"payments\", \"name\": \"stripe-api\"" "$r"
expect_eq "/debug/resolve of an unknown host is 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$MPORT/debug/resolve?host=nope.example")"
h=$(curl -s 127.0.0.1:$MPORT/debug/hosts)
check "/debug/hosts is JSON listing every host" bash -c "echo '$h' | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==8, len(d)'"

# --- live reload under steady load ---------------------------------------------
LOAD="$T_TMP/load.log"
( for i in $(seq 1 400); do
	out=$(dig @127.0.0.1 -p $PORT +time=2 +tries=1 api.stripe.com)
	st=$(echo "$out" | grep -o 'status: [A-Z]*' | awk '{print $2}')
	a=$(echo "$out" | awk '/^api.stripe.com\./{print $5}')
	echo "${st:-TIMEOUT} ${a:-none}"
	sleep 0.01
  done > "$LOAD" ) &
LOADPID=$!; T_PIDS+=("$LOADPID")

cat > "$SE/new.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: newdb, namespace: data}
spec:
  hosts: [newdb.example.net]
  addresses: [198.18.7.7]
  resolution: STATIC
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 198.18.7.8}]
YAML
sleep 0.6
expect_eq "a new file is picked up by inotify" "198.18.7.7" "$(q newdb.example.net)"
sed -i 's/198.18.7.7/198.18.7.9/' "$SE/new.yaml"; sleep 0.6
expect_eq "a rewritten file changes the answer" "198.18.7.9" "$(q newdb.example.net)"
printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: newdb, namespace: data}\nspec:\n  hosts: [newdb.example.net\n' > "$SE/new.yaml"; sleep 0.6
expect_eq "a broken file keeps its last good version" "198.18.7.9" "$(q newdb.example.net)"
expect_match "the break is logged with file:line:col" "error $SE/new.yaml:[0-9]+:[0-9]+:" "$(cat "$T_TMP/sedns.log")"
expect_match "metrics count the kept file" 'sedns_files_kept_last_good 1' "$(curl -s 127.0.0.1:$MPORT/metrics)"
cat > "$SE/new.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: newdb, namespace: data}
spec:
  hosts: [newdb.example.net]
  addresses: [198.18.7.10]
  resolution: STATIC
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 198.18.7.8}]
YAML
sleep 0.6
expect_eq "the fixed file replaces the last good one" "198.18.7.10" "$(q newdb.example.net)"
# invalid (validates badly, parses fine): also kept
sed -i 's/resolution: STATIC/resolution: STATIK/' "$SE/new.yaml"; sleep 0.6
expect_eq "a file that fails validation keeps its last good version" "198.18.7.10" "$(q newdb.example.net)"
mv "$SE/payments.yaml" "$T_TMP/payments.yaml.off"; sleep 0.6
expect_eq "a removed file removes its hosts (forwarded: no answer)" "" "$(q api.stripe.com)"
held=$("$SEDNS" vips --state-dir "$T_TMP/state" | awk '$1=="api.stripe.com"{print $2, $3}')
expect_eq "its VIP goes on hold, not to anyone else" "$VIP held" "$held"
mv "$T_TMP/payments.yaml.off" "$SE/payments.yaml"; sleep 0.6
expect_eq "re-added: same VIP back" "$VIP" "$(q api.stripe.com)"
# the whole directory replaced (ConfigMap-style swap): watches are re-armed
mv "$SE" "$SE.old"; mkdir "$SE"; cp "$SE.old"/*.yaml "$SE/"; sleep 0.6
sed -i 's/198.18.7.10/198.18.7.11/; s/resolution: STATIK/resolution: STATIC/' "$SE/new.yaml"; sleep 0.6
expect_eq "after the directory is replaced, edits in the new one are still picked up" "198.18.7.11" "$(q newdb.example.net)"
rm -rf "$SE.old"
wait "$LOADPID"
n_ok=$(grep -c "^NOERROR $VIP\$" "$LOAD"); n_fwd=$(grep -c "^SERVFAIL none\$" "$LOAD")
check "steady load: 400 queries sent ($(wc -l < "$LOAD") lines)" test "$(wc -l < "$LOAD")" -eq 400
expect_eq "no query went unanswered during reloads" 0 "$(grep -c TIMEOUT "$LOAD")"
check "every answer was the VIP, or (while its file was gone) forwarded to the dead upstream: ok=$n_ok forwarded=$n_fwd" test "$((n_ok + n_fwd))" -eq 400 -a "$n_ok" -ge 100
check "the daemon survived every change" kill -0 "$SEDNS_PID"

# --- SIGHUP re-reads the config file -------------------------------------------
cat > "$T_TMP/c.yaml" <<YAML
listen: ["127.0.0.1:$PORT"]
state_dir: "$T_TMP/state"
serviceentries: ["$SE"]
upstreams: ["127.0.0.1:9"]
ttl: 30
YAML
stop_pid "$SEDNS_PID"
expect_match "STOPPING=1 on SIGTERM" 'STOPPING=1' "$(cat "$T_TMP/notify.log")"
start_sedns "$T_TMP/sedns2.log" -c "$T_TMP/c.yaml"
ttl1=$(dig @127.0.0.1 -p $PORT +noall +answer api.stripe.com | awk '{print $2}')
sed -i 's/^ttl: 30/ttl: 7/' "$T_TMP/c.yaml"; kill -HUP "$SEDNS_PID"; sleep 0.4
ttl2=$(dig @127.0.0.1 -p $PORT +noall +answer api.stripe.com | awk '{print $2}')
expect_eq "TTL before SIGHUP" 30 "$ttl1"
expect_eq "SIGHUP re-reads the config (ttl 7)" 7 "$ttl2"
echo "ttl: [" >> "$T_TMP/c.yaml"; kill -HUP "$SEDNS_PID"; sleep 0.4
expect_eq "a broken config on SIGHUP keeps the running one" 7 "$(dig @127.0.0.1 -p $PORT +noall +answer api.stripe.com | awk '{print $2}')"
expect_match "and says why, with file:line:col" "c.yaml:[0-9]+:[0-9]+:" "$(cat "$T_TMP/sedns2.log")"
stop_pid "$SEDNS_PID"

# --- per-namespace views ---------------------------------------------------------
mkdir -p "$T_TMP/ns"
cat > "$T_TMP/ns/se.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: team-a}
spec:
  hosts: [db.internal]
  addresses: [198.18.9.1]
  exportTo: ["."]
  resolution: STATIC
  ports: [{number: 5432, name: pg, protocol: TCP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shared, namespace: team-b}
spec:
  hosts: [api.example.com]
  addresses: [198.18.9.2]
  exportTo: ["*"]
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mine, namespace: team-a}
spec:
  hosts: [api.example.com]
  addresses: [198.18.9.3]
  exportTo: ["."]
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 10.0.0.3}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: listed, namespace: team-b}
spec:
  hosts: [b-and-c.example.com]
  addresses: [198.18.9.4]
  exportTo: [team-c]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.4}]
YAML
cat > "$T_TMP/pods.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- metadata: {name: a, namespace: team-a}
  status: {phase: Running, podIP: 127.0.0.11, podIPs: [{ip: 127.0.0.11}]}
- metadata: {name: b, namespace: team-b}
  status: {phase: Running, podIP: 127.0.0.12}
- metadata: {name: c, namespace: team-c}
  status: {phase: Running, podIP: 127.0.0.13}
YAML
start_sedns "$T_TMP/sedns3.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state3" --serviceentries "$T_TMP/ns" \
	--workloads "$T_TMP/pods.yaml" --upstream 127.0.0.1:9 --upstream-timeout 200ms --reload-debounce 100ms
qb() { local src=$1; shift; dig @127.0.0.1 -p $PORT -b "$src" +short +time=2 +tries=1 "$@"; }
expect_eq "team-a sees its '.' host" "198.18.9.1" "$(qb 127.0.0.11 db.internal)"
expect_eq "team-b does not (forwarded as unknown)" "" "$(qb 127.0.0.12 db.internal)"
expect_eq "a client not in the pod list sees only '*' hosts" "" "$(qb 127.0.0.99 db.internal)"
expect_eq "host declared in two namespaces: team-a gets its own" "198.18.9.3" "$(qb 127.0.0.11 api.example.com)"
expect_eq "host declared in two namespaces: team-b gets its own" "198.18.9.2" "$(qb 127.0.0.12 api.example.com)"
expect_eq "exportTo a namespace list: team-c sees it" "198.18.9.4" "$(qb 127.0.0.13 b-and-c.example.com)"
expect_eq "exportTo a namespace list: team-a does not" "" "$(qb 127.0.0.11 b-and-c.example.com)"
expect_eq "search expansion in the client's namespace" "198.18.9.2" "$(qb 127.0.0.12 api.example.com.team-b.svc.cluster.local | tail -1)"
expect_eq "search expansion in another namespace is not local" "" "$(qb 127.0.0.12 api.example.com.team-a.svc.cluster.local)"
# the pod list is reloaded like ServiceEntries
sed -i 's/namespace: team-b}/namespace: team-a}/' "$T_TMP/pods.yaml"; sleep 0.6
expect_eq "a changed pod list moves the client to its new namespace" "198.18.9.1" "$(qb 127.0.0.12 db.internal)"
stop_pid "$SEDNS_PID"

# --- per-query log (off by default) ----------------------------------------------
start_sedns "$T_TMP/sedns4.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state4" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms
q api.stripe.com >/dev/null
stop_pid "$SEDNS_PID"
expect_eq "no per-query lines by default" 0 "$(grep -cE '(^|Z )info query ' "$T_TMP/sedns4.log")"
start_sedns "$T_TMP/sedns5.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state4" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms --log-queries
q api.stripe.com >/dev/null; q nothing.example >/dev/null
stop_pid "$SEDNS_PID"
expect_match "--log-queries: one key=value line per local answer" 'query client=127.0.0.1 proto=udp name=api.stripe.com type=A class=IN action=local rcode=NOERROR' "$(cat "$T_TMP/sedns5.log")"
expect_match "--log-queries: and per forwarded query" 'name=nothing.example type=A class=IN action=forward zone=\. upstream=(127.0.0.1:9|none) rcode=SERVFAIL' "$(cat "$T_TMP/sedns5.log")"
# --- debug pages only on loopback ---------------------------------------------------
DPORT=$(free_port)
start_sedns "$T_TMP/sedns7.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state7" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --metrics 0.0.0.0:$MPORT
expect_eq "metrics on a non-loopback address: /metrics still served" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$MPORT/metrics")"
expect_eq "... but /debug/hosts is not (every host and file would be public)" 404 \
	"$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$MPORT/debug/hosts")"
check "... and the log says how to get them" grep -q 'debug pages off: metrics 0.0.0.0:.*set debug_listen' "$T_TMP/sedns7.log"
stop_pid "$SEDNS_PID"
start_sedns "$T_TMP/sedns8.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state7" --serviceentries "$SE" \
	--upstream 127.0.0.1:9 --metrics 0.0.0.0:$MPORT --debug-listen 127.0.0.1:$DPORT
expect_eq "an explicit debug_listen serves /debug/hosts" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$DPORT/debug/hosts")"
expect_eq "... and the metrics address still does not" 404 \
	"$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$MPORT/debug/hosts")"
stop_pid "$SEDNS_PID"
# --- upstreams from resolv.conf, followed by inotify ------------------------------
# A second sedns on 127.0.0.77:53 plays the upstream (resolv.conf has no port).
if [ "$(id -u)" -eq 0 ] && ! ss -Hlnu 'sport = :53' | grep -qE '127\.0\.0\.(77|1):53 |0\.0\.0\.0:53 |\*:53 '; then
	mkdir -p "$T_TMP/up-se"
	sed 's/api.stripe.com/upstream-only.example/' config/serviceentries/payments.yaml > "$T_TMP/up-se/p.yaml"
	"$SEDNS" serve --listen 127.0.0.77:53 --state-dir "$T_TMP/up-state" --serviceentries "$T_TMP/up-se" \
		--upstream 127.0.0.1:9 >"$T_TMP/up.log" 2>&1 &
	UPS=$!; T_PIDS+=("$UPS")
	printf 'nameserver 127.0.0.78\nnameserver 127.0.0.1\n' > "$T_TMP/resolv.conf"
	start_sedns "$T_TMP/sedns6.log" --listen 127.0.0.1:53 --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state6" \
		--serviceentries "$SE" --resolv-conf "$T_TMP/resolv.conf" --upstream-timeout 200ms --reload-debounce 100ms
	expect_match "resolv.conf naming our own listen address: refused as an upstream, with the reason" \
		'upstream refused: 127.0.0.1 port 53 .* is our own listen address' "$(cat "$T_TMP/sedns6.log")"
	expect_eq "only the dead nameserver left: the upstream-only name is not resolved" "" "$(q upstream-only.example)"
	printf '# rewritten\nnameserver 127.0.0.77\n' > "$T_TMP/resolv.conf.new"
	mv "$T_TMP/resolv.conf.new" "$T_TMP/resolv.conf"; sleep 0.6
	expect_match "a rewritten resolv.conf is picked up by inotify: forwarded to the new nameserver" '^240\.240\.' "$(q upstream-only.example)"
	stop_pid "$SEDNS_PID"; stop_pid "$UPS"
else
	ok "# SKIP resolv.conf test needs root and a free 127.0.0.77:53"
fi
finish
