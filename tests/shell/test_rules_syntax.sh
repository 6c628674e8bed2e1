#!/bin/bash
# Rule text syntax test: the rendered iptables-restore / nft payloads must be
# accepted by the real tools. `iptables-restore --test` does not resolve
# targets (an unknown -j passes), so payloads are applied for real inside a
# throwaway network namespace; nft payloads are checked with `nft -c` and
# applied there too. Nothing touches the host's own rule set.
#
# Renders through tests/tools/rulesgen.c (built here with cc + pkg-config)
# from tests/data/se/seed, and checks every golden file in tests/golden.
# Needs root (netns); without it every check is reported as skipped.
# Output: "ok - ..." / "not ok - ..." lines, then "N passed, M failed".
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-cc}
TMP=$(mktemp -d /tmp/sedns-rules-XXXXXX)
NS=sedns-rtest$$
BIN="$TMP/rulesgen"
SEED="$ROOT/tests/data/se/seed"
pass=0
fail=0
netns=

ok() { pass=$((pass + 1)); echo "ok - $*"; }
notok() { fail=$((fail + 1)); echo "not ok - $*"; }
cleanup() {
	[ -n "$netns" ] && ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}

# in_ns CMD...: run inside the test namespace
in_ns() { ip netns exec "$NS" "$@"; }
# own_chains TABLE: sedns chains present in the namespace's TABLE
own_chains() { in_ns iptables-save -t "$1" | sed -n 's/^:\(SEDNS-[^ ]*\) .*/\1/p'; }

if $CC -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$ROOT/include" \
    "$ROOT"/src/log.c "$ROOT"/src/netaddr.c "$ROOT"/src/serviceentry.c "$ROOT"/src/suggest.c \
    "$ROOT"/src/registry.c "$ROOT"/src/bigmem.c "$ROOT"/src/tenancy.c "$ROOT"/src/vipstore.c "$ROOT"/src/rules.c "$ROOT"/src/firewall.c \
    "$ROOT"/tests/tools/rulesgen.c \
    $(pkg-config --cflags --libs yaml-0.1 lmdb ldns libpsl) -o "$BIN" 2>"$TMP/cc.log"; then
	ok "rulesgen builds"
else
	notok "rulesgen builds: $(head -5 "$TMP/cc.log")"
	finish
fi

for f in "" -n; do
	name=iptables; [ "$f" = -n ] && name=nft
	if "$BIN" $f "$SEED" >"$TMP/seed.$name" 2>"$TMP/err" && [ -s "$TMP/seed.$name" ]; then
		ok "render seed ($name)"
	else
		notok "render seed ($name): $(cat "$TMP/err")"
	fi
	"$BIN" $f -m "$SEED" >"$TMP/seedm.$name" 2>/dev/null
	"$BIN" $f "$SEED" >"$TMP/again.$name" 2>/dev/null
	if cmp -s "$TMP/seed.$name" "$TMP/again.$name"; then
		ok "render is deterministic ($name)"
	else
		notok "render is deterministic ($name)"
	fi
done

if [ "$(id -u)" != 0 ] || ! command -v iptables-restore >/dev/null || ! command -v nft >/dev/null ||
    ! ip netns add "$NS" 2>/dev/null; then
	ok "SKIP: needs root, iptables, nft and network namespaces"
	finish
fi
netns=1

