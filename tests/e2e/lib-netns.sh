# Shared world for the sedns e2e tests (sourced after tests/lib.sh, bash, root).
#
#   pod (198.18.0.2/30) ── node (198.18.0.1 | 198.18.0.5) ── ext (198.18.0.6/30
#                                                              + 198.18.1.11-13, .21, .22)
# node runs sedns serve --rules-apply true on 198.18.0.1:53 and the test
# upstream (e2edns, zone file $ZONE) on 127.0.0.1:5300, forwards IP, and has
# its default route towards ext (which does not forward: traffic to a VIP that
# no rule catches is silently black-holed, as on a real node). ext runs the
# tcpecho endpoints ep1..ep3 (198.18.1.11-13), dbA (.21), dbB (.22).
#
# Everything is named after $$ and removed by the EXIT trap: namespaces (and
# with them the veths), /etc/netns/<pod>, and the processes we started.

E2E_ID=$$
NODE=sedns-e2e-$E2E_ID-node
POD=sedns-e2e-$E2E_ID-pod
EXT=sedns-e2e-$E2E_ID-ext
NODE_ADDR=198.18.0.1
POD_ADDR=198.18.0.2
TOOLS=$T_TMP/tools
ZONE=$T_TMP/zone
SE_DIR=$T_TMP/se
STATE=$T_TMP/state
SEDNS_LOG=$T_TMP/sedns.log
E2E_PIDS=()

in_node() { ip netns exec "$NODE" "$@"; }
in_pod() { ip netns exec "$POD" "$@"; }
in_ext() { ip netns exec "$EXT" "$@"; }

# Background process inside a namespace (ip netns exec execs the command, so
# $! is the command's own PID).
bg_in() {
	local ns=$1; shift
	ip netns exec "$ns" "$@" &
	E2E_PIDS+=("$!")
	LAST_PID=$!
}

netns_cleanup() {
	[ -n "${E2E_KEEP_LOG:-}" ] && cp "$SEDNS_LOG" "$E2E_KEEP_LOG" 2>/dev/null
	local p ns
	for p in "${E2E_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${E2E_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "$POD" "$EXT" "$NODE"; do
		ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	t_cleanup
}
trap netns_cleanup EXIT

# Leftovers of earlier runs that died without their trap (their PID is gone).
netns_reap_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sedns-e2e-[0-9]+-(node|pod|ext)$'); do
		pid=${ns#sedns-e2e-}
		pid=${pid%%-*}
		if [ "$pid" != "$E2E_ID" ] && ! kill -0 "$pid" 2>/dev/null; then
			ip netns pids "$ns" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
			rm -rf "/etc/netns/$ns"
		fi
	done
}

netns_require() {
	if [ "$(id -u)" != 0 ]; then
		echo "ok - SKIP: e2e tests need root"
		finish
	fi
	local t
	for t in ip iptables iptables-save nft cc timeout getent; do
		if ! command -v "$t" >/dev/null; then
			notok "required tool missing: $t"
			finish
		fi
	done
}

# Works on a private copy of the sedns binary, so a rebuild while the test
# runs does not pull it away.
netns_build_tools() {
	mkdir -p "$TOOLS"
	local i
	for i in $(seq 1 60); do # a rebuild may be replacing it right now
		[ -x "$SEDNS" ] && break
		sleep 1
	done
	cp "$SEDNS" "$TOOLS/sedns" || return 1
	SEDNS=$TOOLS/sedns
	cc -O1 -o "$TOOLS/tcpecho" "$ROOT/tests/tools/tcpecho.c" &&
		cc -O1 -o "$TOOLS/e2edns" "$ROOT/tests/tools/e2edns.c"
}

