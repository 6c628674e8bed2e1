#!/usr/bin/env bash
# Deployment artifacts: systemd unit, production config, Kubernetes manifests
# and scripts/sync-kubernetes.sh (driven by a fake kubectl).
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

# --- systemd unit ------------------------------------------------------------
UNIT=systemd/sedns.service.in
# a file named like a finished unit is one: the template carries .in
for f in systemd/*.service systemd/*.socket; do
	[ -e "$f" ] || continue
	expect_eq "$f has no @PLACEHOLDER@ left for make install" "" "$(grep -o '@[A-Z_]*@' "$f" | head -1)"
done
check "the unit with @SBINDIR@ is the template systemd/sedns.service.in" grep -q '^ExecStart=@SBINDIR@/sedns ' "$UNIT"
check "no systemd/sedns.service beside it" test ! -e systemd/sedns.service
SBINDIR=$(cd "$(dirname "$SEDNS")" && pwd)
mkdir -p "$T_TMP/unit"
sed "s|@SBINDIR@|$SBINDIR|g" "$UNIT" >"$T_TMP/unit/sedns.service"
check "unit has an @SBINDIR@ ExecStart for make install to substitute" \
	grep -qx 'ExecStart=@SBINDIR@/sedns serve -c /etc/sedns/sedns.yaml' "$UNIT"
expect_eq "substituted unit runs $SEDNS" "ExecStart=$SBINDIR/sedns serve -c /etc/sedns/sedns.yaml" \
	"$(grep '^ExecStart=' "$T_TMP/unit/sedns.service")"
for kv in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30s' 'ExecReload=/bin/kill -HUP $MAINPID' \
	'StateDirectory=sedns' 'ConfigurationDirectory=sedns' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
	'ProtectHome=yes' 'PrivateTmp=yes' 'Restart=on-failure' 'RestartSec=1s' 'LimitNOFILE=65536' \
	'AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN' \
	'CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN' \
	'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK'; do
	check "unit sets $kv" grep -qxF "$kv" "$UNIT"
done
check "unit sets TimeoutStopSec" grep -q '^TimeoutStopSec=' "$UNIT"
SOCK=systemd/sedns.socket
for kv in 'ListenDatagram=169.254.20.10:53' 'ListenStream=169.254.20.10:53' 'FreeBind=yes' 'Service=sedns.service'; do
	check "socket unit sets $kv" grep -qxF "$kv" "$SOCK"
done
check "the service orders itself after its socket" grep -qE '^After=.*sedns\.socket' "$UNIT"
check "unit has a user (DynamicUser=yes or User=)" grep -qE '^(DynamicUser=yes|User=.+)$' "$UNIT"

if command -v systemd-analyze >/dev/null; then
	out=$(cd "$T_TMP/unit" && systemd-analyze verify ./sedns.service 2>&1); rc=$?
	expect_eq "systemd-analyze verify exits 0" 0 "$rc"
	expect_eq "systemd-analyze verify prints no warning" "" "$out"
	# The same check must catch a broken unit, or it proves nothing.
	sed -e 's/^Type=notify/Type=notifyy/' "$T_TMP/unit/sedns.service" >"$T_TMP/unit/broken.service"
	out=$(cd "$T_TMP/unit" && systemd-analyze verify ./broken.service 2>&1)
	expect_match "verify reports a bad directive in a broken copy" 'Failed to parse service type' "$out"
	sed -e "s|^ExecStart=$SBINDIR|ExecStart=/nonexistent|" "$T_TMP/unit/sedns.service" >"$T_TMP/unit/nobin.service"
	(cd "$T_TMP/unit" && systemd-analyze verify ./nobin.service >/dev/null 2>&1); rc=$?
	check "verify fails when the ExecStart binary is missing" test "$rc" -ne 0
	cp systemd/sedns.socket "$T_TMP/unit/"
	out=$(cd "$T_TMP/unit" && systemd-analyze verify ./sedns.socket 2>&1); rc=$?
	expect_eq "systemd-analyze verify accepts sedns.socket, silently ($out)" "0" "$rc${out:+ $out}"
	out=$(cd "$T_TMP/unit" && systemd-analyze security --offline=yes --threshold=30 ./sedns.service 2>&1); rc=$?
	expect_eq "systemd-analyze security exposure is at most 3.0" 0 "$rc"
	expect_match "security report gives an exposure level" 'Overall exposure level for sedns.service: [0-2]\.[0-9]' "$out"
else
	echo "ok - # SKIP systemd-analyze not found"
fi

# --- production config -------------------------------------------------------
PROD=config/production/sedns.yaml
out=$("$SEDNS" serve -n -c "$PROD" 2>&1); rc=$?
expect_eq "production config passes serve -n" 0 "$rc"
expect_match "production listens on 169.254.20.10:53 only" $'listen:\n  - "169.254.20.10:53"\nserviceentries' "$out"
expect_match "production reads /etc/sedns/serviceentries" $'serviceentries:\n  - "/etc/sedns/serviceentries"\n' "$out"
expect_match "production state_dir is the unit's StateDirectory" 'state_dir: "/var/lib/sedns"' "$out"
expect_match "production allows the pod CIDR placeholder and loopback" $'allow_from:\n  - "10.0.0.0/8"\n  - "127.0.0.0/8"\n' "$out"
expect_match "production metrics on 127.0.0.1:9153" 'metrics: "127.0.0.1:9153"' "$out"
expect_match "production applies rules in the node's format (auto, resolved)" $'format: (iptables|nft)\n[^\n]*\n  apply: true' "$out"
expect_match "production forwards the cluster domain and reverse zones to kube-dns" \
	$'forward_zones:\n  - zone: "cluster.local"\n    upstreams:\n      - "10.96.0.10:53"\n  - zone: "in-addr.arpa"' "$out"
expect_match "production reads this node's pods" $'workloads:\n  - "/etc/sedns/workloads/pods.yaml"' "$out"

# --- sync-kubernetes.sh with a fake kubectl ----------------------------------
SYNC=scripts/sync-kubernetes.sh
FK=$T_TMP/fake
mkdir -p "$FK"
cat >"$FK/kubectl" <<'EOF'
#!/usr/bin/env bash
# Fake kubectl: canned output per resource; FK/fail makes it fail,
# FK/empty makes it print nothing; every call is logged.
FK=$(dirname "$0")
echo "$*" >>"$FK/calls"
if [ -e "$FK/fail" ]; then
	echo "error: the server doesn't have a resource type" >&2
	exit 1
fi
[ -e "$FK/empty" ] && exit 0
case " $* " in
*" serviceentries.networking.istio.io "*) cat "$FK/se.yaml" ;;
*" pods "*) cat "$FK/pods.yaml" ;;
*) echo "fake kubectl: unexpected: $*" >&2; exit 1 ;;
esac
EOF
chmod +x "$FK/kubectl"
cp config/serviceentries/kubectl-list.yaml "$FK/se.yaml"
cat >"$FK/pods.yaml" <<'EOF'
apiVersion: v1
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-0
    namespace: shop
  spec:
    nodeName: node-a
  status:
    podIP: 10.1.2.3
    podIPs:
    - ip: 10.1.2.3
kind: List
metadata:
  resourceVersion: ""
EOF
OUT=$T_TMP/out
export KUBECTL=$FK/kubectl

out=$("$SYNC" --help); rc=$?
expect_eq "sync --help exits 0" 0 "$rc"
expect_match "sync --help documents --once, INTERVAL, OUT_DIR, NODE_NAME, KUBECTL" \
	'--once.*INTERVAL.*OUT_DIR.*NODE_NAME.*KUBECTL' "$(echo "$out" | tr '\n' ' ')"
"$SYNC" --bogus >/dev/null 2>&1; rc=$?
expect_eq "sync: unknown argument exits 2" 2 "$rc"
"$SYNC" --once --interval 0 >/dev/null 2>&1; rc=$?
expect_eq "sync: interval 0 is refused (exit 2)" 2 "$rc"
if command -v shellcheck >/dev/null; then
	check "shellcheck is clean on sync-kubernetes.sh" shellcheck "$SYNC"
fi

# items_of FILE...: the item lines of kubectl Lists, sorted
items_of() { awk '/^items:/ {f = 1; next} /^[^ -]/ {f = 0} f' "$@" | sort; }
SED=$OUT/serviceentries
mkdir -p "$SED"
echo "# legacy single file" >"$SED/serviceentries.yaml"
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>"$T_TMP/sync.err"; rc=$?
expect_eq "sync --once exits 0" 0 "$rc"
expect_eq "one ServiceEntry file per namespace" "ns-analytics.yaml ns-istio-system.yaml" "$(cd "$SED" && echo *.yaml)"
check "together they hold every item of the dump, unchanged" \
	cmp -s <(items_of "$FK/se.yaml") <(items_of "$SED"/ns-*.yaml)
check "each holds only its namespace's items" bash -c "grep -q '    namespace: analytics' '$SED/ns-analytics.yaml' && ! grep -q '    namespace: istio-system' '$SED/ns-analytics.yaml'"
check "the single file of earlier versions is gone (it would duplicate every entry)" test ! -e "$SED/serviceentries.yaml"
check "pod dump written" cmp -s "$FK/pods.yaml" "$OUT/workloads/pods.yaml"
calls=$(cat "$FK/calls")
expect_match "ServiceEntries fetched from every namespace as YAML" 'get serviceentries\.networking\.istio\.io -A -o yaml' "$calls"
expect_match "pods fetched for this node only" 'get pods -A -o yaml --field-selector spec\.nodeName=node-a' "$calls"
expect_eq "no temp files left behind (but the hidden whole dump)" "$SED/.serviceentries.all" "$(find "$OUT" -name '.*')"
out=$("$SEDNS" check "$SED" 2>&1); rc=$?
expect_eq "the per-namespace files pass sedns check" 0 "$rc"
expect_match "sedns check finds the dump's 2 entries" '^2 files, 2 entries' "$(echo "$out" | tail -1)"
expect_eq "dumps are world-readable (0644)" 644 "$(stat -c %a "$SED/ns-analytics.yaml")"

# Unchanged content: the files are not touched (no inotify event for sedns).
touch -d @946684800 "$SED/ns-analytics.yaml" "$SED/ns-istio-system.yaml" "$OUT/workloads/pods.yaml"
ino=$(stat -c %i "$SED/ns-analytics.yaml")
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>/dev/null; rc=$?
expect_eq "second sync exits 0" 0 "$rc"
expect_eq "unchanged ServiceEntries keep their mtime" 946684800 "$(stat -c %Y "$SED/ns-analytics.yaml")"
expect_eq "unchanged ServiceEntries keep their inode" "$ino" "$(stat -c %i "$SED/ns-analytics.yaml")"
expect_eq "unchanged pods keep their mtime" 946684800 "$(stat -c %Y "$OUT/workloads/pods.yaml")"

# A change in one namespace: only its file, replaced by rename (new inode).
sed -i 's/resourceVersion: "184223"/resourceVersion: "184299"/' "$FK/se.yaml"
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>/dev/null
check "the changed namespace's file is written" grep -q 'resourceVersion: "184299"' "$SED/ns-analytics.yaml"
check "changed file is renamed into place (new inode)" test "$ino" != "$(stat -c %i "$SED/ns-analytics.yaml")"
expect_eq "the other namespace's file is untouched" 946684800 "$(stat -c %Y "$SED/ns-istio-system.yaml")"
expect_eq "pods still untouched" 946684800 "$(stat -c %Y "$OUT/workloads/pods.yaml")"

# kubectl fails: the previous files stay, --once exits non-zero.
cat "$SED"/ns-*.yaml >"$T_TMP/before.yaml"
cp "$FK/se.yaml" "$T_TMP/se-full.yaml"
printf 'apiVersion: v1\nitems: []\nkind: List\n' >"$FK/se.yaml"
touch "$FK/fail"
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>"$T_TMP/sync.err"; rc=$?
expect_eq "sync --once exits 1 when kubectl fails" 1 "$rc"
check "failure keeps the previous ServiceEntry files" cmp -s "$T_TMP/before.yaml" <(cat "$SED"/ns-*.yaml)
check "failure keeps the previous pod file" cmp -s "$FK/pods.yaml" "$OUT/workloads/pods.yaml"
expect_match "failure is logged with kubectl's message" 'keeping .*serviceentries.*server doesn.t have' "$(cat "$T_TMP/sync.err")"
expect_eq "no temp files after a failure" "$SED/.serviceentries.all" "$(find "$OUT" -name '.*')"
rm -f "$FK/fail"

touch "$FK/empty"
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>/dev/null; rc=$?
expect_eq "empty kubectl output is a failure (exit 1)" 1 "$rc"
check "empty output keeps the previous files" cmp -s "$T_TMP/before.yaml" <(cat "$SED"/ns-*.yaml)
rm -f "$FK/empty"

# A namespace with no ServiceEntry left: its file goes.
awk '/^- apiVersion/ {n++} n != 1' "$T_TMP/se-full.yaml" >"$FK/se.yaml"
NODE_NAME=node-a OUT_DIR=$OUT "$SYNC" --once 2>/dev/null
expect_eq "a namespace whose last ServiceEntry is gone loses its file" "ns-istio-system.yaml" "$(cd "$SED" && echo *.yaml)"
cp "$T_TMP/se-full.yaml" "$FK/se.yaml"

# No NODE_NAME: ServiceEntries only.
OUT2=$T_TMP/out2
: >"$FK/calls"
env -u NODE_NAME OUT_DIR="$OUT2" "$SYNC" --once 2>"$T_TMP/sync.err"; rc=$?
expect_eq "sync without NODE_NAME exits 0" 0 "$rc"
check "without NODE_NAME no pod dump" test ! -e "$OUT2/workloads/pods.yaml"
check "without NODE_NAME pods are never listed" bash -c "! grep -q ' pods ' '$FK/calls'"
expect_match "missing NODE_NAME is logged" 'NODE_NAME is not set' "$(cat "$T_TMP/sync.err")"

# Flags instead of environment.
OUT3=$T_TMP/out3
env -u KUBECTL "$SYNC" --once --kubectl "$FK/kubectl" --out-dir "$OUT3" --node-name node-b 2>/dev/null; rc=$?
expect_eq "flags --kubectl/--out-dir/--node-name work" 0 "$rc"
expect_match "--node-name selects that node" 'spec\.nodeName=node-b' "$(tail -1 "$FK/calls")"
SE_DIR=$T_TMP/se4 WORKLOADS_DIR=$T_TMP/wl4 NODE_NAME=n "$SYNC" --once 2>/dev/null
check "SE_DIR and WORKLOADS_DIR override the directories" \
	test -f "$T_TMP/se4/ns-analytics.yaml" -a -f "$T_TMP/wl4/pods.yaml"

# Loop mode: follows changes, survives failures, stops promptly on SIGTERM.
OUT4=$T_TMP/out4
NODE_NAME=node-a OUT_DIR=$OUT4 INTERVAL=1 "$SYNC" 2>"$T_TMP/loop.err" &
LOOP=$!
T_PIDS+=("$LOOP")
for _ in $(seq 1 50); do [ -f "$OUT4/serviceentries/ns-istio-system.yaml" ] && break; sleep 0.1; done
check "loop writes the first dump" cmp -s <(items_of "$FK/se.yaml") <(items_of "$OUT4"/serviceentries/ns-*.yaml)
touch "$FK/fail"
sleep 2.5
check "loop keeps running while kubectl fails" kill -0 "$LOOP"
check "loop kept the files while kubectl failed" test -s "$OUT4/serviceentries/ns-analytics.yaml"
rm -f "$FK/fail"
sed -i 's/resourceVersion: "184299"/resourceVersion: "184300"/' "$FK/se.yaml"
for _ in $(seq 1 40); do grep -q '184300' "$OUT4/serviceentries/ns-analytics.yaml" && break; sleep 0.1; done
check "loop picks up a change within INTERVAL" grep -q '184300' "$OUT4/serviceentries/ns-analytics.yaml"
kill -TERM "$LOOP"
t0=$(date +%s%N)
# bounded: a lost signal is a failure here, not a hung test run
for _ in $(seq 1 50); do kill -0 "$LOOP" 2>/dev/null || break; sleep 0.05; done
t1=$(date +%s%N)
if kill -0 "$LOOP" 2>/dev/null; then
	echo "# the loop did not exit 2.5 s after SIGTERM; killing it"
	kill -KILL "$LOOP" 2>/dev/null
fi
wait "$LOOP" 2>/dev/null
check "loop exits within 1 s of SIGTERM" test $(((t1 - t0) / 1000000)) -lt 1000
expect_eq "no temp files after the loop (but the hidden whole dump)" "$OUT4/serviceentries/.serviceentries.all" "$(find "$OUT4" -name '.*')"

# --- Kubernetes manifests ----------------------------------------------------
M=config/kubernetes/sedns.yaml
# two manifests, one kubectl apply each: sedns-api.yaml (sedns watches the
# API; tests/shell/test_kube.sh checks it) and this one, the sidecar fallback
check "each manifest is one file for one kubectl apply" test "$(ls config/kubernetes/*.yaml | tr '\n' ' ')" = \
	"config/kubernetes/sedns-api.yaml $M "
scripts/gen-manifest.sh - >"$T_TMP/gen.yaml"
check "the committed manifest is what scripts/gen-manifest.sh makes (make manifest)" cmp -s "$T_TMP/gen.yaml" "$M"
out=$("$SEDNS" check "$M" 2>&1); rc=$?
expect_eq "$M parses as YAML (sedns check)" 0 "$rc"
# A YAML error would be caught: the same check on a broken copy fails.
sed '0,/^  template:/s//  template:\n\t  broken: [/' "$M" >"$T_TMP/broken-ds.yaml"
"$SEDNS" check "$T_TMP/broken-ds.yaml" >/dev/null 2>&1; rc=$?
check "sedns check rejects a broken manifest" test "$rc" -ne 0

ds=$(cat "$M")
expect_match "DaemonSet uses hostNetwork" 'hostNetwork: true' "$ds"
expect_match "DaemonSet dnsPolicy Default" 'dnsPolicy: Default' "$ds"
expect_match "sedns container adds NET_ADMIN and NET_BIND_SERVICE" 'add: \["NET_ADMIN", "NET_BIND_SERVICE"\]' "$ds"
expect_match "capabilities drop ALL" 'drop: \["ALL"\]' "$ds"
expect_match "state on hostPath /var/lib/sedns" $'hostPath:\n +path: /var/lib/sedns' "$ds"
expect_match "liveness probe on loopback /healthz" $'livenessProbe:\n +httpGet:\n +host: 127.0.0.1\n +path: /healthz\n +port: 9153' "$ds"
expect_match "readiness probe on loopback /readyz" $'readinessProbe:\n +httpGet:\n +host: 127.0.0.1\n +path: /readyz\n +port: 9153' "$ds"
expect_match "sedns args" 'args: \["serve", "-c", "/etc/sedns/sedns.yaml"\]' "$ds"
expect_match "priorityClassName system-node-critical" 'priorityClassName: system-node-critical' "$ds"
expect_match "tolerates every taint" $'tolerations:\n +- operator: Exists' "$ds"
expect_match "rollout: a new pod beside the old one (maxSurge 1, maxUnavailable 0)" $'maxSurge: 1\n +maxUnavailable: 0' "$ds"
expect_match "NODE_NAME from spec.nodeName" $'- name: NODE_NAME\n +valueFrom:\n +fieldRef:\n +fieldPath: spec.nodeName' "$ds"
expect_match "sidecar runs sync-kubernetes.sh" 'sync-kubernetes\.sh' "$ds"
expect_match "ClusterRole covers serviceentries" $'apiGroups: \\["networking.istio.io"\\]\n +resources: \\["serviceentries"\\]\n +verbs: \\["get", "list", "watch"\\]' "$ds"
CM=$M
# The ConfigMap's sedns.yaml is a valid sedns config.
awk '/^  sedns\.yaml: \|/{f=1;next} f&&/^[^ ]/{f=0} f{sub(/^    /,"");print}' "$CM" >"$T_TMP/cm-sedns.yaml"
check "extracted the ConfigMap's sedns.yaml" grep -q '^listen:' "$T_TMP/cm-sedns.yaml"
out=$(env -u KUBE_DNS_SERVICE_HOST "$SEDNS" serve -n -c "$T_TMP/cm-sedns.yaml" 2>&1); rc=$?
expect_match "ConfigMap sedns.yaml outside kube-system: kube-dns has no address, said clearly" \
	'forward_zones: kube-dns: KUBE_DNS_SERVICE_HOST is not set' "$out"
out=$(KUBE_DNS_SERVICE_HOST=10.96.0.10 KUBE_DNS_SERVICE_PORT=53 KUBE_DNS_SERVICE_PORT_DNS=53 \
	"$SEDNS" serve -n -c "$T_TMP/cm-sedns.yaml" 2>&1); rc=$?
expect_eq "ConfigMap sedns.yaml passes serve -n (with a kube-system pod's environment)" 0 "$rc"
expect_match "ConfigMap forwards cluster.local, in-addr.arpa and ip6.arpa to kube-dns" \
	$'forward_zones:\n  - zone: "cluster.local"\n    upstreams:\n      - "10.96.0.10:53"\n  - zone: "in-addr.arpa"\n    upstreams:\n      - "10.96.0.10:53"\n  - zone: "ip6.arpa"' "$out"
expect_match "ConfigMap metrics on loopback, the probes' port" 'metrics: "127.0.0.1:9153"' "$out"
expect_match "ConfigMap state_dir is the hostPath" 'state_dir: "/var/lib/sedns"' "$out"
expect_match "ConfigMap reads the sync sidecar's directories" \
	$'serviceentries:\n  - "/etc/sedns/serviceentries"\n.*workloads:\n  - "/etc/sedns/workloads/pods.yaml"' "$out"

# Structure, with a real YAML parser when there is one.
if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	out=$(/usr/bin/python3 - "$M" <<'EOF' 2>&1
import sys, yaml
docs = []
for f in sys.argv[1:]:
    docs += [d for d in yaml.safe_load_all(open(f)) if d]
kinds = {d["kind"]: d for d in docs}
for k in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "ConfigMap"):
    print("kind-" + k, k in kinds)
cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
# kubectl apply of one file creates in file order: what the DaemonSet uses comes before it
order = [d["kind"] for d in docs]
print("order", order.index("DaemonSet") == len(order) - 1 and order.index("ServiceAccount") < order.index("ClusterRoleBinding"))
ds = kinds["DaemonSet"]
ns = ds["metadata"]["namespace"]
print("kube-system", ns == "kube-system")
print("same-namespace", all(d["metadata"].get("namespace", ns) == ns for d in docs if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")))
pod = ds["spec"]["template"]["spec"]
print("selector-matches", all(ds["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in ds["spec"]["selector"]["matchLabels"].items()))
print("serviceaccount", pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"])
crb = kinds["ClusterRoleBinding"]
print("binding", crb["roleRef"]["name"] == kinds["ClusterRole"]["metadata"]["name"] and crb["subjects"][0]["name"] == pod["serviceAccountName"] and crb["subjects"][0]["namespace"] == ns)
rules = kinds["ClusterRole"]["rules"]
print("rbac-pods", any("pods" in r["resources"] and "" in r["apiGroups"] and set(r["verbs"]) >= {"get", "list", "watch"} for r in rules))
vols = {v["name"] for v in pod["volumes"]}
mounts = [m["name"] for c in pod["containers"] + pod.get("initContainers", []) for m in c.get("volumeMounts", [])]
print("mounts-resolve", all(m in vols for m in mounts))
c = {c["name"]: c for c in pod["containers"]}
sedns = c["sedns"]
sc = sedns["securityContext"]
print("caps", sorted(sc["capabilities"]["add"]) == ["NET_ADMIN", "NET_BIND_SERVICE"] and sc["capabilities"]["drop"] == ["ALL"])
print("no-escalation", sc["allowPrivilegeEscalation"] is False)
print("resources", "requests" in sedns["resources"] and "limits" in sedns["resources"])
hp = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
sm = {m["mountPath"]: m["name"] for m in sedns["volumeMounts"]}
print("state-hostpath", hp.get(sm.get("/var/lib/sedns")) == "/var/lib/sedns")
side = [x for x in pod["containers"] if x["name"] != "sedns"][0]
shared = {m["name"] for m in side["volumeMounts"]} & {sm.get("/etc/sedns/serviceentries"), sm.get("/etc/sedns/workloads")}
print("shared-emptydirs", len(shared) == 2 and all("emptyDir" in v for v in pod["volumes"] if v["name"] in shared))
env = {e["name"]: e for e in side["env"]}
print("sidecar-dirs", env["SE_DIR"]["value"] == [m["mountPath"] for m in side["volumeMounts"] if m["name"] == sm["/etc/sedns/serviceentries"]][0]
      and env["WORKLOADS_DIR"]["value"] == [m["mountPath"] for m in side["volumeMounts"] if m["name"] == sm["/etc/sedns/workloads"]][0])
print("sidecar-nonroot", side["securityContext"]["runAsNonRoot"] is True)
cfg = [v for v in pod["volumes"] if v["name"] == sm["/etc/sedns/sedns.yaml"]][0]
print("configmap-name", cfg["configMap"]["name"] in cms and "sedns.yaml" in cms[cfg["configMap"]["name"]]["data"])
script = [v for v in pod["volumes"] if v["name"] == "sync-script"][0]["configMap"]["name"]
print("sync-script-embedded", cms[script]["data"]["sync-kubernetes.sh"] == open("scripts/sync-kubernetes.sh").read())
print("probes", sedns["livenessProbe"]["httpGet"]["path"] == "/healthz" and sedns["readinessProbe"]["httpGet"]["path"] == "/readyz"
      and sedns["livenessProbe"]["httpGet"]["host"] == "127.0.0.1")
print("no-host-ports", all("ports" not in c for c in pod["containers"]))
ru = ds["spec"]["updateStrategy"]["rollingUpdate"]
print("surge", ru["maxSurge"] == 1 and ru["maxUnavailable"] == 0)
print("service-links", pod.get("enableServiceLinks", True) is True)
print("hostnetwork", pod["hostNetwork"] is True and pod["dnsPolicy"] == "Default")
EOF
)
	for k in kind-ServiceAccount kind-ClusterRole kind-ClusterRoleBinding kind-DaemonSet kind-ConfigMap order \
		kube-system same-namespace selector-matches serviceaccount binding rbac-pods mounts-resolve caps no-escalation \
		resources state-hostpath shared-emptydirs sidecar-dirs sidecar-nonroot configmap-name sync-script-embedded \
		probes no-host-ports surge service-links hostnetwork; do
		if grep -qx "$k True" <<<"$out"; then ok "manifest structure: $k"; else notok "manifest structure: $k ($(grep "^$k " <<<"$out" || echo "${out:0:300}"))"; fi
	done
else
	echo "ok - # SKIP python3-yaml not installed: manifest structure checked by grep only"
fi

finish
