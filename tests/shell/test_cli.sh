#!/usr/bin/env bash
# sedns check, sedns vips, sedns serve -n on real files.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

# --- check -------------------------------------------------------------------
out=$("$SEDNS" check config/serviceentries); rc=$?
expect_eq "check config/serviceentries exits 0" 0 "$rc"
expect_match "check prints a summary line" '^[0-9]+ files, [0-9]+ entries, [0-9]+ hosts, 0 errors, [0-9]+ warnings$' "$(echo "$out" | tail -1)"
n=$(echo "$out" | tail -1 | awk '{print $5}')
check "check counts at least 8 hosts in the examples ($n)" test "$n" -ge 8

out=$("$SEDNS" check tests/data/se/negative/traffic-shifting.yaml); rc=$?
expect_eq "traffic-shifting example is rejected (exit 1)" 1 "$rc"
expect_match "rejection names file:line:col, entry and field" 'traffic-shifting.yaml:[0-9]+:[0-9]+: geo/geocoding-primary: spec.endpoints\[0\].address' "$out"
expect_match "rejection says what to use instead" 'resolution: DNS' "$out"
expect_match "summary counts the error" ' [1-9][0-9]* errors' "$(echo "$out" | tail -1)"

out=$("$SEDNS" check tests/data/se/negative/tabs.yaml); rc=$?
expect_eq "YAML with tabs exits 1" 1 "$rc"
expect_match "tab error has a position" 'tabs.yaml:[0-9]+:[0-9]+:' "$out"

out=$("$SEDNS" check tests/data/se/negative/alias-bomb.yaml 2>&1); rc=$?
expect_eq "alias bomb is an error, not a crash" 1 "$rc"

out=$("$SEDNS" check /nonexistent/dir 2>&1); rc=$?
expect_eq "missing path exits 1" 1 "$rc"
expect_match "missing path is named" '/nonexistent/dir' "$out"

# --- strict fields (issue 13 item 1) --------------------------------------------
# kubectl rejects unknown fields; a misspelled resolution would otherwise turn
# the host into resolution NONE (no VIP) with only a warning
mkdir -p "$T_TMP/strict"
se_doc() { # RESOLUTION_KEY PORTS_LINE
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: typo\n  namespace: shop\nspec:\n  hosts: [typo.example.com]\n  %s: DNS\n%s' "$1" "$2"
}
se_doc resolution '  ports: [{number: 443, name: tls, protocol: TLS}]
' > "$T_TMP/strict/se.yaml"
out=$("$SEDNS" check "$T_TMP/strict"); rc=$?
expect_eq "a correct entry checks clean" 0 "$rc"
se_doc resolutoin '  ports: [{number: 443, name: tls, protocol: TLS}]
' > "$T_TMP/strict/se.yaml"
out=$("$SEDNS" check "$T_TMP/strict"); rc=$?
expect_eq "check: an unknown field is an error (exit 1)" 1 "$rc"
expect_match "... with file:line:col and the closest known field" \
	"^error: $T_TMP/strict/se.yaml:8:3: shop/typo: spec.resolutoin: unknown field \(did you mean resolution\?\)" "$out"
se_doc resolution '' > "$T_TMP/strict/np.yaml"
se_doc resolution '  ports: [{number: 443, name: tls, protocol: TLS}]
' > "$T_TMP/strict/se.yaml"
out=$("$SEDNS" check "$T_TMP/strict/np.yaml"); rc=$?
expect_eq "check: missing ports is a warning only (exit 0)" 0 "$rc"
expect_match "... that says what will happen" \
	'^warning: .*np.yaml:7:3: shop/typo: spec.ports: missing: the hosts get a VIP but no DNAT rule, so every connection to the VIP is rejected' "$out"
rm -f "$T_TMP/strict/np.yaml"
# the daemon rejects the entry the same way and keeps its previous version
PORT=$(free_port)
start_sedns "$T_TMP/strict.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/strict-state" --upstream 127.0.0.1:9 \
	--upstream-timeout 200ms --serviceentries "$T_TMP/strict" --reload-debounce 50ms
