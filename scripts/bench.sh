#!/usr/bin/env bash
# DNS benchmark: sedns vs dnsmasq, unbound and dnsdist on loopback,
# measured in the same run (the machine is shared and noisy, so read the
# ratios, not the absolute numbers). Servers and the upstream nsd run on
# CPU 0, dnsperf on CPU 1 (taskset). Scenarios:
#   LOCAL      answers for the example ServiceEntry hosts (+ expansions)
#   FWD-REPEAT forwarded to nsd, 1000 names asked again and again
#   FWD-UNIQUE forwarded to nsd, every name new (a wildcard zone)
# Per row: QPS, and the server's CPU per query (utime+stime from
# /proc/PID/stat over the run, divided by the queries it completed). Then
# sedns's RSS (idle and after the runs) and mallocs per query (valgrind).
#
# Env: BENCH_SECONDS (dnsperf -l, default 10), BENCH_CLIENTS (dnsperf -c,
# default 4), SEDNS (binary, default build/sedns).
# Needs: dnsperf nsd dnsmasq unbound dnsdist dig taskset (valgrind optional).
set -uo pipefail
cd "$(dirname "$0")/.."
SEDNS=${SEDNS:-build/sedns}
SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-4}
TMP=$(mktemp -d /tmp/sedns-bench.XXXXXX)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
for t in dnsperf nsd dnsmasq unbound dnsdist dig taskset; do
	command -v "$t" >/dev/null || die "$t missing (scripts/install-deps.sh)"
done
[ -x "$SEDNS" ] || die "$SEDNS missing (make build/sedns)"

# The Debian packages' own services must not be running.
for d in dnsmasq unbound nsd dnsdist; do
	if pidof "$d" >/dev/null; then
		mine=0
		for p in $(pidof "$d"); do [[ " ${PIDS[*]} " == *" $p "* ]] && mine=1; done
		[ $mine -eq 0 ] && echo "bench: WARNING: a system $d is running (pid $(pidof "$d")); stop it for clean numbers" >&2
	fi
