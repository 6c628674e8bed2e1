#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz): they build with clang and each runs
# briefly from its seed corpus without a crash, leak, UB or timeout. A
# longer run: make fuzz FUZZ_SECONDS=600.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
SECS=${FUZZ_TEST_SECONDS:-8}
if ! command -v clang >/dev/null; then
	notok "clang is installed (scripts/install-deps.sh)"
	finish
fi
if ! make -s -j2 fuzz-build >"$T_TMP/build.log" 2>&1; then
	notok "fuzz targets build ($(tail -3 "$T_TMP/build.log"))"
	finish
fi
ok "fuzz targets build"
for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	out=$(FUZZ_SECONDS=$SECS tests/fuzz/run.sh "$t" 2>&1); rc=$?
	if [ "$rc" -eq 0 ] && [[ "$out" =~ ok,\ ([0-9]+)\ runs ]] && [ "${BASH_REMATCH[1]}" -gt 100 ]; then
		ok "$t: ${BASH_REMATCH[1]} inputs in ${SECS}s, no finding"
	else
		notok "$t: $out"
	fi
done
finish