vip=$(dig @127.0.0.1 -p $PORT +short +time=1 +tries=1 typo.example.com)
expect_match "serve: the correct entry gets a VIP" '^240\.240\.' "$vip"
se_doc resolutoin '  ports: [{number: 443, name: tls, protocol: TLS}]
' > "$T_TMP/strict/se.yaml"
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 30); do grep -q 'resolutoin' "$T_TMP/strict.log" && break; sleep 0.1; done
expect_match "serve: the misspelled field is logged as the same error" \
	'[0-9TZ:.-]+ error [^ ]*se.yaml:8:3: shop/typo: spec.resolutoin: unknown field \(did you mean resolution\?\)' "$(cat "$T_TMP/strict.log")"
expect_eq "serve: every daemon log line has one form: TIME LEVEL message (diagnostics too)" "" \
	"$(grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (error|warn|info|debug) [^:]' "$T_TMP/strict.log" | grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (error|warn|info|debug) /')"
expect_eq "serve: the rejected entry keeps its previous version (same VIP)" "$vip" \
	"$(dig @127.0.0.1 -p $PORT +short +time=1 +tries=1 typo.example.com)"
stop_pid "$SEDNS_PID"

"$SEDNS" check --bogus-flag >/dev/null 2>&1; rc=$?
expect_eq "unknown flag is a usage error (exit 2)" 2 "$rc"

# --- rules.format auto ----------------------------------------------------------
# the node decides: nft where the tool is installed and the kernel filters
# through nf_tables (module loaded, or iptables is iptables-nft)
want=iptables
if command -v nft >/dev/null && { [ -e /sys/module/nf_tables ] || readlink -f "$(command -v iptables 2>/dev/null || echo /nonexistent)" | grep -q nft; }; then
	want=nft
fi
out=$("$SEDNS" serve -n --state-dir /tmp/sedns-auto-x); rc=$?
expect_eq "serve -n with the default rules.format exits 0" 0 "$rc"
expect_match "the default rules.format is auto, resolved to $want on this node" "format: $want"$'\n'"  file: \"/tmp/sedns-auto-x/rules.$want\"" "$out"
out=$("$SEDNS" serve -n --rules-format auto --state-dir /tmp/sedns-auto-x | grep '^  format:')
expect_eq "--rules-format auto is accepted and resolved" "  format: $want" "$out"
out=$("$SEDNS" serve -n --rules-format iptables | grep '^  format:')
expect_eq "an explicit rules.format is kept" "  format: iptables" "$out"
out=$("$SEDNS" serve -n --rules-format pf 2>&1); rc=$?
expect_eq "an unknown rules.format is an error" 2 "$rc"
expect_match "... naming the choices" 'iptables.*nft.*auto' "$out"

# --- serve -n / config -------------------------------------------------------
out=$("$SEDNS" serve -n -c config/sedns.yaml --ttl 7 --listen 127.0.0.1:5999); rc=$?
expect_eq "serve -n exits 0" 0 "$rc"
expect_match "flags win over the file (ttl)" $'\nttl: 7\n' "$out"
expect_match "a list flag replaces the file's list" $'listen:\n  - "127.0.0.1:5999"\nserviceentries' "$out"
expect_match "file values are kept (state_dir)" 'state_dir: "var"' "$out"
# the dev config leaves rules.file to its default: under state_dir, so a
# second instance with its own --state-dir does not overwrite the first's rules
out=$("$SEDNS" serve -n -c config/sedns.yaml --listen 127.0.0.1:5999 --state-dir "$T_TMP/second"); rc=$?
expect_match "config/sedns.yaml: --state-dir moves rules.file with it" $'\n  file: "'"$T_TMP"$'/second/rules\\.(iptables|nft)"\n' "$out"
expect_match "config/sedns.yaml: rules.file defaults under its state_dir" $'\n  file: "var/rules\.(iptables|nft)"\n' \
	"$("$SEDNS" serve -n -c config/sedns.yaml --listen 127.0.0.1:5999)"