# ---- golden files ----
for g in "$ROOT"/tests/golden/*.iptables; do
	b=$(basename "$g")
	if in_ns iptables-restore --noflush <"$g" 2>"$TMP/err"; then
		ok "golden $b applies"
	else
		notok "golden $b applies: $(head -3 "$TMP/err")"
	fi
done
for g in "$ROOT"/tests/golden/*.nft; do
	b=$(basename "$g")
	if in_ns nft -c -f "$g" 2>"$TMP/err"; then
		ok "golden $b passes nft -c"
	else
		notok "golden $b passes nft -c: $(head -3 "$TMP/err")"
	fi
done
# leave a clean namespace for what follows
own_chains nat >"$TMP/existing"
"$BIN" -c -e "$TMP/existing" >"$TMP/cleanup0"
in_ns iptables-restore --noflush <"$TMP/cleanup0" 2>/dev/null

# ---- iptables: apply, re-apply, stale removal, cleanup ----
if in_ns iptables-restore --noflush <"$TMP/seed.iptables" 2>"$TMP/err"; then
	ok "seed rules apply (iptables)"
else
	notok "seed rules apply (iptables): $(head -3 "$TMP/err")"
fi
if in_ns iptables-restore --noflush <"$TMP/seed.iptables" 2>"$TMP/err"; then
	ok "seed rules re-apply over themselves (iptables)"
else
	notok "seed rules re-apply over themselves (iptables): $(head -3 "$TMP/err")"
fi
want=$(grep -c '^:SEDNS-' "$TMP/seed.iptables")
got=$( (own_chains nat; own_chains filter) | wc -l)
if [ "$want" = "$got" ]; then
	ok "every declared chain exists once ($got)"
else
	notok "every declared chain exists once (want $want, got $got)"
fi
want=$(grep -c '^-A ' "$TMP/seed.iptables")
got=$( (in_ns iptables-save -t nat; in_ns iptables-save -t filter) | grep -c '^-A SEDNS-')
if [ "$want" = "$got" ]; then
	ok "re-apply did not duplicate rules ($got)"
else
	notok "re-apply did not duplicate rules (want $want, got $got)"
fi

# a stale service chain (from an older render) jumping to a stale endpoint
printf '*nat\n:SEDNS-SVC-STALESTALESTALE1 - [0:0]\n:SEDNS-SEP-STALESTALESTALE2 - [0:0]\n-A SEDNS-SVC-STALESTALESTALE1 -j SEDNS-SEP-STALESTALESTALE2\nCOMMIT\n' |
    in_ns iptables-restore --noflush
own_chains nat >"$TMP/existing"
"$BIN" -e "$TMP/existing" "$SEED" >"$TMP/stale.iptables"
if in_ns iptables-restore --noflush <"$TMP/stale.iptables" 2>"$TMP/err" &&
    ! own_chains nat | grep -q STALE && own_chains nat | grep -q SEDNS-SERVICES; then
	ok "stale chains removed in the same transaction"
else
	notok "stale chains removed in the same transaction: $(head -3 "$TMP/err")"
fi

if in_ns iptables-restore --noflush <"$TMP/seedm.iptables" 2>"$TMP/err"; then
	ok "masquerade rules apply (iptables)"
else
	notok "masquerade rules apply (iptables): $(head -3 "$TMP/err")"
fi
own_chains nat >"$TMP/existing"
"$BIN" -c -e "$TMP/existing" >"$TMP/cleanup"
if in_ns iptables-restore --noflush <"$TMP/cleanup" 2>"$TMP/err" &&
    [ -z "$(own_chains nat; own_chains filter)" ]; then
	ok "cleanup removes every sedns chain (iptables)"
else
	notok "cleanup removes every sedns chain (iptables): $(head -3 "$TMP/err") left: $(own_chains nat | head -3)"
fi
if in_ns iptables-restore --noflush <"$TMP/cleanup" 2>"$TMP/err"; then
	ok "cleanup is idempotent (iptables)"
else
	notok "cleanup is idempotent (iptables): $(head -3 "$TMP/err")"
fi

# ---- nft ----
for v in seed seedm; do
	if in_ns nft -c -f "$TMP/$v.nft" 2>"$TMP/err"; then
		ok "$v rules pass nft -c"
	else
		notok "$v rules pass nft -c: $(head -3 "$TMP/err")"
	fi
done
if in_ns nft -f "$TMP/seed.nft" 2>"$TMP/err" && in_ns nft -f "$TMP/seedm.nft" 2>>"$TMP/err" &&
    in_ns nft -f "$TMP/seed.nft" 2>>"$TMP/err"; then
	ok "nft table replaces itself atomically"
else
	notok "nft table replaces itself atomically: $(head -3 "$TMP/err")"
fi
n=$(in_ns nft list table ip sedns 2>/dev/null | grep -c 'dnat \(ip \)\?to')
want=$(grep -c 'dnat \(ip \)\?to' "$TMP/seed.nft")
if [ "$n" = "$want" ] && [ "$n" -gt 0 ]; then
	ok "nft table holds the rendered endpoints ($n)"
else
	notok "nft table holds the rendered endpoints (want $want, got $n)"
fi
"$BIN" -n -c >"$TMP/cleanup.nft"
if in_ns nft -f "$TMP/cleanup.nft" 2>"$TMP/err" && ! in_ns nft list table ip sedns >/dev/null 2>&1 &&
    in_ns nft -f "$TMP/cleanup.nft" 2>>"$TMP/err"; then
	ok "nft cleanup removes the table and is idempotent"
else
	notok "nft cleanup removes the table and is idempotent: $(head -3 "$TMP/err")"
fi

finish