done

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % 22000))  # below the ephemeral range
		if ! ss -Hlnu "sport = :$p" | grep -q . && ! ss -Hlnt "sport = :$p" | grep -q .; then
			echo "$p"; return 0
		fi
	done
	return 1
}
# wait_answer PORT NAME: until NAME resolves on 127.0.0.1:PORT (max ~10 s)
wait_answer() {
	for _ in $(seq 1 100); do
		dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short "$2" A 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# --- upstream: nsd serving bench.test on loopback --------------------------
NPORT=$(free_port)
mkdir -p "$TMP/nsd"
{
	echo '$ORIGIN bench.test.'
	echo '$TTL 300'
	echo '@ IN SOA ns1 hostmaster 1 3600 600 86400 300'
	echo '@ IN NS ns1'
	echo 'ns1 IN A 192.0.2.53'
	for i in $(seq 0 999); do echo "h$i IN A 192.0.2.$((i % 250 + 1))"; done
	echo '*.u IN A 192.0.2.99'
} >"$TMP/nsd/bench.test.zone"
cat >"$TMP/nsd/nsd.conf" <<EOF
server:
  port: $NPORT
  ip-address: 127.0.0.1
  zonesdir: "$TMP/nsd"
  pidfile: "$TMP/nsd/nsd.pid"
  xfrdfile: "$TMP/nsd/xfrd.state"
  zonelistfile: "$TMP/nsd/zone.list"
  database: ""
  username: ""
  chroot: ""
  logfile: "$TMP/nsd/nsd.log"
  server-count: 1
  verbosity: 0
  # no response rate limiting: it is the benchmark's only client
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: bench.test.zone
EOF
taskset -c 0 nsd -d -c "$TMP/nsd/nsd.conf" >"$TMP/nsd/stdout" 2>&1 &
PIDS+=($!)
wait_answer "$NPORT" h1.bench.test || die "nsd did not start: $(tail -3 "$TMP/nsd/nsd.log" "$TMP/nsd/stdout")"

# --- sedns once, to learn the VIPs the peers must serve ----------------------
HOSTS=(api.stripe.com orders-db.abc123.us-east-1.rds.amazonaws.com
	events.analytics-saas.example.com legacy-monitoring.internal
	legacy-session.internal es.example.com api.external-service.com)
SPORT=$(free_port)
SEDNS_ARGS=(serve --listen "127.0.0.1:$SPORT" --state-dir "$TMP/state" -s config/serviceentries
	--upstream "127.0.0.1:$NPORT" --allow-from 127.0.0.1/32 --log-level warn)
"$SEDNS" "${SEDNS_ARGS[@]}" >"$TMP/sedns0.log" 2>&1 &
P=$!; PIDS+=($P)
wait_answer "$SPORT" api.stripe.com || die "sedns did not start: $(tail -5 "$TMP/sedns0.log")"
declare -A VIP
for h in "${HOSTS[@]}"; do
	VIP[$h]=$(dig @127.0.0.1 -p "$SPORT" +short "$h" A | grep -E '^[0-9.]+$' | head -1)
	[ -n "${VIP[$h]}" ] || die "sedns has no VIP for $h"
done
stop "$P"

# --- query files -----------------------------------------------------------
# (an x.y host's expansion x.y.ns1.svc.cluster.local is a name of namespace
# ns1, which sedns leaves to kube-dns: only FQDN hosts' expansions here)
for h in "${HOSTS[@]}"; do
	echo "$h A"; echo "$h AAAA"
	if [[ "$h" == *.*.* ]]; then
		echo "$h.ns1.svc.cluster.local A"; echo "$h.ns1.svc.cluster.local AAAA"
	fi
done >"$TMP/q-local"
for i in $(seq 0 999); do echo "h$i.bench.test A"; done >"$TMP/q-fwd"
# every name new: far more names than any run can send
awk 'BEGIN { for (i = 0; i < 3000000; i++) printf "n%d.u.bench.test A\n", i }' >"$TMP/q-unique"
# exactly 2000 local queries for the valgrind runs
for _ in $(seq 1 72); do cat "$TMP/q-local"; done | head -2000 >"$TMP/q-2000"
for _ in $(seq 1 10); do cat "$TMP/q-fwd"; done >"$TMP/q-fwd-2000"

# --- peer configs ----------------------------------------------------------
# dnsmasq: host-record/cname for the local names (cname needs a known
# target, so host-record, not address=; local=/h/ makes AAAA NODATA instead
# of forwarding it); forwards bench.test to nsd.
dnsmasq_conf() { # FILE PORT CACHESIZE
	{
		echo "port=$2"; echo "listen-address=127.0.0.1"; echo "bind-interfaces"
		echo "no-resolv"; echo "no-hosts"; echo "no-negcache"; echo "pid-file="
		echo "user=root"; echo "server=127.0.0.1#$NPORT"; echo "cache-size=$3"
		echo "dns-forward-max=1000"; echo "local-ttl=30"
		for h in "${HOSTS[@]}"; do
			echo "host-record=$h,${VIP[$h]}"
			echo "local=/$h/"
			echo "cname=$h.ns1.svc.cluster.local,$h"
		done
	} >"$1"
}
# unbound CACHEOPTS: local-data for the names (CNAME for the expansions),
# everything else forwarded to nsd; one thread (sedns is single-threaded).
unbound_conf() { # FILE PORT nocache|cache
	{
		echo "server:"
		echo "  interface: 127.0.0.1"; echo "  port: $2"; echo "  do-daemonize: no"
		echo "  username: \"\""; echo "  chroot: \"\""; echo "  directory: \"$TMP\""
		echo "  pidfile: \"\""; echo "  use-syslog: no"; echo "  logfile: \"\""
		echo "  verbosity: 0"; echo "  num-threads: 1"; echo "  do-ip6: no"
		echo "  access-control: 127.0.0.0/8 allow"; echo "  do-not-query-localhost: no"
		echo "  module-config: \"iterator\""; echo "  domain-insecure: \"bench.test\""
		echo "  local-zone: \"test.\" nodefault"
		if [ "$3" = nocache ]; then
			echo "  msg-cache-size: 1k"; echo "  rrset-cache-size: 1k"
			echo "  cache-max-ttl: 0"; echo "  cache-max-negative-ttl: 0"
			echo "  prefetch: no"
		fi
		for h in "${HOSTS[@]}"; do
			echo "  local-zone: \"$h.\" static"
			echo "  local-data: \"$h. 30 IN A ${VIP[$h]}\""
			echo "  local-zone: \"$h.ns1.svc.cluster.local.\" static"
			echo "  local-data: \"$h.ns1.svc.cluster.local. 30 IN CNAME $h.\""
		done
		echo "forward-zone:"; echo "  name: \"bench.test.\""; echo "  forward-addr: 127.0.0.1@$NPORT"
		echo "remote-control:"; echo "  control-enable: no"
	} >"$1"
}

# dnsdist: a pure proxy to nsd, with or without its packet cache.
dnsdist_conf() { # FILE PORT cache|nocache
	{
		echo "setLocal('127.0.0.1:$2')"
		echo "setACL({'127.0.0.0/8'})"
		echo "newServer({address='127.0.0.1:$NPORT', checkName='h1.bench.test.', checkInterval=60})"
		[ "$3" = cache ] && echo "getPool(''):setCache(newPacketCache(10000, {}))"
		echo "setServerPolicy(firstAvailable)"
	} >"$1"
}

# --- running one server at a time -------------------------------------------
# start_server KIND PORT [variant]: starts it, sets SRV_PID
start_server() {
	local kind=$1 port=$2 var=${3:-}
	case $kind in
	sedns)
		taskset -c 0 "$SEDNS" serve --listen "127.0.0.1:$port" --state-dir "$TMP/state" -s config/serviceentries \
			--upstream "127.0.0.1:$NPORT" --allow-from 127.0.0.1/32 --log-level warn \
			>"$TMP/$kind.$port.log" 2>&1 &
		;;
	dnsmasq)
		dnsmasq_conf "$TMP/dnsmasq.$port.conf" "$port" "$([ "$var" = nocache ] && echo 0 || echo 10000)"
		taskset -c 0 dnsmasq -k -C "$TMP/dnsmasq.$port.conf" >"$TMP/$kind.$port.log" 2>&1 &
		;;
	unbound)
		unbound_conf "$TMP/unbound.$port.conf" "$port" "${var:-cache}"
		taskset -c 0 unbound -d -c "$TMP/unbound.$port.conf" >"$TMP/$kind.$port.log" 2>&1 &
		;;
	dnsdist)
		dnsdist_conf "$TMP/dnsdist.$port.conf" "$port" "${var:-cache}"
		taskset -c 0 dnsdist --supervised --disable-syslog -C "$TMP/dnsdist.$port.conf" \
			>"$TMP/$kind.$port.log" 2>&1 &
		;;
	esac
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	local probe=api.stripe.com
	[ "$kind" = dnsdist ] && probe=h1.bench.test
	wait_answer "$port" "$probe" || die "$kind did not start: $(tail -5 "$TMP/$kind.$port.log")"
}

