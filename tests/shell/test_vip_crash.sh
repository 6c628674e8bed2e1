#!/bin/sh
# Crash test for the VIP store: kill -9 a process that keeps syncing at
# random moments, and after every kill check that the database opens and is
# consistent (name2vip and vip2name agree, no address under two names).
#
# Builds tests/tools/vipstress.c itself (cc + pkg-config) into a temp dir.
# Environment: CC (default cc), KILLS (default 30). SEDNS is not used.
# Output: "ok - ..." / "not ok - ..." lines, then "N passed, M failed".
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-cc}
KILLS=${KILLS:-30}
TMP=$(mktemp -d /tmp/sedns-vipcrash-XXXXXX)
STATE="$TMP/state"
BIN="$TMP/vipstress"
pass=0
fail=0
pid=

ok() { pass=$((pass + 1)); echo "ok - $*"; }
notok() { fail=$((fail + 1)); echo "not ok - $*"; }
cleanup() {
	if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}

# random integer in [0, $1) from /dev/urandom
rnd() {
	n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $((n % $1))
}

if $CC -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/include" \
    "$ROOT/src/vipstore.c" "$ROOT/src/bigmem.c" "$ROOT/src/netaddr.c" "$ROOT/src/log.c" \
    "$ROOT/tests/tools/vipstress.c" \
    $(pkg-config --cflags --libs lmdb) -o "$BIN" 2>"$TMP/cc.log"; then
	ok "vipstress builds"
else
	cat "$TMP/cc.log" >&2
	notok "vipstress builds"
	finish
fi

# A short clean run first: the tool's own checks pass without kills.
if timeout 30 "$BIN" "$STATE" 40 1 2>"$TMP/run.log" &&
    timeout 10 "$BIN" "$STATE" --check >"$TMP/check.log" 2>&1; then
	ok "clean run: $(cat "$TMP/check.log")"
else
	cat "$TMP/run.log" "$TMP/check.log" >&2
	notok "clean run passes its own checks"
fi

start=$(date +%s)
killed=0
bad=0
early=0
i=1
while [ "$i" -le "$KILLS" ]; do
	if [ $(( $(date +%s) - start )) -ge 45 ]; then
		notok "time budget exhausted after $((i - 1)) kills"
		break
	fi
	"$BIN" "$STATE" 1000000 "$((i * 7919 + $(rnd 1000)))" 2>"$TMP/stress.log" &
	pid=$!
	# 20..600 ms: some kills land during open, most inside a sync
	ms=$((20 + $(rnd 580)))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		killed=$((killed + 1))
	else
		# it stopped by itself: that is a failed in-run check
		wait "$pid"
		rc=$?
		early=$((early + 1))
		echo "# stress exited early (rc $rc) on round $i:" >&2
		cat "$TMP/stress.log" >&2
	fi
	pid=
	if ! timeout 10 "$BIN" "$STATE" --check >"$TMP/check.log" 2>&1; then
		bad=$((bad + 1))
		echo "# round $i after ${ms} ms:" >&2
		cat "$TMP/check.log" >&2
	fi
	i=$((i + 1))
done

if [ "$early" -eq 0 ]; then
	ok "stress kept running until each kill ($killed kills)"
else
	notok "stress stopped on its own $early times (in-run check failed)"
fi
if [ "$bad" -eq 0 ] && [ "$killed" -gt 0 ]; then
	ok "database opens read-only and is consistent after each of $killed kills"
else
	notok "database inconsistent or unopenable after $bad of $((i - 1)) kills"
fi

# After all that, a writer opens it, clears stale readers and carries on.
if timeout 30 "$BIN" "$STATE" 30 99 2>"$TMP/run.log" &&
    timeout 10 "$BIN" "$STATE" --check >"$TMP/check.log" 2>&1; then
	ok "writer reopens after the kills and passes its checks: $(cat "$TMP/check.log")"
else
	cat "$TMP/run.log" "$TMP/check.log" >&2
	notok "writer reopens after the kills"
fi

# read-only open of a missing store is a clear error
if out=$("$BIN" "$TMP/nowhere" --check 2>&1); then
	notok "check of a missing store fails"
else
	case "$out" in
	*"no VIP store at $TMP/nowhere/vips.mdb"*) ok "missing store: $out" ;;
	*) notok "missing store message: $out" ;;
	esac
fi

finish