expect_eq "config/sedns.yaml keeps rules.apply false" "  apply: false" "$(echo "$out" | grep '^  apply:')"
echo "$out" > "$T_TMP/effective.yaml"
out2=$("$SEDNS" serve -n -c "$T_TMP/effective.yaml"); rc=$?
expect_eq "printed config is accepted back" 0 "$rc"

printf 'listen: [127.0.0.1:5353]\nttll: 5\n' > "$T_TMP/bad.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/bad.yaml" 2>&1); rc=$?
expect_eq "unknown key exits 2" 2 "$rc"
expect_match "unknown key error has file:line:col" 'bad.yaml:2:1: unknown key "ttll"' "$out"
printf 'vip_pool: 240.240.0.1/16\n' > "$T_TMP/bad2.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/bad2.yaml" 2>&1)
expect_match "bad CIDR error has file:line:col" 'bad2.yaml:1:11: vip_pool' "$out"
printf 'rules:\n  format: pf\n' > "$T_TMP/bad3.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/bad3.yaml" 2>&1)
expect_match "bad enum in a nested key names the choices" 'bad3.yaml:2:11: rules.format: "pf" is not one of iptables, nft' "$out"
out=$("$SEDNS" serve -n --vip-hold 5x 2>&1); rc=$?
expect_eq "bad duration flag exits 2" 2 "$rc"
out=$("$SEDNS" serve --help); rc=$?
expect_eq "serve --help exits 0" 0 "$rc"
for k in listen serviceentries state-dir upstream ttl cluster-domain vip-pool vip-pool6 vip-hold allow-from metrics rules-format rules-file rules-apply log-level; do
	expect_match "--help documents --$k" "--$k" "$out"
done

# --- SEDNS_CONFIG: the README's commands after make run (issue 13 item 8) -------
# make run serves config/sedns.yaml from the source tree; with SEDNS_CONFIG
# exported, vips, check and rules read the same file without -c
DP=$(free_port)
sed -e "s|127.0.0.1:5353|127.0.0.1:$DP|" -e "s|^state_dir: var|state_dir: $T_TMP/devstate|" config/sedns.yaml > "$T_TMP/dev.yaml"
PORT=$DP
# (serve gets the file's listen and state_dir as flags too: the same values,
# and a sedns without SEDNS_CONFIG never touches the default /var/lib/sedns)
SEDNS_CONFIG="$T_TMP/dev.yaml" start_sedns "$T_TMP/dev.log" --upstream 127.0.0.1:9 --listen 127.0.0.1:$DP \
	--state-dir "$T_TMP/devstate"
vip=$(dig @127.0.0.1 -p $DP +short +time=1 +tries=1 api.stripe.com)
out=$(SEDNS_CONFIG="$T_TMP/dev.yaml" "$SEDNS" vips); rc=$?
expect_eq "SEDNS_CONFIG: sedns vips without -c reads the served config's store" 0 "$rc"
expect_match "... and lists what serve answers" "api\.stripe\.com +$vip +active" "$out"
out=$(SEDNS_CONFIG="$T_TMP/dev.yaml" "$SEDNS" check); rc=$?
expect_eq "SEDNS_CONFIG: sedns check without -c checks its serviceentries" 0 "$rc"
expect_match "... every one of them" '^6 files, 8 entries' "$(echo "$out" | tail -1)"
out=$(SEDNS_CONFIG="$T_TMP/dev.yaml" "$SEDNS" rules --format iptables); rc=$?
expect_match "SEDNS_CONFIG: sedns rules without -c renders the served VIPs" "-d $vip/32" "$out"
# the API watches are set up at start: a reload that turns them on says so
printf 'kubernetes:\n  in_cluster: true\n' >>"$T_TMP/dev.yaml"
kill -HUP "$SEDNS_PID"
for _ in $(seq 1 30); do grep -q 'kubernetes.\* changes' "$T_TMP/dev.log" && break; sleep 0.1; done
expect_match "a reload that changes kubernetes.* says it takes effect at the next restart" \
	'warn reload: kubernetes\.\* changes take effect at the next restart' "$(cat "$T_TMP/dev.log")"