declare -a ROWS
CLK=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime of a process (fields 14 and 15)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# run_dnsperf PORT QUERYFILE PID: prints "qps avg_latency_ms lost cpu_us_per_query"
run_dnsperf() {
	local out qps lat lost done c0 c1
	c0=$(cpu_ticks "$3")
	out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$SECS" -c "$CLIENTS" -t 2 2>&1)
	c1=$(cpu_ticks "$3")
	qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
	lat=$(echo "$out" | awk '/Average Latency/ {printf "%.3f", $4 * 1000}')
	lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
	done=$(echo "$out" | awk '/Queries completed/ {print $3}')
	echo "${qps:-0} ${lat:-nan} ${lost:-?} $(awk -v a="$c0" -v b="$c1" -v n="${done:-0}" -v hz="$CLK" \
		'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1e6 / hz / n; else print "nan" }')"
}
# bench NAME SCENARIO KIND VARIANT QUERYFILE
bench() {
	local name=$1 scen=$2 kind=$3 var=$4 qf=$5 port r pid
	port=$(free_port)
	if [ "$kind" = nsd ]; then
		port=$NPORT
		pid=$(cat "$TMP/nsd/nsd.pid" 2>/dev/null || echo 0)
	else
		start_server "$kind" "$port" "$var"
		pid=$SRV_PID
	fi
	# short warm-up (fills caches of the caching peers); not for unique names
	[ "$scen" = FWD-UNIQUE ] || dnsperf -s 127.0.0.1 -p "$port" -d "$qf" -n 1 >/dev/null 2>&1
	r=$(run_dnsperf "$port" "$qf" "$pid")
	if [ "$kind" = sedns ]; then
		SEDNS_RSS[$scen]=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
	fi
	[ "$kind" = nsd ] || stop "$SRV_PID"
	ROWS+=("$name|$scen|$r")
	echo "bench: $name $scen: $r" >&2
}

