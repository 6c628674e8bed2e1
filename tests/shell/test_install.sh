#!/usr/bin/env bash
# make install / uninstall with DESTDIR and PREFIX: the files land where the
# unit expects them, the unit points at the installed binary and passes
# systemd-analyze verify, an operator's config is never overwritten, and
# uninstall keeps /etc/sedns and the VIP store.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
D="$T_TMP/root"
make -s install DESTDIR="$D" PREFIX=/usr >/dev/null 2>"$T_TMP/install.err"
expect_eq "make install DESTDIR=... PREFIX=/usr succeeds" 0 "$?"
for f in usr/sbin/sedns usr/lib/systemd/system/sedns.service usr/lib/systemd/system/sedns.socket usr/libexec/sedns/sync-kubernetes.sh \
	usr/share/doc/sedns/README.md etc/sedns/sedns.yaml; do
	check "installed $f" test -e "$D/$f"
done
check "etc/sedns/serviceentries directory created" test -d "$D/etc/sedns/serviceentries"
check "binary is executable" test -x "$D/usr/sbin/sedns"
expect_eq "unit runs the installed binary" "ExecStart=/usr/sbin/sedns serve -c /etc/sedns/sedns.yaml" "$(grep '^ExecStart=' "$D/usr/lib/systemd/system/sedns.service")"
check "installed config is accepted by the installed binary" bash -c "'$D/usr/sbin/sedns' serve -n -c '$D/etc/sedns/sedns.yaml' >/dev/null"
if command -v systemd-analyze >/dev/null; then
	sed "s|ExecStart=/usr/sbin/sedns|ExecStart=$D/usr/sbin/sedns|" "$D/usr/lib/systemd/system/sedns.service" > "$T_TMP/sedns.service"
	out=$(systemd-analyze verify "$T_TMP/sedns.service" 2>&1); rc=$?
	check "installed unit passes systemd-analyze verify ($out)" test "$rc" -eq 0 -a -z "$out"
fi
echo "# operator edit" >> "$D/etc/sedns/sedns.yaml"
make -s install DESTDIR="$D" PREFIX=/usr >/dev/null 2>&1
expect_match "a second install keeps the operator's config" 'operator edit' "$(cat "$D/etc/sedns/sedns.yaml")"
mkdir -p "$D/var/lib/sedns" && touch "$D/var/lib/sedns/vips.mdb"
make -s uninstall DESTDIR="$D" PREFIX=/usr >/dev/null 2>&1
check "uninstall removes the binary" test ! -e "$D/usr/sbin/sedns"
check "uninstall removes the unit" test ! -e "$D/usr/lib/systemd/system/sedns.service"
check "uninstall removes the socket unit" test ! -e "$D/usr/lib/systemd/system/sedns.socket"
check "uninstall removes the sync script" test ! -e "$D/usr/libexec/sedns/sync-kubernetes.sh"
check "uninstall keeps /etc/sedns" test -e "$D/etc/sedns/sedns.yaml"
check "uninstall keeps the VIP store" test -e "$D/var/lib/sedns/vips.mdb"
finish
