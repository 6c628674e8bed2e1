#!/usr/bin/env bash
# sync-kubernetes.sh — keep sedns's input files in step with the cluster.
#
# Every INTERVAL seconds (or once, with --once) it dumps
#   kubectl get serviceentries.networking.istio.io -A -o yaml
#       -> SE_DIR/ns-<namespace>.yaml        (sedns `serviceentries`), one
#          List per namespace, so a namespace's entries change (or break)
#          only its own file
#   kubectl get pods -A -o yaml --field-selector spec.nodeName=NODE_NAME
#       -> WORKLOADS_DIR/pods.yaml           (sedns `workloads`)
# Each dump goes to a hidden temp file in the same directory and is renamed
# over the old file only when its content changed, so sedns (which watches
# the directories) never reads a half-written file and does not reload for
# nothing. When kubectl fails, the previous file stays as it was.
#
# The fallback: sedns itself watches the API server (kubernetes.in_cluster or
# --kubeconfig; config/kubernetes/sedns-api.yaml), with one LIST and then a
# WATCH per kind instead of a full LIST every INTERVAL on every node. Use this
# script only where the sedns pod or host cannot reach the API server itself.
#
# Run as the sidecar of the DaemonSet in config/kubernetes/sedns.yaml, or beside the
# systemd unit on a node with a kubeconfig.
set -euo pipefail

usage() {
	cat <<EOF
usage: ${0##*/} [--once] [--interval SECONDS] [--out-dir DIR] [--node-name NAME] [--kubectl BIN]

Dumps Istio ServiceEntries and this node's pods for sedns, atomically and
only when they changed.

  --once              one round, then exit: 0 when every dump succeeded, 1 otherwise
  --interval N        seconds between rounds (env INTERVAL, default 10)
  --out-dir DIR       base directory (env OUT_DIR, default /etc/sedns); writes
                      DIR/serviceentries/ns-NAMESPACE.yaml (one per namespace)
                      and DIR/workloads/pods.yaml
                      (env SE_DIR and WORKLOADS_DIR override the two directories)
  --node-name NAME    this node (env NODE_NAME); pods are not dumped when empty
  --kubectl BIN       kubectl binary (env KUBECTL, default kubectl)
  -h, --help          this text

Other environment: REQUEST_TIMEOUT (kubectl --request-timeout, default 30s).
Without --once, failures are logged to stderr and retried next round.
EOF
}

KUBECTL=${KUBECTL:-kubectl}
OUT_DIR=${OUT_DIR:-/etc/sedns}
NODE_NAME=${NODE_NAME:-}
INTERVAL=${INTERVAL:-10}
REQUEST_TIMEOUT=${REQUEST_TIMEOUT:-30s}
ONCE=0

need_arg() {
	if [ $# -lt 2 ] || [ -z "$2" ]; then
		echo "${0##*/}: $1 needs a value" >&2
		exit 2
	fi
}

while [ $# -gt 0 ]; do
	case $1 in
	--once) ONCE=1 ;;
	--interval) need_arg "$@"; INTERVAL=$2; shift ;;
	--interval=*) INTERVAL=${1#*=} ;;
	--out-dir) need_arg "$@"; OUT_DIR=$2; shift ;;
	--out-dir=*) OUT_DIR=${1#*=} ;;
	--node-name) need_arg "$@"; NODE_NAME=$2; shift ;;
	--node-name=*) NODE_NAME=${1#*=} ;;
	--kubectl) need_arg "$@"; KUBECTL=$2; shift ;;
	--kubectl=*) KUBECTL=${1#*=} ;;
	-h | --help) usage; exit 0 ;;
	*) echo "${0##*/}: unknown argument: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if ! [[ "$INTERVAL" =~ ^[0-9]+$ ]] || [ "$INTERVAL" -lt 1 ]; then
	echo "${0##*/}: interval must be a whole number of seconds >= 1: $INTERVAL" >&2
	exit 2
fi

