#!/usr/bin/env bash
# Bad input never takes the daemon down: tens of thousands of malformed UDP
# packets and broken TCP streams, then the daemon must still answer, under
# the normal build and (when SANITIZE_BIN is built) under ASan + UBSan.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
mkdir -p build/tools
cc -O2 -Wall -Werror -o build/tools/pktfuzz tests/tools/pktfuzz.c || { notok "build pktfuzz"; finish; }

run_one() { # LABEL BINARY
	local label=$1 bin=$2
	PORT=$(free_port)
	SEDNS="$bin" start_sedns "$T_TMP/$label.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/$label-state" \
		--serviceentries config/serviceentries --upstream 127.0.0.1:9 --upstream-timeout 100ms \
		--tcp-idle-timeout 300ms --max-pending 64
	local vip
	vip=$(dig @127.0.0.1 -p $PORT +short api.stripe.com)
	timeout 120 build/tools/pktfuzz 127.0.0.1 $PORT 20000 $RANDOM
	check "$label: still running after 20000 malformed packets and 400 broken TCP streams" kill -0 "$SEDNS_PID"
	expect_eq "$label: still answers correctly" "$vip" "$(dig @127.0.0.1 -p $PORT +short +time=2 +tries=2 api.stripe.com)"
	expect_eq "$label: still answers over TCP" "$vip" "$(dig @127.0.0.1 -p $PORT +short +tcp +time=2 +tries=2 api.stripe.com)"
	stop_pid "$SEDNS_PID"
	if grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T_TMP/$label.log"; then
		notok "$label: sanitizer report"; grep -E -A12 "ERROR: AddressSanitizer|runtime error:" "$T_TMP/$label.log" | head -40
	else
		ok "$label: no sanitizer report"
	fi
}

run_one plain "$SEDNS"
if [ "${SANITIZE_TESTS:-1}" = 1 ]; then
	if make -s SANITIZE=1 build-san/sedns >/dev/null 2>&1; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 run_one sanitized "$ROOT/build-san/sedns"
	else
		notok "sanitizer build"
	fi
fi
finish
