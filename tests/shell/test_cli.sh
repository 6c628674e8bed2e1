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

# extra search suffixes and our EDNS size
PORT=$(free_port)
start_sedns "$T_TMP/suffix.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/s3" --upstream 127.0.0.1:9 \
	--search-suffix corp.example --edns-udp-size 1400 "${fwd[@]}"
out=$(dig @127.0.0.1 -p $PORT +noall +answer api.stripe.com.corp.example)
expect_match "--search-suffix: HOST.corp.example answers CNAME HOST. plus its A" $'CNAME[[:space:]]+api\\.stripe\\.com\\.\n'"api\\.stripe\\.com\\." "$out"
expect_match "--edns-udp-size is what we advertise" 'udp: 1400' "$(dig @127.0.0.1 -p $PORT +bufsize=4096 api.stripe.com)"
stop_pid "$SEDNS_PID"

finish