SE_DIR=${SE_DIR:-$OUT_DIR/serviceentries}
WORKLOADS_DIR=${WORKLOADS_DIR:-$OUT_DIR/workloads}

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) ${0##*/}: $*" >&2; }

# The temp file being written, removed if we are killed half way.
TMP=""
SLEEP_PID=""
cleanup() {
	if [ -n "$TMP" ]; then rm -f "$TMP"; fi
	if [ -n "$SLEEP_PID" ]; then kill "$SLEEP_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# dump TARGET KUBECTL-ARGS...: run kubectl, replace TARGET atomically when the
# output is non-empty and differs. Returns non-zero when kubectl failed.
dump() {
	local target=$1 dir err
	shift
	dir=$(dirname "$target")
	if ! mkdir -p "$dir"; then
		log "cannot create $dir"
		return 1
	fi
	# Hidden and not *.yaml: sedns never loads a temp file.
	TMP=$(mktemp "$dir/.${target##*/}.XXXXXX") || { log "cannot create a temp file in $dir"; TMP=""; return 1; }
	err=$(mktemp) || { rm -f "$TMP"; TMP=""; return 1; }
	if ! "$KUBECTL" "$@" --request-timeout="$REQUEST_TIMEOUT" >"$TMP" 2>"$err"; then
		log "kubectl $* failed, keeping $target: $(tr '\n' ' ' <"$err")"
		rm -f "$TMP" "$err"
		TMP=""
		return 1
	fi
	rm -f "$err"
	if [ ! -s "$TMP" ]; then
		log "kubectl $* printed nothing, keeping $target"
		rm -f "$TMP"
		TMP=""
		return 1
	fi
	if [ -f "$target" ] && cmp -s "$TMP" "$target"; then
		rm -f "$TMP"
		TMP=""
		return 0
	fi
	chmod 0644 "$TMP"
	if ! mv -f "$TMP" "$target"; then
		log "cannot rename into $target"
		rm -f "$TMP"
		TMP=""
		return 1
	fi
	TMP=""
	log "updated $target"
	return 0
}

# split_namespaces ALL DIR: writes the items of the kubectl List in ALL into
# DIR/ns-<namespace>.yaml, one List per namespace, replacing only files whose
# content changed (atomically) and removing those of namespaces that have no
# ServiceEntry any more. kubectl -o yaml puts each item at "- " in column 0
# and its metadata.namespace at "    namespace: " under "  metadata:".
split_namespaces() {
	local all=$1 dir=$2 tmpd f base rc=0
	tmpd=$(mktemp -d "$dir/.split.XXXXXX") || { log "cannot create a temp directory in $dir"; return 1; }
	if ! awk -v out="$tmpd" '
		function flush() {
			if (buf == "") return
			if (ns == "") ns = "default"
			f = out "/ns-" ns ".yaml"
			if (!(f in seen)) { seen[f] = 1; printf "apiVersion: v1\nitems:\n" > f }
			printf "%s", buf > f
			buf = ""; ns = ""; inmeta = 0
		}
		/^items:[[:space:]]*$/ { initems = 1; next }
		!initems { next }
		/^- / { flush(); buf = $0 "\n"; inmeta = ($0 ~ /^- metadata:[[:space:]]*$/); next }
		/^[^ ]/ { flush(); initems = 0; next }
		{
			buf = buf $0 "\n"
			if ($0 ~ /^  [^ ]/) inmeta = ($0 ~ /^  metadata:[[:space:]]*$/)
			else if (inmeta && $0 ~ /^    namespace:[[:space:]]/) {
				v = $0; sub(/^    namespace:[[:space:]]*/, "", v); gsub(/["\047[:space:]]/, "", v); ns = v
			}
		}
		END {
			flush()
			for (f in seen) { printf "kind: List\nmetadata:\n  resourceVersion: \"\"\n" >> f; close(f) }
		}' "$all"; then
		log "cannot split $all by namespace"
		rm -rf "$tmpd"
		return 1
	fi
	local names=" "
	for f in "$tmpd"/ns-*.yaml; do
		[ -e "$f" ] || continue
		base=${f##*/}
		names="$names$base "
		if [ -f "$dir/$base" ] && cmp -s "$f" "$dir/$base"; then
			continue
		fi
		chmod 0644 "$f"
		if mv -f "$f" "$dir/$base"; then
			log "updated $dir/$base"
		else
			log "cannot rename into $dir/$base"
			rc=1
		fi
	done
	for f in "$dir"/ns-*.yaml; do
		[ -e "$f" ] || continue
		if [[ "$names" != *" ${f##*/} "* ]]; then
			rm -f "$f" && log "removed $f (no ServiceEntry left in that namespace)"
		fi
	done
	# the single file of earlier versions would duplicate every entry
	if [ -f "$dir/serviceentries.yaml" ]; then rm -f "$dir/serviceentries.yaml"; fi
	rm -rf "$tmpd"
	return "$rc"
}

warned_node=0
round() {
	local rc=0
	# the whole List first (hidden, never loaded by sedns), then per namespace
	if dump "$SE_DIR/.serviceentries.all" get serviceentries.networking.istio.io -A -o yaml; then
		split_namespaces "$SE_DIR/.serviceentries.all" "$SE_DIR" || rc=1
	else
		rc=1
	fi
	if [ -n "$NODE_NAME" ]; then
		dump "$WORKLOADS_DIR/pods.yaml" get pods -A -o yaml --field-selector "spec.nodeName=$NODE_NAME" || rc=1
	elif [ "$warned_node" -eq 0 ]; then
		log "NODE_NAME is not set: not dumping pods"
		warned_node=1
	fi
	return "$rc"
}

if [ "$ONCE" -eq 1 ]; then
	round
	exit $?
fi

log "syncing every ${INTERVAL}s into $SE_DIR and $WORKLOADS_DIR"
while :; do
	round || true
	# Backgrounded so that SIGTERM is handled at once, not after the sleep.
	sleep "$INTERVAL" &
	SLEEP_PID=$!
	wait "$SLEEP_PID" || true
	SLEEP_PID=""
done
