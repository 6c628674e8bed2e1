# Sourced by integration tests that put a "pod" in a network namespace
# joined to the host by a veth pair (a /30 inside 198.18.0.0/15).
#
# podns_init NAME HOST_IF POD_IF NET: sets NS, VH, VP, HOST_IP (NET.1) and
# POD_IP (NET.2), installs the cleanup trap (namespace, veth, its
# /etc/netns files, then t_cleanup) and creates the namespace; prints a
# SKIP and finishes if this machine cannot.
# podns_veth: creates the veth pair and addresses both ends; a failure is
# a "not ok" with ip's message, and the test finishes.

podns_cleanup() {
	if [ "${NS_MADE:-0}" = 1 ]; then
		ip link del "$VH" 2>/dev/null
		ip netns del "$NS" 2>/dev/null
		rm -rf "/etc/netns/$NS"
	fi
}

podns_init() {
	NS=$1 VH=$2 VP=$3 HOST_IP=$4.1 POD_IP=$4.2 NS_MADE=0
	trap 'podns_cleanup; t_cleanup' EXIT
	trap 'exit 1' INT TERM
	if ! ip netns add "$NS" 2>"$T_TMP/netns.err"; then
		echo "ok - # SKIP cannot create a network namespace: $(head -1 "$T_TMP/netns.err")"
		finish
	fi
	NS_MADE=1
}

podns_veth() {
	if ! { ip link add "$VH" type veth peer name "$VP" &&
		ip link set "$VP" netns "$NS" &&
		ip addr add "$HOST_IP/30" dev "$VH" &&
		ip link set "$VH" up &&
		ip netns exec "$NS" ip addr add "$POD_IP/30" dev "$VP" &&
		ip netns exec "$NS" ip link set "$VP" up &&
		ip netns exec "$NS" ip link set lo up; } 2>"$T_TMP/veth.err"; then
		notok "veth pair $VH/$VP with $HOST_IP/$POD_IP: $(head -2 "$T_TMP/veth.err")"
		finish
	fi
}
