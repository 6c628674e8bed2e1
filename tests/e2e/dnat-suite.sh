# The VIP → DNAT → endpoint scenarios, run once per rules format by
# test_dnat_iptables.sh and test_dnat_nft.sh (sourced after lib.sh and
# lib-netns.sh). run_dnat_suite FORMAT.

# pct COUNT TOTAL: integer percentage.
pct() { echo $(($1 * 100 / $2)); }

# in_range DESC VALUE LO HI
in_range() {
	if [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]; then ok "$1 ($2)"; else notok "$1 ($2 not in [$3, $4])"; fi
}

run_dnat_suite() {
	SECONDS=0
	local fmt=$1 other h vip
	[ "$fmt" = nft ] && other=iptables || other=nft
	netns_require
	# setup failures end the script: nothing after them could pass
	fatal() { notok "$1"; finish; }
	netns_build_tools && ok "[$fmt] tools compile, sedns binary copied" || fatal "[$fmt] tools compile, sedns binary copied"
	netns_setup && ok "[$fmt] namespaces and veths set up" || fatal "[$fmt] namespaces and veths set up"
	netns_write_serviceentries
	netns_start_endpoints
	sedns_args "$fmt"
	if ! start_node_sedns; then
		cat "$SEDNS_LOG"
		fatal "[$fmt] sedns serves DNS in the node namespace"
	fi
	ok "[$fmt] sedns serves DNS in the node namespace"
	wait_rules "$fmt" && ok "[$fmt] rules applied (DNS endpoint resolved, DNAT to 198.18.1.21)" ||
		fatal "[$fmt] rules applied (DNS endpoint resolved, DNAT to 198.18.1.21)"
	if [ "$fmt" = nft ]; then
		expect_eq "[$fmt] no iptables SEDNS chains with format nft" "" "$(in_node iptables-save | grep SEDNS)"
	else
		check "[$fmt] no nft sedns table with format iptables" bash -c "! ip netns exec $NODE nft list table ip sedns >/dev/null 2>&1"
	fi

	# --- resolution from the pod: search list + ndots:5 through sedns
	echo "# t=${SECONDS}s: resolution from the pod: search list + ndots:5 through sedns"
	local vips
	vips=$(timeout 10 "$SEDNS" vips --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	local static_vip
	static_vip=$(pod_resolve static3.e2e.internal)
	expect_match "[$fmt] static3 resolves to a VIP in the pod" '^240\.240\.[0-9]+\.[0-9]+$' "$static_vip"
	expect_match "[$fmt] ... the VIP sedns vips lists for it" "static3\.e2e\.internal.*$static_vip([^0-9]|$)|$static_vip[^0-9].*static3\.e2e\.internal" "$vips"
	declare -A VIP
	for h in weighted portmap failover noep udpsvc multi peer; do
		VIP[$h]=$(pod_resolve $h.e2e.internal)
		expect_match "[$fmt] $h resolves to a VIP" '^240\.240\.[0-9]+\.[0-9]+$' "${VIP[$h]}"
	done

	# --- control: traffic to a VIP no rule knows is black-holed (so the
	echo "# t=${SECONDS}s: control: traffic to a VIP no rule knows is black-holed (so the"
	# fast failures below are sedns's doing, not routing's)
	local r
	r=$(in_pod timeout 10 "$TOOLS/tcpecho" -c 240.240.255.254:80 -n 1 -w 1000)
	expect_match "[$fmt] control: unknown 240.240.255.254:80 times out" 'ERR connect timeout' "$r"

	# --- STATIC, three endpoints, 300 connections
	echo "# t=${SECONDS}s: STATIC, three endpoints, 300 connections"
	local h300 c1 c2 c3
	h300=$(pod_conn "$static_vip:80" 300)
	c1=$(count_of "$h300" ep1:80)
	c2=$(count_of "$h300" ep2:80)
	c3=$(count_of "$h300" ep3:80)
	expect_eq "[$fmt] static3: all 300 connections reach an endpoint" 300 $((c1 + c2 + c3))
	in_range "[$fmt] static3: ep1 share % in [20,47]" "$(pct "$c1" 300)" 20 47
	in_range "[$fmt] static3: ep2 share % in [20,47]" "$(pct "$c2" 300)" 20 47
	in_range "[$fmt] static3: ep3 share % in [20,47]" "$(pct "$c3" 300)" 20 47

	# --- weights 80/20 over 500 connections
	echo "# t=${SECONDS}s: weights 80/20 over 500 connections"
	local h500 w1 w2
	h500=$(pod_conn "${VIP[weighted]}:81" 500)
	w1=$(count_of "$h500" ep1:81)
	w2=$(count_of "$h500" ep2:81)
	expect_eq "[$fmt] weighted: all 500 connections reach an endpoint" 500 $((w1 + w2))
	in_range "[$fmt] weighted: ep1 (weight 80) share % in [72,88]" "$(pct "$w1" 500)" 72 88
	in_range "[$fmt] weighted: ep2 (weight 20) share % in [12,28]" "$(pct "$w2" 500)" 12 28

	# --- port remapping
	echo "# t=${SECONDS}s: port remapping"
	r=$(pod_conn "${VIP[portmap]}:8080" 5)
	expect_eq "[$fmt] portmap: VIP:8080 lands on endpoints[].ports http=9091 (not targetPort 9090)" 5 "$(count_of "$r" ep1:9091)"
	r=$(pod_conn "${VIP[portmap]}:8081" 5)
	expect_eq "[$fmt] portmap: VIP:8081 lands on targetPort 9092" 5 "$(count_of "$r" ep1:9092)"

	# --- UDP
	echo "# t=${SECONDS}s: UDP"
	r=$(pod_conn "${VIP[udpsvc]}:9953" 5 -u)
	expect_eq "[$fmt] udp: 5 datagrams to VIP:9953 answered by ep3:9953" 5 "$(count_of "$r" ep3:9953)"

	# --- fast failures: no endpoints, undeclared TCP and UDP ports
	echo "# t=${SECONDS}s: fast failures: no endpoints, undeclared TCP and UDP ports"
	local ms
	r=$(pod_conn "${VIP[noep]}:7000" 3)
	expect_match "[$fmt] noep (NXDOMAIN endpoint): connection refused" '^3 ERR Connection refused' "$r"
	ms=$(echo "$r" | awk '/^MAXMS/ {print $2}')
	in_range "[$fmt] noep: refused within 1000 ms" "${ms:-99999}" 0 999
	r=$(pod_conn "$static_vip:81" 3)
	expect_match "[$fmt] undeclared TCP port on a VIP: connection refused" '^3 ERR Connection refused' "$r"
	ms=$(echo "$r" | awk '/^MAXMS/ {print $2}')
	in_range "[$fmt] undeclared TCP port: refused within 1000 ms" "${ms:-99999}" 0 999
	r=$(pod_conn "$static_vip:81" 3 -u)
	expect_match "[$fmt] undeclared UDP port on a VIP: port unreachable (refused)" '^3 ERR Connection refused' "$r"
	ms=$(echo "$r" | awk '/^MAXMS/ {print $2}')
	in_range "[$fmt] undeclared UDP port: refused within 1000 ms" "${ms:-99999}" 0 999

	# --- DNS resolution failover: db.e2e.test A → B
	echo "# t=${SECONDS}s: DNS resolution failover: db.e2e.test A → B"
	r=$(pod_conn "${VIP[failover]}:5432" 3)
	expect_eq "[$fmt] failover: VIP:5432 reaches dbA (198.18.1.21)" 3 "$(count_of "$r" dbA:5432)"
	zone_set db.e2e.test 198.18.1.22
	local t0 t1 seen=""
	t0=$(date +%s%N)
	for _ in $(seq 1 40); do
		r=$(pod_conn "${VIP[failover]}:5432" 1)
		if [ "$(count_of "$r" dbB:5432)" = 1 ]; then
			seen=1
			break
		fi
		sleep 0.25
	done
	t1=$(date +%s%N)
	if [ -n "$seen" ]; then
		ok "[$fmt] failover: new connections reach dbB after $(((t1 - t0) / 1000000)) ms"
	else
		notok "[$fmt] failover: still not on dbB after $(((t1 - t0) / 1000000)) ms (last: $(echo "$r" | head -1))"
	fi
	in_range "[$fmt] failover: switched within 10 s (ms)" $(((t1 - t0) / 1000000)) 0 10000
	r=$(pod_conn "${VIP[failover]}:5432" 10)
	expect_eq "[$fmt] failover: then every connection reaches dbB" 10 "$(count_of "$r" dbB:5432)"

	# --- the host itself resolved upstream (no endpoints), A → B
	echo "# t=${SECONDS}s: the host itself resolved upstream (no endpoints), A → B"
	local self_vip
	self_vip=$(pod_resolve self.e2e.test)
	expect_match "[$fmt] self.e2e.test (DNS, no endpoints) resolves to a VIP, not the upstream's address" '^240\.240\.' "$self_vip"
	r=$(pod_conn "$self_vip:5432" 3)
	expect_eq "[$fmt] self: VIP:5432 reaches the host's own upstream address (dbA)" 3 "$(count_of "$r" dbA:5432)"
	zone_set self.e2e.test 198.18.1.22
	seen=""
	t0=$(date +%s%N)
	for _ in $(seq 1 40); do
		r=$(pod_conn "$self_vip:5432" 1)
		[ "$(count_of "$r" dbB:5432)" = 1 ] && { seen=1; break; }
		sleep 0.25
	done
	t1=$(date +%s%N)
	expect_eq "[$fmt] self: follows the upstream to dbB within 10 s ($(((t1 - t0) / 1000000)) ms)" 1 "${seen:-0}"

	# --- several A records: every address is an endpoint
	echo "# t=${SECONDS}s: several A records: every address is an endpoint"
	r=$(pod_conn "${VIP[multi]}:5432" 60)
	in_range "[$fmt] multi (2 A records): dbA gets some of 60" "$(count_of "$r" dbA:5432)" 10 50
	in_range "[$fmt] multi (2 A records): dbB gets some of 60" "$(count_of "$r" dbB:5432)" 10 50

	# --- a failing re-resolution keeps the last known addresses
	echo "# t=${SECONDS}s: a failing re-resolution keeps the last known addresses"
	zone_set db.e2e.test servfail
	sleep 3 # several TTL (1 s) cycles
	r=$(pod_conn "${VIP[failover]}:5432" 5)
	expect_eq "[$fmt] upstream SERVFAIL for db.e2e.test: connections still reach dbB" 5 "$(count_of "$r" dbB:5432)"
	zone_set db.e2e.test drop
	sleep 3
	r=$(pod_conn "${VIP[failover]}:5432" 5)
	expect_eq "[$fmt] upstream silent for db.e2e.test: connections still reach dbB" 5 "$(count_of "$r" dbB:5432)"
	zone_set db.e2e.test 198.18.1.22

	# --- `sedns rules` prints what the daemon applied (same inputs, same
	echo "# t=${SECONDS}s: sedns rules prints what the daemon applied (same inputs, same"
	# upstream answers), and the jumps exist once each
	local rules_file=$STATE/rules.$fmt printed
	printed=$(in_node timeout 20 "$SEDNS" rules --format "$fmt" --state-dir "$STATE" --serviceentries "$SE_DIR" \
		--upstream 127.0.0.1:5300 2>/dev/null)
	if [ -s "$rules_file" ] && [ "$printed" == "$(cat "$rules_file")" ]; then
		ok "[$fmt] sedns rules prints exactly the daemon's $rules_file"
	else
		notok "[$fmt] sedns rules differs from the daemon's $rules_file"
		diff <(echo "$printed") "$rules_file" | head -10
	fi
	if [ "$fmt" = iptables ]; then
		expect_eq "[$fmt] jumps to SEDNS-SERVICES: nat PREROUTING and OUTPUT, once each, only for the VIP pool" \
			"-A OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES,-A PREROUTING -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-SERVICES" \
			"$(in_node iptables-save -t nat | grep -- '-j SEDNS-SERVICES' | sort | paste -sd,)"
		expect_eq "[$fmt] jumps to SEDNS-FILTER: filter FORWARD, INPUT and OUTPUT, once each, only for the VIP pool" \
			"-A FORWARD -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER,-A INPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER,-A OUTPUT -d 240.240.0.0/16 -m comment --comment sedns -j SEDNS-FILTER" \
			"$(in_node iptables-save -t filter | grep -- '-j SEDNS-FILTER' | sort | paste -sd,)"
	fi

	# --- the node itself (nat OUTPUT / filter OUTPUT)
	echo "# t=${SECONDS}s: the node itself (nat OUTPUT / filter OUTPUT)"
	r=$(in_node timeout 20 "$TOOLS/tcpecho" -c "$static_vip:80" -n 30 -w 2000)
	expect_eq "[$fmt] from the node: 30 connections to VIP:80 reach an endpoint" 30 \
		$(($(count_of "$r" ep1:80) + $(count_of "$r" ep2:80) + $(count_of "$r" ep3:80)))
	r=$(in_node timeout 20 "$TOOLS/tcpecho" -c "${VIP[udpsvc]}:9953" -n 3 -u -w 2000)
	expect_eq "[$fmt] from the node: UDP VIP:9953 answered by ep3" 3 "$(count_of "$r" ep3:9953)"
	r=$(in_node timeout 20 "$TOOLS/tcpecho" -c "$static_vip:81" -n 2 -w 2000)
	expect_match "[$fmt] from the node: undeclared port refused" '^2 ERR Connection refused' "$r"
	ms=$(echo "$r" | awk '/^MAXMS/ {print $2}')
	in_range "[$fmt] from the node: refused within 1000 ms" "${ms:-99999}" 0 999

	# --- reload: a ServiceEntry added at runtime, then removed
	echo "# t=${SECONDS}s: reload: a ServiceEntry added at runtime, then removed"
	local nchains_before late_vip
	nchains_before=$(firewall_state "$fmt" | grep -cE 'SEDNS-S(VC|EP)-|chain s(vc|ep)_')
	cat >"$SE_DIR/late.yaml" <<'EOF'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: late, namespace: ns1}
spec:
  hosts: [late.e2e.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 82, name: tcp-late, protocol: TCP}
  endpoints:
  - address: 198.18.1.12
EOF
	late_reachable() {
		local i
		for i in $(seq 1 "$1"); do
			late_vip=$(pod_resolve late.e2e.internal)
			if [[ "$late_vip" == 240.240.* ]]; then
				r=$(pod_conn "$late_vip:82" 1)
				[ "$(count_of "$r" ep2:82)" = 1 ] && return 0
			fi
			sleep 0.25
		done
		return 1
	}
	late_gone() {
		local i
		for i in $(seq 1 "$1"); do
			firewall_state "$fmt" | grep -q late.e2e.internal || return 0
			sleep 0.25
		done
		return 1
	}
	if late_reachable 24; then
		ok "[$fmt] reload (file watch): a ServiceEntry added at runtime is reachable through its VIP within 6 s"
	else
		notok "[$fmt] reload (file watch): a ServiceEntry added at runtime is not reachable after 6 s"
		kill -HUP "$SEDNS_PID"
		check "[$fmt] reload (SIGHUP): a ServiceEntry added at runtime is reachable through its VIP" late_reachable 24
	fi
	# the runtime change went to the kernel as a delta, and the kernel
	# holds what a full apply of the same rules would give
	local fresh=sedns-e2e-fresh-$$
	ip netns add "$fresh"
	if [ "$fmt" = nft ]; then
		check "[nft] the added ServiceEntry was applied incrementally" \
			grep -qE 'rules applied format=nft mode=incremental .*chains=\+1~0-0' "$SEDNS_LOG"
		ip netns exec "$fresh" nft -f "$STATE/rules.nft"
		expect_eq "[nft] after the delta the kernel table equals a fresh full apply (lines sorted)" \
			"$(ip netns exec "$fresh" nft list table ip sedns | sort)" "$(firewall_state nft | sort)"
	else
		# one SVC and one SEP chain, one SEDNS-SERVICES rule appended
		if grep -qE 'rules applied format=iptables mode=incremental .*chains=\+2~0-0 rules=\+[0-9]+-0' "$SEDNS_LOG"; then
			ok "[iptables] the added ServiceEntry was applied incrementally (its 2 chains and rules only)"
		else
			notok "[iptables] the added ServiceEntry was applied incrementally (its 2 chains and rules only)"
			grep 'rules applied' "$SEDNS_LOG" | sed 's/^/#   /'
		fi

		ip netns exec "$fresh" iptables-restore --noflush "$STATE/rules.iptables"
		# the hooks' jumps are not in the rules file; the per-VIP
		# chains' order is free, so lines are compared sorted
		expect_eq "[iptables] after the delta the kernel's SEDNS chains equal a fresh full apply (lines sorted)" \
			"$(ip netns exec "$fresh" iptables-save | grep SEDNS | grep -vE '^-A (PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD) ' | sort)" \
			"$(firewall_state iptables | grep -vE '^-A (PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD) ' | sort)"
	fi
	ip netns del "$fresh"
	rm -f "$SE_DIR/late.yaml"
	if late_gone 24; then
		ok "[$fmt] reload (file watch): its rules are gone within 6 s of the file's removal"
	else
		notok "[$fmt] reload (file watch): its rules are still there 6 s after the file's removal"
		kill -HUP "$SEDNS_PID"
		check "[$fmt] reload (SIGHUP): its rules are gone" late_gone 24
	fi
	r=$(pod_conn "$late_vip:82" 1 -w 1500)
	expect_match "[$fmt] a removed host's held VIP is refused at once, not black-holed" '^1 ERR Connection refused' "$r"
	[ "$fmt" = nft ] && check "[nft] the removal was applied incrementally" \
		grep -qE 'rules applied format=nft mode=incremental .*chains=\+0~0-1' "$SEDNS_LOG"
	[ "$fmt" = iptables ] && check "[iptables] the removal was applied incrementally (2 chains gone, its rule out)" \
		grep -qE 'rules applied format=iptables mode=incremental .*chains=\+0~0-2 rules=\+[0-9]+-[1-9]' "$SEDNS_LOG"
	expect_eq "[$fmt] reload: no stale service/endpoint chains left" "$nchains_before" \
		"$(firewall_state "$fmt" | grep -cE 'SEDNS-S(VC|EP)-|chain s(vc|ep)_')"
	r=$(pod_conn "$static_vip:80" 10)
	expect_eq "[$fmt] reload: other VIPs unaffected" 10 $(($(count_of "$r" ep1:80) + $(count_of "$r" ep2:80) + $(count_of "$r" ep3:80)))

	# --- restart: an open connection survives; rules and VIPs identical
	echo "# t=${SECONDS}s: restart: an open connection survives; rules and VIPs identical"
	local before_fw before_vips after_fw after_vips persist_pid persist_out=$T_TMP/persist.out
	before_fw=$(firewall_state "$fmt")
	local applied_before
	applied_before=$(grep -c 'rules applied' "$SEDNS_LOG")
	before_vips=$(timeout 10 "$SEDNS" vips --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	in_pod timeout 30 "$TOOLS/tcpecho" -c "$static_vip:80" -P 6 >"$persist_out" 2>&1 &
	persist_pid=$!
	E2E_PIDS+=("$persist_pid")
	sleep 1
	stop_node_sedns
	sleep 0.5
	check "[$fmt] restart: sedns starts again" start_node_sedns
	local i
	for i in $(seq 1 50); do # the first sync verifies what the kernel holds
		grep -qE 'rules: (the kernel holds|applying in full)' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	local last_run
	last_run=$(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG")
	expect_match "[$fmt] restart: the kernel's rules are verified and adopted, not re-applied" \
		'rules: the kernel holds what the previous process applied \(verified by fingerprint\); nothing to apply' "$last_run"
	expect_eq "[$fmt] restart: no apply after a restart with nothing changed" "$applied_before" "$(grep -c 'rules applied' "$SEDNS_LOG")"
	expect_match "[$fmt] restart: the metric counts the adoption" 'sedns_rule_applies_total\{mode="adopted"\} 1' \
		"$(in_node curl -s "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null)"
	wait "$persist_pid"
	local prc=$?
	expect_match "[$fmt] restart: the open connection kept working: $(cat "$persist_out")" '^PERSIST ep[123]:80 ok=[0-9]{2,} fail=0' "$(cat "$persist_out")"
	expect_eq "[$fmt] restart: persistent client exit status" 0 "$prc"
	after_fw=$(firewall_state "$fmt")
	# deltas add chains (nft) and per-VIP rule groups (iptables) at the
	# end; a full apply writes them in render order: the same rules,
	# listed in another order
	before_fw=$(sort <<<"$before_fw")
	after_fw=$(sort <<<"$after_fw")
	after_vips=$(timeout 10 "$SEDNS" vips --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	if [ "$before_fw" == "$after_fw" ] && [ -n "$after_fw" ]; then
		ok "[$fmt] restart: firewall state identical ($(echo "$after_fw" | wc -l) lines)"
	else
		notok "[$fmt] restart: firewall state differs"
		diff <(echo "$before_fw") <(echo "$after_fw") | head -20
	fi
	expect_eq "[$fmt] restart: sedns vips identical" "$before_vips" "$after_vips"
	expect_eq "[$fmt] restart: static3 still resolves to the same VIP" "$static_vip" "$(pod_resolve static3.e2e.internal)"
	r=$(pod_conn "$static_vip:80" 20)
	expect_eq "[$fmt] restart: new connections still DNATed" 20 $(($(count_of "$r" ep1:80) + $(count_of "$r" ep2:80) + $(count_of "$r" ep3:80)))

	# --- rules deleted by hand: repaired by the periodic full resync, and a
	# start does not adopt a kernel that changed while sedns was stopped
	echo "# t=${SECONDS}s: rules deleted by hand come back"
	local full_before
	delete_one_rule() {
		if [ "$fmt" = nft ]; then
			local ch h
			read -r ch h < <(in_node nft -a list table ip sedns | awk '/^[[:space:]]*chain /{c=$2; next}
				/^[[:space:]]*(map|set|table|type) /{next} /# handle/ && c {print c, $NF; exit}')
			in_node nft delete rule ip sedns "$ch" handle "$h"
		else
			in_node iptables -t nat -D SEDNS-SERVICES 1
		fi
	}
	stop_node_sedns
	sedns_args "$fmt"
	SEDNS_ARGS+=(--rules-resync-period 3s)
	start_node_sedns
	for i in $(seq 1 50); do
		grep -q 'rules: the kernel holds' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	full_before=$(grep -c 'rules applied .*mode=full' "$SEDNS_LOG")
	check "[$fmt] resync: a rule deleted by hand" delete_one_rule
	if [ "$(firewall_state "$fmt" | sort)" != "$before_fw" ]; then ok "[$fmt] resync: ... is missing from the kernel"
	else notok "[$fmt] resync: ... is missing from the kernel"; fi
	for i in $(seq 1 80); do
		[ "$(grep -c 'rules applied .*mode=full' "$SEDNS_LOG")" -gt "$full_before" ] && break
		sleep 0.1
	done
	expect_eq "[$fmt] resync: a full apply within the resync period (3 s)" "$((full_before + 1))" \
		"$(grep -c 'rules applied .*mode=full' "$SEDNS_LOG")"
	expect_eq "[$fmt] resync: the kernel holds every rule again" "$before_fw" "$(firewall_state "$fmt" | sort)"
	# the kernel is listed once it is idle after an apply: a stop before
	# that records nothing and the next start applies in full anyway
	for i in $(seq 1 80); do
		grep -q 'rules: kernel fingerprint taken' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	stop_node_sedns
	check "[$fmt] stopped: a rule deleted by hand" delete_one_rule
	sedns_args "$fmt"
	start_node_sedns
	for i in $(seq 1 50); do
		grep -qE 'rules applied' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	last_run=$(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG")
	expect_match "[$fmt] start after a change by hand: not adopted, applied in full" \
		"rules: applying in full \\(the kernel's rules changed since the last stop\\)" "$last_run"
	expect_eq "[$fmt] start after a change by hand: the kernel holds every rule again" "$before_fw" "$(firewall_state "$fmt" | sort)"
	# a change by hand while sedns runs is not adopted by the next start
	for i in $(seq 1 80); do
		grep -q 'rules: kernel fingerprint taken' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	check "[$fmt] running: a rule deleted by hand" delete_one_rule
	stop_node_sedns
	expect_match "[$fmt] stop after a change by hand: no fingerprint recorded, and it says why" \
		"rules: the kernel's rules changed since the last apply" "$(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG")"
	start_node_sedns
	for i in $(seq 1 50); do
		grep -qE 'rules applied' <(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG") && break
		sleep 0.1
	done
	expect_match "[$fmt] ... so the next start applies in full" "rules: applying in full \\(no fingerprint from a clean stop\\)" \
		"$(sed -n '/^--- start/h;//!H;${x;p}' "$SEDNS_LOG")"
	expect_eq "[$fmt] ... and the kernel holds every rule again" "$before_fw" "$(firewall_state "$fmt" | sort)"

	# --- client address: kept by default; masquerade on, then off again
	echo "# t=${SECONDS}s: client address: kept by default; masquerade on, then off again"
	r=$(pod_conn "${VIP[peer]}:83" 2)
	expect_eq "[$fmt] no masquerade: the endpoint sees the pod's address" 2 "$(count_of "$r" "peer:83 from $POD_ADDR")"
	local applied
	restart_sedns() { # restart_sedns EXTRA-FLAGS...: waits for a new "rules applied"
		applied=$(grep -c 'rules applied' "$SEDNS_LOG")
		stop_node_sedns
		sedns_args "$fmt"
		SEDNS_ARGS+=("$@")
		start_node_sedns || return 1
		local i
		for i in $(seq 1 50); do
			[ "$(grep -c 'rules applied' "$SEDNS_LOG")" -gt "$applied" ] && return 0
			sleep 0.1
		done
		return 1
	}
	check "[$fmt] masquerade: restart with --rules-masquerade true applies rules" restart_sedns --rules-masquerade true
	r=$(pod_conn "${VIP[peer]}:83" 2)
	expect_eq "[$fmt] masquerade: the endpoint sees the node's address" 2 "$(count_of "$r" "peer:83 from 198.18.0.5")"
	in_ext ip route del 198.18.0.0/24 via 198.18.0.5
	r=$(pod_conn 198.18.1.11:80 1 -w 1000)
	expect_match "[$fmt] masquerade: control: ext has no route back to the pod now" '^1 ERR' "$r"
	r=$(pod_conn "$static_vip:80" 10)
	expect_eq "[$fmt] masquerade: VIP connections work although ext cannot route to the pod" 10 \
		$(($(count_of "$r" ep1:80) + $(count_of "$r" ep2:80) + $(count_of "$r" ep3:80)))
	in_ext ip route add 198.18.0.0/24 via 198.18.0.5
	check "[$fmt] masquerade off: restart without it applies rules" restart_sedns
	r=$(pod_conn "${VIP[peer]}:83" 2)
	expect_eq "[$fmt] masquerade off: the endpoint sees the pod's address again" 2 "$(count_of "$r" "peer:83 from $POD_ADDR")"
	if [ "$fmt" = nft ]; then
		expect_eq "[$fmt] masquerade off: no masquerade left in table ip sedns" "" "$(firewall_state nft | grep -i masq)"
	else
		expect_eq "[$fmt] masquerade off: no SEDNS masquerade chain or jump left" "" "$(firewall_state iptables | grep -E 'MASQ|POSTROUTING')"
	fi
	if grep -qiE 'rules.*(fail|error)' "$SEDNS_LOG"; then
		notok "[$fmt] sedns logged no rule apply failure: $(grep -iE 'rules.*(fail|error)' "$SEDNS_LOG" | tail -2)"
	else
		ok "[$fmt] sedns logged no rule apply failure"
	fi

	# --- cleanup
	echo "# t=${SECONDS}s: cleanup"
	stop_node_sedns
	r=$(in_node timeout 20 "$SEDNS" rules --format "$fmt" --cleanup --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	expect_eq "[$fmt] sedns rules --cleanup exits 0" "0" "$?"
	if [ "$fmt" = nft ]; then
		check "[$fmt] cleanup: table ip sedns is gone" bash -c "! ip netns exec $NODE nft list table ip sedns >/dev/null 2>&1"
	fi
	expect_eq "[$fmt] cleanup: no SEDNS chain or jump left in iptables" "" "$(in_node iptables-save | grep -i sedns)"
	expect_eq "[$fmt] cleanup: no sedns table left in nft" "" "$(in_node nft list ruleset | grep -i sedns)"
	r=$(pod_conn "$static_vip:80" 1 -w 1000)
	expect_match "[$fmt] cleanup: the VIP is black-holed again" 'ERR connect timeout' "$r"
	local out
	out=$(in_node timeout 20 "$SEDNS" rules --format "$fmt" --cleanup --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	expect_eq "[$fmt] cleanup twice is harmless (exit 0)" "0" "$?"
	# rules applied in the other format (an operator's one-off, or a
	# rules.format change) are removed by a cleanup run with this one
	local other=nft
	[ "$fmt" = nft ] && other=iptables
	in_node timeout 20 "$SEDNS" rules --format "$other" --apply --state-dir "$STATE" --serviceentries "$SE_DIR" >/dev/null 2>&1
	expect_match "[$fmt] rules --apply --format $other put sedns rules in the kernel" 'sedns|SEDNS' \
		"$(in_node iptables-save; in_node nft list ruleset)"
	out=$(in_node timeout 20 "$SEDNS" rules --format "$fmt" --cleanup --state-dir "$STATE" --serviceentries "$SE_DIR" 2>&1)
	expect_eq "[$fmt] cleanup with --format $fmt exits 0" "0" "$?"
	expect_eq "[$fmt] ... and removes the $other rules too" "" "$(in_node iptables-save | grep -i sedns; in_node nft list ruleset | grep -i sedns)"
	[ "$T_FAIL" -gt 0 ] && { echo "--- sedns log (tail)"; tail -30 "$SEDNS_LOG"; }
}
