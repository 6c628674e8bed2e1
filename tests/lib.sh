# Shared helpers for sedns shell-level tests (sourced, bash).
# Every test prints "ok - ..." / "not ok - ..." and ends with
# "N passed, M failed" via finish.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEDNS=${SEDNS:-$ROOT/build/sedns}
T_PASS=0
T_FAIL=0
T_PIDS=()
T_TMP=$(mktemp -d /tmp/sedns-test-XXXXXX)

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
notok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }
# check DESCRIPTION COMMAND...: ok when the command succeeds
check() { local d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else notok "$1 (expected '$2', got '$3')"; fi
}
# expect_match DESCRIPTION REGEX TEXT
expect_match() {
	if [[ "$3" =~ $2 ]]; then ok "$1"; else notok "$1 (no match for /$2/ in: $(echo "$3" | head -5))"; fi
}

t_cleanup() {
	local p
	for p in "${T_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

finish() {
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}

# A free port on loopback (UDP and TCP both unused right now), below the
# kernel's ephemeral range so an outgoing socket cannot take it meanwhile.
free_port() {
	local p lo
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$lo" ] && [ "$lo" -gt 11000 ] || lo=32768
	for _ in $(seq 1 50); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! ss -Hlnu "sport = :$p" | grep -q . && ! ss -Hlnt "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# wait_udp ADDR PORT: until something answers DNS there (max ~5 s)
wait_dns() {
	local i
	for i in $(seq 1 50); do
		if dig @"$1" -p "$2" +time=1 +tries=1 CH TXT version.bind >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# start_sedns LOGFILE ARGS...: runs "sedns serve ARGS" in the background,
# sets SEDNS_PID, waits until it answers on $PORT (the caller sets PORT and
# passes --listen 127.0.0.1:$PORT or a config that does).
start_sedns() {
	local log=$1; shift
	"$SEDNS" serve "$@" >"$log" 2>&1 &
	SEDNS_PID=$!
	T_PIDS+=("$SEDNS_PID")
	wait_dns "${SEDNS_ADDR:-127.0.0.1}" "$PORT"
}

stop_pid() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
