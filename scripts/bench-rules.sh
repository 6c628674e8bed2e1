#!/usr/bin/env bash
# Rules benchmark: seconds to render and to apply sedns's DNAT rules for
# N VIP:ports (3 STATIC endpoints each), iptables and nft, each apply in a
# fresh network namespace: first apply, a second apply with no change,
# cleanup; the daemon's own applies in a netns (first, one endpoint
# changed, one host added, a SIGHUP with nothing changed); and, as the baseline, the bare tool (iptables-restore / nft -f)
# loading the same rendered file (sedns's iptables output is kube-proxy
# shaped: SERVICES -> SVC (statistic random) -> SEP (DNAT) chains).
#
# Usage: scripts/bench-rules.sh [N...]   (default: 1000 10000; needs root)
# Env: SEDNS (default build/sedns), APPLY_TIMEOUT (seconds, default 120), FORMATS (default "iptables nft").
set -uo pipefail
cd "$(dirname "$0")/.."
SEDNS=${SEDNS:-build/sedns}
LIMIT=${APPLY_TIMEOUT:-120}
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000 10000)
TMP=$(mktemp -d /tmp/sedns-bench-rules.XXXXXX)
NSS=()
PIDS=()
cleanup() {
	local x
	for x in "${PIDS[@]}"; do kill "$x" 2>/dev/null; wait "$x" 2>/dev/null; done
	for x in "${NSS[@]}"; do ip netns del "$x" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench-rules: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (ip netns, iptables, nft)"
for t in ip iptables-restore nft dig; do command -v "$t" >/dev/null || die "$t missing"; done
[ -x "$SEDNS" ] || die "$SEDNS missing (make build/sedns)"

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % 22000))  # below the ephemeral range
		ss -Hlnu "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}
now() { date +%s.%N; }
el() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

NSN=0
new_ns() { NSN=$((NSN + 1)); CUR_NS="sedns-bench-$$-$NSN"; ip netns add "$CUR_NS" || die "ip netns add"; NSS+=("$CUR_NS"); }
del_ns() { ip netns del "$1" 2>/dev/null; }

# timed LABEL CMD...: runs CMD (bounded by LIMIT), prints seconds or
# "TIMEOUT"/"FAIL(rc)"; the command's output goes to $TMP/last.log
timed() {
	local t0 t1 rc
	t0=$(now)
	timeout "$LIMIT" "$@" >"$TMP/last.log" 2>&1
	rc=$?
	t1=$(now)
	if [ $rc -eq 124 ]; then echo "TIMEOUT(>${LIMIT}s)"
	elif [ $rc -ne 0 ]; then echo "FAIL(rc=$rc)"; sed 's/^/  | /' "$TMP/last.log" | head -5 >&2
	else el "$t0" "$t1"; fi
}

ROWS=()
row() { ROWS+=("$(printf '%-7s %-9s %-40s %s' "$1" "$2" "$3" "$4")"); echo "bench-rules: $1 $2 $3 $4" >&2; }