echo "# sedns DNS benchmark, $(date -u +%FT%TZ), $(nproc) cores, dnsperf -l $SECS -c $CLIENTS (queries unbounded), loopback"
echo "# peers: dnsmasq $(dnsmasq -v | awk 'NR==1{print $3}'), unbound $(unbound -V 2>/dev/null | awk '/^Version/{print $2}'), dnsdist $(dnsdist --version 2>/dev/null | awk 'NR==1{print $2}'), nsd $(nsd -v 2>&1 | awk '{print $3; exit}') upstream"
echo "# CoreDNS: not packaged in Debian, not measured. Servers and nsd on CPU 0, dnsperf on CPU 1."
echo
declare -A SEDNS_RSS
# idle RSS of sedns with its default config (one file of ServiceEntries)
port=$(free_port); start_server sedns "$port"; sleep 0.5
IDLE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$SRV_PID/status"); stop "$SRV_PID"

bench sedns LOCAL sedns "" "$TMP/q-local"
bench dnsmasq LOCAL dnsmasq "" "$TMP/q-local"
bench unbound LOCAL unbound cache "$TMP/q-local"
bench "nsd(direct)" FWD-REPEAT nsd "" "$TMP/q-fwd"
bench sedns FWD-REPEAT sedns "" "$TMP/q-fwd"
bench "dnsmasq(cache)" FWD-REPEAT dnsmasq "" "$TMP/q-fwd"
bench "unbound(cache)" FWD-REPEAT unbound cache "$TMP/q-fwd"
bench "dnsdist(packet cache)" FWD-REPEAT dnsdist cache "$TMP/q-fwd"
bench sedns FWD-UNIQUE sedns "" "$TMP/q-unique"
bench "dnsdist(no cache)" FWD-UNIQUE dnsdist nocache "$TMP/q-unique"
bench "unbound(cache)" FWD-UNIQUE unbound cache "$TMP/q-unique"
bench "dnsmasq(cache)" FWD-UNIQUE dnsmasq "" "$TMP/q-unique"

# --- table -----------------------------------------------------------------
declare -A BASE
for row in "${ROWS[@]}"; do
	IFS='|' read -r n s r <<<"$row"
	[ "$n" = sedns ] && BASE[$s]=${r%% *}
done
declare -A BASECPU
for row in "${ROWS[@]}"; do
	IFS='|' read -r n s r <<<"$row"
	[ "$n" = sedns ] && BASECPU[$s]=$(awk '{print $4}' <<<"$r")