expect_eq "... and keeps serving" "$vip" "$(dig @127.0.0.1 -p $DP +short +time=1 +tries=1 api.stripe.com)"
stop_pid "$SEDNS_PID"
out=$(SEDNS_CONFIG="$T_TMP/dev.yaml" "$SEDNS" serve -n -c config/sedns.yaml 2>/dev/null | grep '^state_dir')
expect_eq "SEDNS_CONFIG: -c wins over it" 'state_dir: "var"' "$out"
out=$(SEDNS_CONFIG=/nonexistent.yaml "$SEDNS" vips 2>&1); rc=$?
expect_eq "SEDNS_CONFIG naming a missing file is an error" 2 "$rc"
expect_match "... that names the variable" 'came from SEDNS_CONFIG=/nonexistent\.yaml' "$out"
expect_match "--help documents SEDNS_CONFIG" 'SEDNS_CONFIG' "$("$SEDNS" --help)"

# --- serve -n checks what serve checks (issue 13 item 3) ------------------------
out=$("$SEDNS" serve -n --metrics nonsense 2>&1); rc=$?
expect_eq "serve -n --metrics nonsense fails (exit 2, as any bad value)" 2 "$rc"
expect_match "... saying why" '^error: --metrics: "nonsense" is not ADDR:PORT: not an IP address' "$out"
out2=$(timeout 5 "$SEDNS" serve --metrics nonsense --state-dir "$T_TMP/never" 2>&1); rc2=$?
expect_eq "serve fails the same way" "2 $out" "$rc2 $out2"
check "... before it creates anything" test ! -e "$T_TMP/never"
printf 'debug_listen: "127.0.0.1:70000"\n' > "$T_TMP/dl.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/dl.yaml" 2>&1); rc=$?
expect_eq "serve -n: a bad debug_listen in the file fails" 2 "$rc"
expect_match "... with file:line:col and the reason" 'dl.yaml:1:15: debug_listen: "127.0.0.1:70000" is not ADDR:PORT: the port is out of range' "$out"
# 192.0.2.1 (TEST-NET-1) is on no interface: without IP_FREEBIND it cannot be bound
out=$("$SEDNS" serve -n --listen 192.0.2.1:5353 --listen-freebind false 2>&1 >/dev/null); rc=$?
expect_eq "serve -n: a listen address that cannot be bound fails (exit 1)" 1 "$rc"
expect_match "... naming it and why" 'error: cannot listen on udp 192\.0\.2\.1 port 5353: Cannot assign requested address' "$out"
out=$(timeout 5 "$SEDNS" serve --listen 192.0.2.1:5353 --listen-freebind false --state-dir "$T_TMP/nb" 2>&1); rc=$?
expect_eq "serve fails on it too" 1 "$rc"
expect_match "... with the same reason" 'cannot listen on udp 192\.0\.2\.1 port 5353: Cannot assign requested address' "$out"
out=$("$SEDNS" serve -n --listen 192.0.2.1:5353 2>&1 >/dev/null); rc=$?
expect_eq "serve -n: with listen_freebind (the default) it binds" "0 " "$rc $out"
# an address held by another program: a warning (the live daemon holds its own)
HP=$(free_port)
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(10)' "$HP" &
HOLDER=$!; T_PIDS+=("$HOLDER")
for _ in $(seq 1 50); do ss -Hlnt "sport = :$HP" | grep -q . && break; sleep 0.1; done
out=$("$SEDNS" serve -n --metrics 127.0.0.1:$HP 2>&1 >/dev/null); rc=$?
expect_eq "serve -n: a metrics address in use is a warning, not a failure" 0 "$rc"
expect_match "... that names it" "^warning: cannot listen for HTTP on 127\.0\.0\.1:$HP: Address already in use" "$out"
stop_pid "$HOLDER"
# the pre-check beside the running daemon: its listen address is in use, a
# warning; the trial bind does not join the daemon's SO_REUSEPORT group
PORT=$(free_port)
start_sedns "$T_TMP/live.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/live" --upstream 127.0.0.1:9 --serviceentries config/serviceentries
out=$("$SEDNS" serve -n --listen 127.0.0.1:$PORT 2>&1 >/dev/null); rc=$?
expect_eq "serve -n beside the running sedns passes" 0 "$rc"
expect_match "... with a warning that its address is in use" "^warning: cannot listen on udp 127\.0\.0\.1 port $PORT: Address already in use \(the running sedns\?" "$out"
expect_match "... and the daemon still answers" '^240\.240\.' "$(dig @127.0.0.1 -p $PORT +short +time=1 +tries=1 api.stripe.com)"
stop_pid "$SEDNS_PID"