for n in "${SIZES[@]}"; do
	d="$TMP/n$n"; mkdir -p "$d"
	scripts/gen-serviceentries.sh "$n" >"$d/se.yaml"
	ARGS=(--state-dir "$d/state" -s "$d/se.yaml")
	# allocate the VIPs: serve until it answers, then stop it
	port=$(free_port)
	t0=$(now)
	"$SEDNS" serve --listen "127.0.0.1:$port" "${ARGS[@]}" --upstream 127.0.0.1:9 \
		--upstream-timeout 100ms --log-level warn >"$d/serve.log" 2>&1 &
	sp=$!; PIDS+=($sp)
	up=0
	for _ in $(seq 1 600); do
		dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 "svc$((n - 1)).bench.example" A 2>/dev/null | grep -q '^240\.' && { up=1; break; }
		sleep 0.1
	done
	t1=$(now)
	kill "$sp"; wait "$sp" 2>/dev/null
	[ $up -eq 1 ] || die "sedns serve never answered for N=$n: $(tail -3 "$d/serve.log")"
	row "$n" "-" "serve: start + allocate until answering" "$(el "$t0" "$t1")"

	for fmt in ${FORMATS:-iptables nft}; do
		F=(--format "$fmt")
		row "$n" "$fmt" "render (sedns rules > file)" "$(timed sh -c "\"$SEDNS\" rules ${F[*]} ${ARGS[*]} > \"$d/rules.$fmt\"")"
		row "$n" "$fmt" "  rendered lines" "$(wc -l <"$d/rules.$fmt")"

		new_ns; ns=$CUR_NS
		r1=$(timed ip netns exec "$ns" "$SEDNS" rules "${F[@]}" "${ARGS[@]}" --apply)
		row "$n" "$fmt" "apply, fresh netns" "$r1"
		if [[ $r1 == TIMEOUT* ]]; then
			row "$n" "$fmt" "(stopped this size: apply > ${LIMIT}s)" "-"
			del_ns "$ns"; continue
		fi
		if [ "$fmt" = iptables ]; then
			cnt=$(ip netns exec "$ns" iptables-save 2>/dev/null | grep -c '^-A SEDNS-')
		else
			cnt=$(ip netns exec "$ns" nft list table ip sedns 2>/dev/null | grep -c 'dnat \(ip \)\?to')
		fi
		row "$n" "$fmt" "  rules in kernel (SEDNS -A / dnat)" "$cnt"
		row "$n" "$fmt" "apply again, no change" "$(timed ip netns exec "$ns" "$SEDNS" rules "${F[@]}" "${ARGS[@]}" --apply)"
		row "$n" "$fmt" "cleanup (--cleanup)" "$(timed ip netns exec "$ns" "$SEDNS" rules "${F[@]}" "${ARGS[@]}" --cleanup)"
		left=$( (ip netns exec "$ns" iptables-save 2>/dev/null; ip netns exec "$ns" nft list ruleset 2>/dev/null) | grep -ci sedns)
		row "$n" "$fmt" "  lines naming sedns after cleanup" "$left"
		del_ns "$ns"

		# the daemon in a netns: first apply, then one endpoint changed and
		# one host added (SIGHUP each), then a SIGHUP with nothing changed
		new_ns; ns=$CUR_NS
		ip netns exec "$ns" ip link set lo up
		rm -rf "$d/state-$fmt"; cp -r "$d/state" "$d/state-$fmt"
		cp "$d/se.yaml" "$d/se-$fmt.yaml"
		dlog="$d/daemon-$fmt.log"; : >"$dlog"
		ip netns exec "$ns" "$SEDNS" serve --listen "127.0.0.1:$(free_port)" --state-dir "$d/state-$fmt" \
			-s "$d/se-$fmt.yaml" --rules-apply true --rules-format "$fmt" --upstream 127.0.0.1:9 \
			--rules-apply-timeout "${LIMIT}s" >"$dlog" 2>&1 &
		dp=$!; PIDS+=($dp)
		# wait_applied N: until the log has N "rules applied" lines; prints
		# the wall seconds waited, then the last line's mode and duration
		wait_applied() {
			local t0 t1
			t0=$(now)
			for _ in $(seq 1 $((LIMIT * 20))); do
				[ "$(grep -c 'rules applied' "$dlog")" -ge "$1" ] && break
				grep -q 'rules apply failed' "$dlog" && break
				sleep 0.05
			done
			t1=$(now)
			if [ "$(grep -c 'rules applied' "$dlog")" -ge "$1" ]; then
				echo "$(el "$t0" "$t1") ($(grep 'rules applied' "$dlog" | tail -1 | grep -oE 'mode=[a-z]+ bytes=[0-9]+|duration_ms=[0-9]+' | tr '\n' ' '))"
			else
				echo "FAIL: $(grep -m1 'rules apply failed' "$dlog" | cut -c1-120)"
			fi
		}
		row "$n" "$fmt" "daemon: start to first apply (s)" "$(wait_applied 1)"
		sed -i '0,/198\.18\.0\.1$/s//198.19.250.1/' "$d/se-$fmt.yaml"
		kill -HUP "$dp"
		row "$n" "$fmt" "daemon: one endpoint changed -> applied" "$(wait_applied 2)"
		printf -- '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: added, namespace: bench}\nspec:\n  hosts: [added.bench.example]\n  location: MESH_EXTERNAL\n  ports: [{number: 8000, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints: [{address: 198.19.251.1}]\n' >>"$d/se-$fmt.yaml"
		kill -HUP "$dp"
		row "$n" "$fmt" "daemon: one host added -> applied" "$(wait_applied 3)"
		kill -HUP "$dp"
		sleep 3
		row "$n" "$fmt" "daemon: SIGHUP, nothing changed: applies" "$(($(grep -c 'rules applied' "$dlog") - 3))"
		kill "$dp"; wait "$dp" 2>/dev/null
		del_ns "$ns"

		# baseline: the bare tool loading the same file in a fresh netns
		new_ns; ns=$CUR_NS
		if [ "$fmt" = iptables ]; then
			row "$n" "$fmt" "baseline: iptables-restore -n < file" "$(timed ip netns exec "$ns" sh -c "iptables-restore -n < \"$d/rules.$fmt\"")"
		else
			row "$n" "$fmt" "baseline: nft -f file" "$(timed ip netns exec "$ns" nft -f "$d/rules.$fmt")"
		fi
		del_ns "$ns"
	done
done

echo "# sedns rules benchmark, $(date -u +%FT%TZ), $(nproc) cores, $(iptables -V), $(nft -v)"
echo "# N VIP:ports = N ServiceEntries x 1 TCP port x 3 STATIC endpoints (scripts/gen-serviceentries.sh)"
printf '%-7s %-9s %-40s %s\n' N format step seconds
for r in "${ROWS[@]}"; do echo "$r"; done