done
echo "LOCAL      = local answers (${#HOSTS[@]} ServiceEntry hosts + .ns1.svc.cluster.local expansions, A+AAAA)"
echo "FWD-REPEAT = forwarded to nsd, 1000 names in bench.test asked over and over (caches on)"
echo "FWD-UNIQUE = forwarded to nsd, every query a new name (*.u.bench.test)"
printf '%-24s %-11s %10s %12s %8s %12s %10s %12s\n' server scenario qps "lat (ms)" lost "cpu us/q" "qps/sedns" "cpu/sedns"
for row in "${ROWS[@]}"; do
	IFS='|' read -r n s r <<<"$row"
	read -r q l lost cpu <<<"$r"
	ratio=$(awk -v a="$q" -v b="${BASE[$s]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
	cratio=$(awk -v a="$cpu" -v b="${BASECPU[$s]:-0}" 'BEGIN { if (b > 0 && a == a + 0) printf "%.2f", a / b; else print "n/a" }')
	printf '%-24s %-11s %10s %12s %8s %12s %10s %12s\n' "$n" "$s" "$q" "$l" "$lost" "$cpu" "$ratio" "$cratio"
done
echo
echo "sedns RSS: idle ${IDLE_RSS} kB (default config, one ServiceEntry directory); after LOCAL ${SEDNS_RSS[LOCAL]:-?} kB, after FWD-REPEAT ${SEDNS_RSS[FWD-REPEAT]:-?} kB, after FWD-UNIQUE (cache full: cache.size entries) ${SEDNS_RSS[FWD-UNIQUE]:-?} kB"
echo

# --- mallocs per query under valgrind -------------------------------------
# heap_allocs QUERYFILE: starts sedns under memcheck, sends the file once,
# stops it, prints valgrind's "total heap usage" alloc count.
heap_allocs() {
	local port log p
	port=$(free_port)
	log="$TMP/vg.$port.log"
	valgrind --tool=memcheck --log-file="$log" "$SEDNS" serve --listen "127.0.0.1:$port" \
		--state-dir "$TMP/state" -s config/serviceentries --upstream "127.0.0.1:$NPORT" \
		--allow-from 127.0.0.1/32 --log-level warn >"$TMP/vg.$port.out" 2>&1 &
	p=$!; PIDS+=($p)
	wait_answer "$port" api.stripe.com || { echo "?"; stop $p; return; }
	dnsperf -s 127.0.0.1 -p "$port" -d "$1" -n 1 -c 1 -q 20 -t 5 >"$log.dnsperf" 2>&1
	kill -TERM "$p"; wait "$p" 2>/dev/null
	echo "$(awk '/total heap usage/ { gsub(",", "", $5); print $5 }' "$log")" \
		"$(awk '/Queries completed/ { print $3 }' "$log.dnsperf")"
}
if command -v valgrind >/dev/null; then
	cat "$TMP/q-2000" "$TMP/q-2000" >"$TMP/q-4000"
	cat "$TMP/q-fwd-2000" "$TMP/q-fwd-2000" >"$TMP/q-fwd-4000"
	read -r a2 ac2 <<<"$(heap_allocs "$TMP/q-2000")"; read -r a4 ac4 <<<"$(heap_allocs "$TMP/q-4000")"
	read -r f2 fc2 <<<"$(heap_allocs "$TMP/q-fwd-2000")"; read -r f4 fc4 <<<"$(heap_allocs "$TMP/q-fwd-4000")"
	echo "sedns heap allocations (valgrind memcheck 'total heap usage' at exit; answered = dnsperf 'Queries completed')"
	printf '%-10s %22s %22s %14s\n' kind "allocs (answered)" "allocs (answered)" "mallocs/query"
	row() { printf '%-10s %22s %22s %14s\n' "$1" "$2 ($3)" "$4 ($5)" \
		"$(awk -v a="$2" -v b="$4" -v x="$3" -v y="$5" 'BEGIN{ if (y > x) printf "%.2f", (b-a)/(y-x); else print "n/a" }')"; }
	row local "$a2" "$ac2" "$a4" "$ac4"
	row forwarded "$f2" "$fc2" "$f4" "$fc4"
else
	echo "valgrind not installed: mallocs per query not measured"
fi