# --- nits (issue 13 item 10) -----------------------------------------------------
out=$("$SEDNS" serve -n --listen 127.0.0.1:99999 2>&1); rc=$?
expect_eq "--listen with port 99999 is a usage error" 2 "$rc"
expect_match "... that says the port is out of range" '^error: --listen: "127\.0\.0\.1:99999" is not ADDR\[:PORT\]: the port is out of range \(1\.\.65535\)$' "$out"
out=$("$SEDNS" rules --format 2>&1); rc=$?
expect_eq "rules --format without a value is a usage error" 2 "$rc"
expect_match "... that says it needs a value" '^error: --format needs a value \(iptables, nft or auto\)$' "$out"
out=$("$SEDNS" serve -n --rules-apply maybe 2>&1); rc=$?
expect_eq "--rules-apply maybe is a usage error" 2 "$rc"
expect_match "... that says it is not a boolean" '^error: --rules-apply: "maybe" is not a boolean' "$out"
expect_eq "--rules-apply alone still means true" "  apply: true" "$("$SEDNS" serve -n --rules-apply --ttl 5 | grep '^  apply:')"
expect_eq "--rules-apply no means false" "  apply: false" "$("$SEDNS" serve -n --rules-apply no | grep '^  apply:')"
printf 'ttl: 5\nrules:\n  apply: false\nttl: 6\n' > "$T_TMP/dup.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/dup.yaml" 2>&1); rc=$?
expect_eq "a key given twice in the config is an error" 2 "$rc"
expect_match "... with file:line:col and the first line" "^error: $T_TMP/dup\.yaml:4:1: duplicate key \"ttl\" \(first at line 1\)$" "$out"
printf 'rules:\n  apply: false\n  apply: true\n' > "$T_TMP/dup2.yaml"
out=$("$SEDNS" serve -n -c "$T_TMP/dup2.yaml" 2>&1)
expect_match "... also in a nested mapping" "^error: $T_TMP/dup2\.yaml:3:3: duplicate key \"rules\.apply\" \(first at line 2\)$" "$out"
mkdir -p "$T_TMP/dupse"
printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: d, namespace: shop}\nspec:\n  hosts: [d.example.com]\n  resolution: DNS\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n' > "$T_TMP/dupse/d.yaml"
out=$("$SEDNS" check "$T_TMP/dupse"); rc=$?
expect_eq "a key given twice in a ServiceEntry is an error" 1 "$rc"
expect_match "... with file:line:col" "^error: $T_TMP/dupse/d\.yaml:8:3: shop/d: spec\.resolution: duplicate key \(first at line 6\)" "$out"
out=$("$SEDNS" serve -n --vip-hold 90m --reload-debounce 1500ms)
expect_match "serve -n prints durations as written: vip_hold: 1h, not 3600000ms" $'\nupstream_timeout: 2s\n' "$out"
expect_match "... in the largest exact unit" $'\nvip_hold: 90m\n' "$out"
expect_match "... down to milliseconds" $'\nreload_debounce: 1500ms\n' "$out"
expect_match "... and a default of an hour is 1h" $'\n  max_ttl: 1h\n' "$out"
echo "$out" > "$T_TMP/durations.yaml"
expect_eq "... in a form that loads back to the same config" "$(echo "$out" | tail -n +2)" \
	"$("$SEDNS" serve -n -c "$T_TMP/durations.yaml" | tail -n +2)"