netns_setup() {
	netns_reap_stale
	local a=sd${E2E_ID}a b=sd${E2E_ID}b c=sd${E2E_ID}c d=sd${E2E_ID}d
	ip netns add "$NODE" && ip netns add "$POD" && ip netns add "$EXT" || return 1
	# pod <-> node
	ip link add "$a" netns "$POD" type veth peer name "$b" netns "$NODE" || return 1
	in_pod ip addr add $POD_ADDR/30 dev "$a"
	in_pod ip link set "$a" up
	in_pod ip link set lo up
	in_pod ip route add default via $NODE_ADDR
	in_node ip addr add $NODE_ADDR/30 dev "$b"
	in_node ip link set "$b" up
	in_node ip link set lo up
	# node <-> ext
	ip link add "$c" netns "$NODE" type veth peer name "$d" netns "$EXT" || return 1
	in_node ip addr add 198.18.0.5/30 dev "$c"
	in_node ip link set "$c" up
	in_node ip route add 198.18.1.0/24 via 198.18.0.6
	in_node ip route add default via 198.18.0.6
	in_node sysctl -qw net.ipv4.ip_forward=1
	in_ext ip addr add 198.18.0.6/30 dev "$d"
	local x
	for x in 11 12 13 21 22; do in_ext ip addr add 198.18.1.$x/32 dev "$d"; done
	in_ext ip link set "$d" up
	in_ext ip link set lo up
	in_ext ip route add 198.18.0.0/24 via 198.18.0.5
	in_ext sysctl -qw net.ipv4.ip_forward=0
	mkdir -p "/etc/netns/$POD"
	printf 'nameserver %s\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n' \
		$NODE_ADDR >"/etc/netns/$POD/resolv.conf"
}

# The ServiceEntries every scenario uses.
netns_write_serviceentries() {
	mkdir -p "$SE_DIR" "$STATE"
	cat >"$SE_DIR/e2e.yaml" <<'EOF'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static3, namespace: ns1}
spec:
  hosts: [static3.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: tcp-echo, protocol: TCP}
  endpoints:
  - address: 198.18.1.11
  - address: 198.18.1.12
  - address: 198.18.1.13
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: weighted, namespace: ns1}
spec:
  hosts: [weighted.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 81, name: tcp-echo, protocol: TCP}
  endpoints:
  - {address: 198.18.1.11, weight: 80}
  - {address: 198.18.1.12, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: portmap, namespace: ns1}
spec:
  hosts: [portmap.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 8080, name: http, protocol: TCP, targetPort: 9090}
  - {number: 8081, name: alt, protocol: TCP, targetPort: 9092}
  endpoints:
  - address: 198.18.1.11
    ports: {http: 9091}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: failover, namespace: ns1}
spec:
  hosts: [failover.e2e.internal]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 5432, name: tcp-pg, protocol: TCP}
  endpoints:
  - address: db.e2e.test
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: noep, namespace: ns1}
spec:
  hosts: [noep.e2e.internal]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 7000, name: tcp-x, protocol: TCP}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: udpsvc, namespace: ns1}
spec:
  hosts: [udpsvc.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 9953, name: udp-echo, protocol: UDP}
  endpoints:
  - address: 198.18.1.13
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: selfdns, namespace: ns1}
spec:
  hosts: [self.e2e.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 5432, name: tcp-pg, protocol: TCP}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: multi, namespace: ns1}
spec:
  hosts: [multi.e2e.internal]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 5432, name: tcp-pg, protocol: TCP}
  endpoints:
  - address: multi.e2e.test
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: peer, namespace: ns1}
spec:
  hosts: [peer.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 83, name: tcp-peer, protocol: TCP}
  endpoints:
  - address: 198.18.1.13
EOF
	printf '%s\n' "db.e2e.test 198.18.1.21" "self.e2e.test 198.18.1.21" \
		"multi.e2e.test 198.18.1.21 198.18.1.22" >"$ZONE"
}

