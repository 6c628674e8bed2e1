#!/usr/bin/env bash
# State integrity of the VIP store: one daemon per state directory (a
# second one exits, or with --state-lock wait serves read-only until the
# first one exits), a full disk (serving goes on, new hosts are forwarded,
# a restart starts), corruption (truncated, emptied, bit-flipped: a clear
# error or a restore from the backup, never a crash, never a changed VIP).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/fu.sh"
cd "$ROOT"

fu_build || { notok "fakeupstream builds"; finish; }
UPORT=$(free_port)
fu_start "$UPORT" -l /dev/null || { notok "fakeupstream starts"; finish; }
PORT=$(free_port)
PORT2=$(free_port)
MPORT=$(free_port)
MPORT2=$(free_port)

# ServiceEntries: one host per file, names under .test so that a forwarded
# answer (fakeupstream: 192.0.2.N) is told apart from a VIP (240.240.x.y)
se_file() { # DIR NAME HOST
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s, namespace: st}\nspec:\n  hosts: [%s]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]\n' \
		"$2" "$3" >"$1/$2.yaml"
}
mkdir -p "$T_TMP/se-a" "$T_TMP/se-b"
for i in 1 2 3; do se_file "$T_TMP/se-a" "a$i" "a$i.test"; se_file "$T_TMP/se-b" "a$i" "a$i.test"; done
se_file "$T_TMP/se-b" b1 b1.test
q() { dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 "$2" | tail -1; }
metric() { curl -s "127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
vips() { "$SEDNS" vips --state-dir "$1" 2>&1; }
common=(--upstream "127.0.0.1:$UPORT" --allow-from 127.0.0.1/32)

# --- one daemon per state directory -----------------------------------------------------
start_sedns "$T_TMP/a.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se-a" \
	"${common[@]}" --metrics "127.0.0.1:$MPORT" || { notok "sedns A starts"; finish; }
A_PID=$SEDNS_PID
va1=$(q "$PORT" a1.test)
expect_match "A answers a1.test with a VIP" '^240\.240\.' "$va1"
sum0=$(md5sum <"$T_TMP/state/vips.mdb")
t0=$(date +%s%N)
"$SEDNS" serve --listen "127.0.0.1:$PORT2" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se-b" "${common[@]}" \
	>"$T_TMP/b.log" 2>&1; rc=$?
expect_eq "a second sedns on the same state dir exits 1" 1 "$rc"
check "... at once ($(ms_since "$t0") ms)" test "$(ms_since "$t0")" -lt 3000
check "... naming the holder's PID" grep -q "is in use by sedns PID $A_PID" "$T_TMP/b.log"
expect_eq "... the store is byte-identical afterwards" "$sum0" "$(md5sum <"$T_TMP/state/vips.mdb")"
expect_eq "... and B's host was never allocated" "" "$(vips "$T_TMP/state" | grep b1.test)"
expect_match "sedns vips works beside the daemon" 'a1\.test +240\.240\.[0-9.]+ +active' "$(vips "$T_TMP/state")"
expect_eq "the lock metric says A holds it" 1 "$(metric "$MPORT" sedns_state_lock_held)"

# --- --state-lock wait: a rolling update's new pod ----------------------------------------
start_sedns "$T_TMP/b2.log" --listen "127.0.0.1:$PORT2" --state-dir "$T_TMP/state" --serviceentries "$T_TMP/se-b" \
	"${common[@]}" --metrics "127.0.0.1:$MPORT2" --state-lock wait --rules-apply false ||
	{ notok "sedns B starts in standby ($(tail -3 "$T_TMP/b2.log"))"; finish; }
B_PID=$SEDNS_PID
expect_eq "standby B answers A's host with A's VIP" "$va1" "$(q "$PORT2" a1.test)"
expect_match "... forwards its new host (no VIP while read-only)" '^192\.0\.2\.' "$(q "$PORT2" b1.test)"
expect_eq "... is ready (a rollout can go on)" "ready" "$(curl -s "127.0.0.1:$MPORT2/readyz")"
expect_match "... /healthz says standby" 'degraded: standby: another sedns holds the state lock' \
	"$(curl -s "127.0.0.1:$MPORT2/healthz")"
expect_eq "... metrics: lock not held, store not writable, 1 host without VIP" "0 0 1" \
	"$(metric "$MPORT2" sedns_state_lock_held) $(metric "$MPORT2" sedns_vip_store_writable) $(metric "$MPORT2" sedns_vip_missing_readonly)"
expect_eq "... and it wrote nothing to the store" "$sum0" "$(md5sum <"$T_TMP/state/vips.mdb")"
stop_pid "$A_PID"
vb=""
for _ in $(seq 1 40); do vb=$(q "$PORT2" b1.test); [[ $vb == 240.240.* ]] && break; sleep 0.1; done
expect_match "A exits: B takes the lock and gives its new host a VIP" '^240\.240\.' "$vb"
expect_eq "... A's host keeps its VIP" "$va1" "$(q "$PORT2" a1.test)"
expect_eq "... /healthz is plain ok" "ok" "$(curl -s "127.0.0.1:$MPORT2/healthz")"
check "... and says so in the log" grep -q 'state lock .* taken' "$T_TMP/b2.log"
stop_pid "$B_PID"

# --- a start that cannot bind writes nothing ----------------------------------------------
# (the lock is free: a copy of the state dir, the address is taken by A)
sleep 1.1 # mtimes have a one-second granularity on some filesystems
touch "$T_TMP/a3.mark"
start_sedns "$T_TMP/a3.log" --listen "127.0.0.1:$PORT" --listen-reuseport false --state-dir "$T_TMP/state" \
	--serviceentries "$T_TMP/se-a" "${common[@]}" || { notok "sedns A restarts"; finish; }
cp -a "$T_TMP/state" "$T_TMP/state-copy"
sum1=$(md5sum <"$T_TMP/state-copy/vips.mdb")
mkdir -p "$T_TMP/se-c"; se_file "$T_TMP/se-c" c1 c1.test
"$SEDNS" serve --listen "127.0.0.1:$PORT" --listen-reuseport false --state-dir "$T_TMP/state-copy" \
	--serviceentries "$T_TMP/se-c" "${common[@]}" >"$T_TMP/c.log" 2>&1; rc=$?
expect_eq "a sedns whose address is taken exits 1" 1 "$rc"
check "... saying why" grep -q 'Address already in use' "$T_TMP/c.log"
expect_eq "... having changed nothing in its store (A's hosts not put on hold)" "$sum1" \
	"$(md5sum <"$T_TMP/state-copy/vips.mdb")"
# the first backup is written 2 s after the start (not in the start's way)
for _ in $(seq 1 50); do [ "$T_TMP/state/vips.mdb.bak" -nt "$T_TMP/a3.mark" ] && break; sleep 0.1; done
stop_pid "$SEDNS_PID"

# --- backups ------------------------------------------------------------------------------
check "a backup is written after the start's sync (vips.mdb.bak, within 5 s)" test "$T_TMP/state/vips.mdb.bak" -nt "$T_TMP/a3.mark"
mkdir -p "$T_TMP/from-bak"; cp "$T_TMP/state/vips.mdb.bak" "$T_TMP/from-bak/vips.mdb"
expect_match "the backup alone is a sound store (A's 3 hosts, B's on hold)" 'vips.mdb: ok: 3 active, 1 held' "$("$SEDNS" vips --verify --state-dir "$T_TMP/from-bak")"
expect_eq "... holding the same VIPs" "$(vips "$T_TMP/state" | awk '{print $1, $2}')" \
	"$(vips "$T_TMP/from-bak" | awk '{print $1, $2}')"
for how in empty missing; do
	rm -rf "$T_TMP/state-r"; cp -a "$T_TMP/state" "$T_TMP/state-r"
	if [ $how = empty ]; then : >"$T_TMP/state-r/vips.mdb"; else rm "$T_TMP/state-r/vips.mdb"; fi
	start_sedns "$T_TMP/r-$how.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-r" \
		--serviceentries "$T_TMP/se-b" "${common[@]}" || { notok "sedns starts on an $how store"; continue; }
	expect_eq "vips.mdb $how next to a backup: restored, a1.test keeps its VIP" "$va1" "$(q "$PORT" a1.test)"
	expect_eq "... b1.test too" "$vb" "$(q "$PORT" b1.test)"
	check "... and the log says it was restored" grep -q "was $how: restored from the backup" "$T_TMP/r-$how.log"
	stop_pid "$SEDNS_PID"
done

# --- full disk --------------------------------------------------------------------------
FS=$T_TMP/fullfs
mkdir -p "$FS"
if mount -t tmpfs -o size=1m tmpfs "$FS" 2>/dev/null; then
	T_CLEANUP_MOUNT=$FS
	trap 'umount "$T_CLEANUP_MOUNT" 2>/dev/null; t_cleanup' EXIT
	mkdir -p "$T_TMP/se-f"; cp "$T_TMP/se-a"/*.yaml "$T_TMP/se-f/"
	start_sedns "$T_TMP/f.log" --listen "127.0.0.1:$PORT" --state-dir "$FS/state" --serviceentries "$T_TMP/se-f" \
		"${common[@]}" --metrics "127.0.0.1:$MPORT" || { notok "sedns starts on a 1 MiB tmpfs"; finish; }
	vf=$(q "$PORT" a1.test)
	dd if=/dev/zero of="$FS/filler" bs=4k 2>/dev/null
	se_file "$T_TMP/se-f" f1 f1.test
	kill -HUP "$SEDNS_PID"; sleep 0.5
	expect_eq "disk full, a new host: existing hosts are still answered" "$vf" "$(q "$PORT" a1.test)"
	expect_match "... the new host is forwarded" '^192\.0\.2\.' "$(q "$PORT" f1.test)"
	check "... the log says no space left on device" grep -q 'vips.mdb: no space left on device' "$T_TMP/f.log"
	expect_match "... /healthz says the store is read-only and why" 'degraded: VIP store read-only, 1 host.*no space left on device' \
		"$(curl -s "127.0.0.1:$MPORT/healthz")"
	expect_eq "... metrics: not writable, 1 host without VIP" "0 1" \
		"$(metric "$MPORT" sedns_vip_store_writable) $(metric "$MPORT" sedns_vip_missing_readonly)"
	check "... write failures counted" test "$(metric "$MPORT" sedns_vip_store_write_failures_total)" -ge 1
	stop_pid "$SEDNS_PID"
	start_sedns "$T_TMP/f2.log" --listen "127.0.0.1:$PORT" --state-dir "$FS/state" --serviceentries "$T_TMP/se-f" \
		"${common[@]}" --metrics "127.0.0.1:$MPORT"; started=$?
	expect_eq "a restart on the full disk starts" 0 "$started"
	expect_eq "... and serves the existing VIPs" "$vf" "$(q "$PORT" a1.test)"
	check "... saying the store is read-only" grep -q 'vip_store=read-only' "$T_TMP/f2.log"
	rm -f "$FS/filler"
	kill -HUP "$SEDNS_PID"; sleep 0.5
	expect_match "space freed, a reload: the new host gets a VIP" '^240\.240\.' "$(q "$PORT" f1.test)"
	expect_eq "... /healthz is plain ok again" "ok" "$(curl -s "127.0.0.1:$MPORT/healthz")"
	stop_pid "$SEDNS_PID"
	umount "$FS"
else
	notok "mount a 1 MiB tmpfs (needs root)"
fi

# --- a full pool: one summary line per load ------------------------------------------------
mkdir -p "$T_TMP/se-p"
for i in 1 2 3 4 5 6 7 8; do se_file "$T_TMP/se-p" "p$i" "p$i.test"; done
start_sedns "$T_TMP/p.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-p" --serviceentries "$T_TMP/se-p" \
	--vip-pool 10.99.0.0/30 "${common[@]}" || { notok "sedns starts with a /30 pool"; finish; }
kill -HUP "$SEDNS_PID"; sleep 0.5
stop_pid "$SEDNS_PID"
expect_eq "8 hosts, 2 VIPs: one exhaustion line per load (start + SIGHUP)" 2 "$(grep -c 'exhausted' "$T_TMP/p.log")"
expect_match "... with the count and the first hosts" \
	'VIP pool 10\.99\.0\.0/30 exhausted: 6 host\(s\) get no VIP and are forwarded \(first: p[0-9]\.test, p[0-9]\.test, p[0-9]\.test, p[0-9]\.test, p[0-9]\.test, \.\.\.; all: sedns vips\)' \
	"$(grep -m1 exhausted "$T_TMP/p.log")"

# --- corruption: bit flips --------------------------------------------------------------------
# a store of 200 hosts; one random byte XORed per trial, fixed seeds
mkdir -p "$T_TMP/se-m"
for i in $(seq 1 200); do
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: m%d, namespace: st}\nspec:\n  hosts: [m%d.test]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]\n---\n' "$i" "$i"
done >"$T_TMP/se-m/all.yaml"
start_sedns "$T_TMP/m.log" --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/state-m" --serviceentries "$T_TMP/se-m" \
	"${common[@]}" || { notok "sedns starts with 200 hosts"; finish; }
stop_pid "$SEDNS_PID"
rm -f "$T_TMP/state-m/vips.mdb.bak"  # corruption must be reported, not papered over
vips "$T_TMP/state-m" >"$T_TMP/m.orig"
flip() { # FILE SEED
	local f=$1 size off mask b
	size=$(stat -c %s "$f"); RANDOM=$2
	off=$(( (RANDOM * 32768 + RANDOM) % size )); mask=$(( RANDOM % 255 + 1 ))
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	printf "$(printf '\\%03o' $(( b ^ mask )))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
BIN=$SEDNS
if [ "${SANITIZE_TESTS:-1}" = 1 ] && make -s SANITIZE=1 build-san/sedns >/dev/null 2>&1; then
	BIN=$ROOT/build-san/sedns
fi
crashed=0 changed=0 refused=0 passed=0 sanitizer=0
for seed in $(seq 1 80); do
	rm -rf "$T_TMP/flip"; cp -a "$T_TMP/state-m" "$T_TMP/flip"; flip "$T_TMP/flip/vips.mdb" "$seed"
	out=$("$BIN" vips --verify --state-dir "$T_TMP/flip" 2>&1); rc=$?
	grep -qE 'AddressSanitizer|runtime error' <<<"$out" && sanitizer=$((sanitizer + 1))
	if [ "$rc" -gt 1 ]; then crashed=$((crashed + 1)); echo "# seed $seed: verify rc $rc"; continue; fi
	if [ "$rc" = 1 ]; then refused=$((refused + 1)); continue; fi
	passed=$((passed + 1))
	"$BIN" vips --state-dir "$T_TMP/flip" >"$T_TMP/flip.list" 2>&1; rc=$?
	[ "$rc" -gt 1 ] && crashed=$((crashed + 1))
	cmp -s "$T_TMP/flip.list" "$T_TMP/m.orig" || { changed=$((changed + 1)); echo "# seed $seed: listing differs"; }
done
echo "# 80 single-byte flips ($BIN): $passed pass verify unchanged, $refused refused"
expect_eq "80 bit-flipped stores: no crash of sedns vips [--verify]" 0 "$crashed"
expect_eq "... no sanitizer report" 0 "$sanitizer"
expect_eq "... no store that passes verify lists a changed VIP or time" 0 "$changed"
check "... and the flips that matter are found ($refused refused)" test "$refused" -ge 10
# the daemon on flipped stores: refuses with a way out, or serves unchanged VIPs
m1=$(awk '$1 == "m1.test" {print $2}' "$T_TMP/m.orig")
bad=0
for seed in 3 5 7 11 13 17 19 23; do
	rm -rf "$T_TMP/flip"; cp -a "$T_TMP/state-m" "$T_TMP/flip"; flip "$T_TMP/flip/vips.mdb" "$seed"
	"$BIN" serve --listen "127.0.0.1:$PORT" --state-dir "$T_TMP/flip" --serviceentries "$T_TMP/se-m" \
		"${common[@]}" >"$T_TMP/flip.log" 2>&1 &
	pid=$!; T_PIDS+=("$pid")
	ans=""
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		ans=$(q "$PORT" m1.test); [[ $ans =~ ^[0-9] ]] && break; sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		stop_pid "$pid"
		[ "$ans" = "$m1" ] || { bad=$((bad + 1)); echo "# seed $seed: served m1.test as '$ans', was $m1"; }
	else
		wait "$pid"; rc=$?
		if [ "$rc" != 1 ] || ! grep -q 'Nothing was changed. To recover' "$T_TMP/flip.log"; then
			bad=$((bad + 1)); echo "# seed $seed: serve exited $rc: $(tail -1 "$T_TMP/flip.log")"
		fi
	fi
	grep -qE 'AddressSanitizer|runtime error' "$T_TMP/flip.log" && { bad=$((bad + 1)); echo "# seed $seed: sanitizer"; }
done
expect_eq "sedns serve on 8 flipped stores: exits 1 with a way to recover, or serves the same VIP" 0 "$bad"

# a record flipped in its time: caught by its checksum
rm -rf "$T_TMP/flip"; cp -a "$T_TMP/state-m" "$T_TMP/flip"
out=$("$SEDNS" vips --verify --state-dir "$T_TMP/flip" 2>&1); rc=$?
expect_eq "sedns vips --verify on the sound store exits 0" 0 "$rc"
expect_match "... and says ok with the counts" 'vips.mdb: ok: 200 active, 0 held' "$out"
finish