out=$("$SEDNS" serve -n --tcp-idle-timeout 5ms 2>&1)
expect_match "a duration out of range names its bounds the same way" 'is out of range \(100ms\.\.1h\)' "$out"
# one form for every problem a command prints: "error: ", "warning: " or "note: "
bad=""
for args in "serve -n --bogus" "serve -n --ttl" "serve -n -c /nonexistent.yaml" "serve -n --allow-from 10.0.0.0/8 --allow-from nonsense" \
	"serve -n -c $T_TMP/bad.yaml" "serve -n --listen 127.0.0.1:5353 --upstream 127.0.0.1:5353" "vips --state-dir $T_TMP/nowhere" \
	"rules --format pf" "check $T_TMP/strict/se.yaml" "nosuchcommand" "serve -n --listen 192.0.2.1:5353 --listen-freebind false"; do
	# shellcheck disable=SC2086
	lines=$("$SEDNS" $args 2>&1 >/dev/null | grep -v '^$' | sed -n '1p')
	while IFS= read -r l; do
		[ -z "$l" ] || [[ "$l" =~ ^(error|warning|note):\  ]] || bad+="[$args] $l"$'\n'
	done <<<"$lines"
done
expect_eq "every problem line starts with error:, warning: or note:" "" "$bad"

# --- vips: stable across fresh runs and file order ---------------------------
files=(config/serviceentries/*.yaml)
fwd=(); rev=()
for f in "${files[@]}"; do fwd+=(--serviceentries "$f"); done
for ((i=${#files[@]}-1; i>=0; i--)); do rev+=(--serviceentries "${files[$i]}"); done

run_once() { # STATE_DIR ARGS...: serve until it answers, then stop
	local dir=$1; shift
	PORT=$(free_port)
	start_sedns "$T_TMP/serve.log" --listen 127.0.0.1:$PORT --state-dir "$dir" --upstream 127.0.0.1:9 "$@" || return 1
	stop_pid "$SEDNS_PID"
}
run_once "$T_TMP/s1" "${fwd[@]}"
run_once "$T_TMP/s2" "${rev[@]}"
v1=$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk 'NR>1{print $1, $2, $3}')
v2=$("$SEDNS" vips --state-dir "$T_TMP/s2" | awk 'NR>1{print $1, $2, $3}')
check "vips lists the example hosts" test "$(echo "$v1" | wc -l)" -ge 6
expect_eq "two fresh runs with files in different orders give identical VIPs" "$v1" "$v2"
expect_match "VIPs come from 240.240.0.0/16" 'api.stripe.com 240\.240\.[0-9]+\.[0-9]+ active' "$v1"

# restart keeps VIPs; removing a host puts it on hold, re-adding restores it
run_once "$T_TMP/s1" "${fwd[@]}"
v3=$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk 'NR>1{print $1, $2, $3}')
expect_eq "restart keeps every VIP" "$v1" "$v3"
run_once "$T_TMP/s1" --serviceentries config/serviceentries/legacy.yaml
held=$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk '$1=="api.stripe.com"{print $3}')
expect_eq "a removed host's VIP is held" "held" "$held"
run_once "$T_TMP/s1" "${fwd[@]}"
v4=$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk 'NR>1{print $1, $2, $3}')
expect_eq "re-added host gets the same VIP back" "$v1" "$v4"

json=$("$SEDNS" vips --json --state-dir "$T_TMP/s1")
check "vips --json is valid JSON" bash -c "echo '$json' | /usr/bin/python3 -m json.tool >/dev/null"
expect_match "vips --json has host, vip, state, since" '"host": "api.stripe.com", "vip": "240\.240\.[0-9.]+", "vip6": null, "state": "active", "since": "20' "$json"

# vips works while the daemon runs (read-only transaction)
PORT=$(free_port)
start_sedns "$T_TMP/serve2.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/s1" --upstream 127.0.0.1:9 "${fwd[@]}"
v5=$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk 'NR>1{print $1, $2, $3}')
expect_eq "vips while the daemon runs" "$v1" "$v5"
stop_pid "$SEDNS_PID"

out=$("$SEDNS" vips --state-dir "$T_TMP/none" 2>&1); rc=$?
expect_eq "vips without a store exits 1" 1 "$rc"
expect_match "vips without a store says where it looked" "$T_TMP/none/vips.mdb" "$out"

out=$(timeout 5 "$SEDNS" serve --state-dir "$T_TMP/s1" --vip-pool 10.99.0.0/16 --listen 127.0.0.1:$(free_port) 2>&1); rc=$?
expect_eq "changing the pool against an existing store is refused" 1 "$rc"
expect_match "the refusal names both pools" '240\.240\.0\.0/16.*10\.99\.0\.0/16|10\.99\.0\.0/16.*240\.240\.0\.0/16' "$out"

# --reallocate accepts the changed pool and moves every host into it
PORT=$(free_port)
start_sedns "$T_TMP/realloc.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/s1" --vip-pool 10.99.0.0/16 \
	--reallocate --upstream 127.0.0.1:9 "${fwd[@]}"
expect_match "serve --reallocate moves the hosts into the new pool" '^10\.99\.' "$(dig @127.0.0.1 -p $PORT +short api.stripe.com)"
stop_pid "$SEDNS_PID"
expect_eq "vips shows only the new pool afterwards" "" "$("$SEDNS" vips --state-dir "$T_TMP/s1" | awk 'NR>1 && $2 ~ /^240\./')"

# --- rules where sedns never ran (issue 13 item 11) -----------------------------
out=$("$SEDNS" rules --format iptables --state-dir "$T_TMP/never-ran" "${fwd[@]}" 2>"$T_TMP/rules.err"); rc=$?
expect_eq "rules without a VIP store renders (exit 0)" 0 "$rc"
expect_match "... saying so on stderr" "^note: no VIP store at $T_TMP/never-ran/vips\.mdb \(sedns never ran here\): these rules use the VIPs a first start would allocate" "$(cat "$T_TMP/rules.err")"
check "... read-only: the state directory is not created" test ! -e "$T_TMP/never-ran"
run_once "$T_TMP/first-run" "${fwd[@]}"
expect_eq "... with exactly the VIPs (and rules) a first start gives" "$out" \
	"$("$SEDNS" rules --format iptables --state-dir "$T_TMP/first-run" "${fwd[@]}" 2>/dev/null)"
expect_match "... which are real DNAT rules for the examples" "-d $("$SEDNS" vips --state-dir "$T_TMP/first-run" | awk '$1=="api.stripe.com"{print $2}')/32" "$out"
out=$("$SEDNS" rules --apply --state-dir "$T_TMP/never-ran" "${fwd[@]}" 2>&1); rc=$?
expect_eq "rules --apply without a VIP store refuses (exit 1)" 1 "$rc"
expect_match "... saying to start serve first" 'no VIP store at .*--apply needs the VIPs sedns serves' "$out"
check "... and creates nothing" test ! -e "$T_TMP/never-ran"

# extra search suffixes and our EDNS size
PORT=$(free_port)
start_sedns "$T_TMP/suffix.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/s3" --upstream 127.0.0.1:9 \
	--search-suffix corp.example --edns-udp-size 1400 "${fwd[@]}"
out=$(dig @127.0.0.1 -p $PORT +noall +answer api.stripe.com.corp.example)
expect_match "--search-suffix: HOST.corp.example answers CNAME HOST. plus its A" $'CNAME[[:space:]]+api\\.stripe\\.com\\.\n'"api\\.stripe\\.com\\." "$out"
expect_match "--edns-udp-size is what we advertise" 'udp: 1400' "$(dig @127.0.0.1 -p $PORT +bufsize=4096 api.stripe.com)"
stop_pid "$SEDNS_PID"

finish