netns_start_endpoints() {
	local l=() p x
	for p in 80 81 82 9090 9091 9092 9953; do
		for x in 1 2 3; do l+=(-l "ep$x=198.18.1.1$x:$p"); done
	done
	l+=(-l "dbA=198.18.1.21:5432" -l "dbB=198.18.1.22:5432")
	bg_in "$EXT" "$TOOLS/tcpecho" -t 150 "${l[@]}"
	bg_in "$EXT" "$TOOLS/tcpecho" -t 150 -p -l peer=198.18.1.13:83
	bg_in "$NODE" "$TOOLS/e2edns" -a 127.0.0.1 -p 5300 -z "$ZONE" -T 1 -t 150
}

# zone_set NAME ANSWER...: replaces NAME's line in the upstream's zone.
zone_set() {
	local name=$1; shift
	{ grep -v "^$name " "$ZONE"; echo "$name $*"; } >"$ZONE.new" && mv "$ZONE.new" "$ZONE"
}

# sedns_args FORMAT: the serve flags every scenario uses.
METRICS_PORT=9299 # inside the node's namespace: nothing else listens there
sedns_args() {
	SEDNS_ARGS=(--listen $NODE_ADDR:53 --upstream 127.0.0.1:5300 --upstream-timeout 500ms
		--state-dir "$STATE" --serviceentries "$SE_DIR" --allow-from 198.18.0.0/15
		--allow-from 127.0.0.0/8 --rules-apply true --rules-format "$1"
		--rules-min-sync-period 500ms --endpoint-min-ttl 1s --endpoint-max-ttl 2s
		--reload-debounce 100ms --log-level debug --metrics 127.0.0.1:$METRICS_PORT)
}

# start_node_sedns: runs sedns in the node namespace, waits for DNS on :53.
start_node_sedns() {
	local t0=$(date +%s%N) i
	echo "--- start $(date +%T.%N)" >>"$SEDNS_LOG"
	bg_in "$NODE" "$SEDNS" serve "${SEDNS_ARGS[@]}" >>"$SEDNS_LOG" 2>&1
	SEDNS_PID=$LAST_PID
	for i in $(seq 1 50); do
		if in_node dig @$NODE_ADDR +time=1 +tries=1 CH TXT version.bind >/dev/null 2>&1; then
			echo "# sedns answered $((($(date +%s%N) - t0) / 1000000)) ms after start"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

stop_node_sedns() {
	local t0=$(date +%s%N)
	kill "$SEDNS_PID" 2>/dev/null
	wait "$SEDNS_PID" 2>/dev/null
	echo "# sedns stopped $((($(date +%s%N) - t0) / 1000000)) ms after SIGTERM"
	echo "--- stopped $(date +%T.%N)" >>"$SEDNS_LOG"
}

# pod_resolve NAME: first IPv4 address glibc in the pod gets for NAME.
pod_resolve() {
	in_pod timeout 10 getent ahostsv4 "$1" | awk '{print $1; exit}'
}

# pod_conn ADDR:PORT N [-u]: result histogram from the pod (tcpecho client).
pod_conn() {
	local target=$1 n=$2; shift 2
	in_pod timeout 100 "$TOOLS/tcpecho" -c "$target" -n "$n" -w 2000 "$@"
}

# count_of HISTOGRAM RESULT: how many attempts gave RESULT.
count_of() {
	echo "$1" | awk -v r="$2" '{c=$1; $1=""; sub(/^ /,""); if ($0 == r) {print c; f=1}} END {if (!f) print 0}'
}

# firewall_state FORMAT: what sedns owns in the node's firewall.
firewall_state() {
	if [ "$1" = nft ]; then
		in_node nft list table ip sedns 2>&1
	else
		in_node iptables-save 2>&1 | grep SEDNS
	fi
}

# wait_rules FORMAT: until the rules mention every VIP port (max ~10 s).
wait_rules() {
	local i
	for i in $(seq 1 100); do
		if [ "$1" = nft ]; then
			firewall_state nft | grep -qE 'dnat to 198\.18\.1\.21:5432|198\.18\.1\.21 \. 5432' && return 0
		else
			firewall_state iptables | grep -q -- '--to-destination 198.18.1.21:5432' && return 0
		fi
		sleep 0.1
	done
	return 1
}
