#!/usr/bin/env bash
# sedns watching the Kubernetes API (tests/tools/kubeapi.c, TLS with a test
# CA, bearer tokens): initial sync, add/modify/delete reaching DNS within the
# debounce, this node's pods as namespace views, a 410 relist that loses
# nothing, a dropped watch resumed from its last resourceVersion, a wrong
# token and a wrong CA as clear errors while serving, token file rotation,
# the v1beta1 fallback and in-cluster config.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
KUBEAPI=${KUBEAPI:-$(dirname "$SEDNS")/tools/kubeapi}
if [ ! -x "$KUBEAPI" ]; then
	KUBEAPI=$T_TMP/kubeapi
	cc -O2 -std=gnu11 -D_GNU_SOURCE -pthread $(pkg-config --cflags openssl json-c) -o "$KUBEAPI" \
		tests/tools/kubeapi.c $(pkg-config --libs openssl json-c) || { notok "build kubeapi"; finish; }
fi

# --- a test CA, the server's certificate, and a CA that did not sign it ----
C=$T_TMP/pki; mkdir -p "$C"
mkca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$C/$1.key" \
	-out "$C/$1.crt" -days 1 -subj "/CN=$1" 2>/dev/null; }
mkca ca; mkca otherca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$C/srv.key" -out "$C/srv.csr" \
	-subj /CN=kubeapi 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$C/ext"
openssl x509 -req -in "$C/srv.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -out "$C/srv.crt" \
	-days 1 -extfile "$C/ext" 2>/dev/null
check "test CA and server certificate made with openssl" test -s "$C/srv.crt"

AP=$(free_port); CP=$(free_port)
"$KUBEAPI" --cert "$C/srv.crt" --key "$C/srv.key" --port "$AP" --ctl-port "$CP" --token tok1 \
	--bookmark-ms 500 > "$T_TMP/kubeapi.out" 2> "$T_TMP/kubeapi.err" &
T_PIDS+=($!)
for _ in $(seq 1 50); do grep -q ready "$T_TMP/kubeapi.out" 2>/dev/null && break; sleep 0.1; done
ctl() { curl -s -X "$1" "http://127.0.0.1:$CP$2" ${3:+--data-binary "$3"}; }
stat() { ctl GET /stats | awk -v k="$1" '$1 == k { print $2 }'; }
se() { # se NS NAME HOST [ADDRESS] [EXPORTTO]
	local spec
	if [ -n "$4" ]; then
		spec="\"hosts\":[\"$3\"],\"addresses\":[\"$4\"],\"ports\":[{\"number\":443,\"name\":\"https\",\"protocol\":\"TLS\"}],\"resolution\":\"STATIC\",\"endpoints\":[{\"address\":\"192.0.2.1\"}]"
	else
		spec="\"hosts\":[\"$3\"],\"ports\":[{\"number\":443,\"name\":\"https\",\"protocol\":\"TLS\"}],\"resolution\":\"DNS\",\"location\":\"MESH_EXTERNAL\""
	fi
	[ -n "$5" ] && spec="$spec,\"exportTo\":[\"$5\"]"
	ctl PUT "/serviceentries/$1/$2" "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":{$spec}}" >/dev/null
}
pod() { # pod NS NAME NODE IP
	ctl PUT "/pods/$1/$2" "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"nodeName\":\"$3\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"$4\",\"podIPs\":[{\"ip\":\"$4\"}]}}" >/dev/null
}
se team-a api api.example.com
se team-a static static.example.com 10.1.1.1
se team-a private private.example.com 10.2.2.2 .
pod team-a client n1 127.0.0.1
pod team-b other n2 127.0.0.2

printf 'tok1\n' > "$T_TMP/token"
kubeconfig() { # kubeconfig FILE CA
	cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$AP
    certificate-authority: $2
contexts:
- name: test
  context: {cluster: test, user: sedns}
current-context: test
users:
- name: sedns
  user:
    tokenFile: $T_TMP/token
EOF
}
kubeconfig "$T_TMP/kubeconfig" "$C/ca.crt"
SE_DIR=$T_TMP/se; mkdir -p "$SE_DIR"
PORT=$(free_port); MPORT=$(free_port)
start_sedns "$T_TMP/sedns.log" --listen 127.0.0.1:$PORT --state-dir "$T_TMP/state" --serviceentries "$SE_DIR" \
	--upstream 127.0.0.1:9 --upstream-timeout 200ms --metrics 127.0.0.1:$MPORT --reload-debounce 100ms \
	--kubeconfig "$T_TMP/kubeconfig" --kube-node-name n1
check "sedns starts with a kubeconfig" kill -0 "$SEDNS_PID"
q() { dig @127.0.0.1 -p $PORT +short +time=1 +tries=1 "$@" 2>/dev/null | grep -v '^;'; }
# wait_for NAME REGEX [dig args]: ms until the answer matches (or "timeout")
wait_for() {
	local n=$1 re=$2 t0 i; shift 2
	t0=$(date +%s%N)
	for i in $(seq 1 100); do
		if [[ "$(q "$n" "$@")" =~ $re ]]; then echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; fi
		sleep 0.02
	done
	echo timeout; return 1
}
# a deletion: no local answer (forwarded to a dead upstream: nothing)
wait_gone() {
	local n=$1 i; shift
	for i in $(seq 1 40); do
		[ -z "$(q "$n" "$@")" ] && return 0
		sleep 0.05
	done
	return 1
}

# --- initial sync ----------------------------------------------------------------
expect_match "initial LIST: a ServiceEntry from the API gets a VIP" '^240\.240\.' "$(q api.example.com)"
expect_eq "initial LIST: spec.addresses answered" "10.1.1.1" "$(q static.example.com)"
expect_eq "/readyz ready once the first LISTs are applied" "ready" "$(curl -s 127.0.0.1:$MPORT/readyz)"
expect_eq "one paged LIST of serviceentries" "1" "$(stat lists_serviceentries)"
expect_eq "one LIST of pods" "1" "$(stat lists_pods)"
expect_match "pods are LISTed with this node's fieldSelector" "LIST pods" "$(ctl GET /log)"

# --- pods: this node's, as namespace views ------------------------------------
expect_eq "exportTo . answered to a client whose IP is a team-a pod on this node" "10.2.2.2" \
	"$(q private.example.com)"
expect_eq "a pod on another node maps nothing (fieldSelector)" "" "$(q private.example.com -b 127.0.0.2)"

# --- add, modify, delete within the debounce --------------------------------------
se team-b added added.example.com 10.3.3.3
ms=$(wait_for added.example.com '^10\.3\.3\.3$')
check "ADDED reaches DNS (${ms} ms, debounce 100 ms)" test "$ms" != timeout -a "${ms:-9999}" -lt 1000
se team-a static static.example.com 10.1.1.2
ms=$(wait_for static.example.com '^10\.1\.1\.2$')
check "MODIFIED reaches DNS (${ms} ms)" test "$ms" != timeout -a "${ms:-9999}" -lt 1000
ctl DELETE /serviceentries/team-b/added >/dev/null
check "DELETED reaches DNS" wait_gone added.example.com
ctl DELETE /pods/team-a/client >/dev/null
check "a deleted pod's IP no longer sees its namespace's entries" wait_gone private.example.com
pod team-a client n1 127.0.0.1
check "a new pod's IP sees its namespace's entries" test "$(wait_for private.example.com '^10\.2\.2\.2$')" != timeout
VIP=$(q api.example.com)

# --- 410 Gone: relist, nothing lost ------------------------------------------------
# events the watch never delivers (frozen), then compaction: only a relist
# can see them
ctl POST /freeze >/dev/null
se team-a gone1 gone1.example.com 10.4.4.4
se team-a static static.example.com 10.1.1.3
ctl DELETE /pods/team-a/client >/dev/null
sleep 0.3
expect_eq "frozen: the change is not seen yet" "10.1.1.2" "$(q static.example.com)"
ctl POST /expire >/dev/null
check "after 410: an object added meanwhile is there" test "$(wait_for gone1.example.com '^10\.4\.4\.4$')" != timeout
expect_eq "after 410: an object modified meanwhile is current" "10.1.1.3" "$(q static.example.com)"
check "after 410: a pod deleted meanwhile is gone" wait_gone private.example.com
expect_eq "after 410: the rest is unchanged (same VIP)" "$VIP" "$(q api.example.com)"
expect_eq "410 made a second LIST of serviceentries" "2" "$(stat lists_serviceentries)"
m=$(curl -s 127.0.0.1:$MPORT/metrics)
expect_match "metrics: relists counted" 'sedns_kube_relists_total\{kind="serviceentries"\} 1' "$m"
expect_match "metrics: 410s counted" 'sedns_kube_expired_total\{kind="serviceentries"\} [1-9]' "$m"
grep -q "410 Gone" "$T_TMP/sedns.log" || grep -q "watch ERROR 410" "$T_TMP/sedns.log"
check "the log says 410 and relists" test $? -eq 0

# --- a dropped connection resumes from the last resourceVersion ----------------
sleep 1
ctl POST /freeze >/dev/null
RV=$(stat rv)
ctl POST /drop >/dev/null
se team-a resumed resumed.example.com 10.5.5.5
ctl POST /thaw >/dev/null
check "after a dropped watch: the change made meanwhile arrives" \
	test "$(wait_for resumed.example.com '^10\.5\.5\.5$')" != timeout
expect_eq "the watch resumed from the last resourceVersion seen ($RV)" "$RV" "$(stat last_watch_rv_serviceentries)"
expect_eq "no LIST for a dropped connection" "2" "$(stat lists_serviceentries)"
grep -q "watch stream broke" "$T_TMP/sedns.log"
check "the log says the stream broke and resumes" test $? -eq 0

# --- wrong token: a clear error, serving on; a rotated token file is used -------
ctl POST /token/tok2 >/dev/null
ctl POST /drop >/dev/null
for _ in $(seq 1 50); do grep -q "HTTP 401" "$T_TMP/sedns.log" && break; sleep 0.1; done
expect_match "a refused token is a clear error" 'kubernetes: (serviceentries|pods): WATCH .*HTTP 401.*token was refused' \
	"$(grep 'HTTP 401' "$T_TMP/sedns.log" | head -1)"
expect_eq "sedns keeps serving what it had" "$VIP" "$(q api.example.com)"
expect_match "/readyz stays ready (the tables are current as of the last sync)" "ready" \
	"$(curl -s 127.0.0.1:$MPORT/readyz)"
se team-a rotated rotated.example.com 10.6.6.6
printf 'tok2\n' > "$T_TMP/token.new" && mv "$T_TMP/token.new" "$T_TMP/token"
ms=$(wait_for rotated.example.com '^10\.6\.6\.6$' 2>/dev/null)
[ "$ms" = timeout ] && ms=$(wait_for rotated.example.com '^10\.6\.6\.6$')
check "a rotated token file is picked up (next retry)" test "$ms" != timeout
grep -q "token in .* changed" "$T_TMP/sedns.log"
check "the log says the token changed" test $? -eq 0

m=$(curl -s 127.0.0.1:$MPORT/metrics)
expect_match "metrics: events by type" 'sedns_kube_events_total\{kind="serviceentries",type="added"\} [1-9]' "$m"
expect_match "metrics: bookmarks" 'sedns_kube_events_total\{kind="(serviceentries|pods)",type="bookmark"\} [1-9]' "$m"
expect_match "metrics: watch restarts" 'sedns_kube_watch_restarts_total\{kind="serviceentries"\} [1-9]' "$m"
expect_match "metrics: last sync age" 'sedns_kube_last_sync_age_seconds\{kind="pods"\} [0-9]' "$m"
expect_match "metrics: request failures" 'sedns_kube_request_failures_total\{kind="serviceentries"\} [1-9]' "$m"

# --- a hostile API server: DNS keeps answering, the error is clear ----------
# max_dig_ms N: the slowest of N queries (one every 0.1 s) for a local name
max_dig_ms() {
	local i t0 t max=0
	for i in $(seq 1 "$1"); do
		t0=$(date +%s%N); q static.example.com >/dev/null; t=$(( ($(date +%s%N) - t0) / 1000000 ))
		[ "$t" -gt "$max" ] && max=$t
		sleep 0.1
	done
	echo $max
}
# hostile MODE LOGREGEX WHAT [TRIGGER]: DNS stays fast while the API server
# is hostile, the log says why, and all is well once it behaves again.
# TRIGGER: /drop (a new watch) or /expire (a relist)
hostile() {
	local mode=$1 re=$2 what=$3 ms
	ctl POST "/hostile/$mode" >/dev/null
	ctl POST "${4:-/drop}" >/dev/null
	ms=$(max_dig_ms 25)
	check "$what: DNS keeps answering (slowest of 25 queries ${ms} ms)" test "$ms" -lt 300
	# (the next retry may wait out a backoff grown by the modes before,
	# up to 30 s)
	for _ in $(seq 1 350); do grep -Eq "$re" "$T_TMP/sedns.log" && break; sleep 0.1; done
	expect_match "$what: a clear error" "$re" "$(grep -Em1 "$re" "$T_TMP/sedns.log")"
	expect_eq "$what: what was loaded is still served" "10.1.1.3" "$(q static.example.com)"
	ctl POST /hostile/off >/dev/null
}
hostile longline 'kubernetes: serviceentries: watch stream: a line longer than 4 MiB.*relisting' \
	"a 64 MiB watch line without a newline"
hostile nested 'kubernetes: serviceentries: LIST .*: the answer has more than [0-9]+ objects and arrays' \
	"a LIST page of {} just under 4 MiB (1 GB in json-c)" /expire
hwm=$(awk '/VmHWM/ { print int($2 / 1024) }' /proc/$SEDNS_PID/status)
check "a LIST page of {}: refused unparsed (peak RSS ${hwm} MiB)" test "${hwm:-9999}" -lt 300
hostile bigrv "kubernetes: serviceentries: LIST .*metadata.resourceVersion is longer than 128 bytes" \
	"a LIST with a 2 MiB resourceVersion" /expire
hostile bigpage "kubernetes: serviceentries: a LIST page over 4 MiB; asking for [0-9]+ objects a page" \
	"a 5 MiB LIST page" /expire
se team-a healed healed.example.com 10.9.9.1
# (after the next retry: the backoff has grown meanwhile, up to 30 s)
for _ in $(seq 1 15); do ms=$(wait_for healed.example.com '^10\.9\.9\.1$') && break; done
check "after the hostile server behaves: changes arrive again" test "$ms" != timeout

# --- a CA that did not sign the server: clear error, files still served ------
kubeconfig "$T_TMP/kubeconfig.bad" "$C/otherca.crt"
SE2=$T_TMP/se2; mkdir -p "$SE2"
cat > "$SE2/file.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: file, namespace: default}
spec: {hosts: [file.example.com], addresses: [10.7.7.7], resolution: STATIC, ports: [{number: 80, name: http}],
  endpoints: [{address: 192.0.2.7}]}
EOF
P2=$(free_port); M2=$(free_port)
PORT=$P2 start_sedns "$T_TMP/sedns-badca.log" --listen 127.0.0.1:$P2 --state-dir "$T_TMP/state2" \
	--serviceentries "$SE2" --upstream 127.0.0.1:9 --metrics 127.0.0.1:$M2 --kubeconfig "$T_TMP/kubeconfig.bad" \
	--kube-node-name n1 --kube-initial-sync-timeout 500ms
BAD_PID=$SEDNS_PID
expect_match "a wrong CA is a clear error" 'certificate.*(is the CA the API server.s)' \
	"$(grep -m1 'kubernetes: serviceentries' "$T_TMP/sedns-badca.log")"
expect_eq "with a wrong CA, the files are served" "10.7.7.7" \
	"$(dig @127.0.0.1 -p $P2 +short +time=1 +tries=1 file.example.com)"
expect_match "/readyz says why it is not ready" 'not ready: kubernetes: first LIST of serviceentries not done' \
	"$(curl -s 127.0.0.1:$M2/readyz)"
kill "$BAD_PID"; wait "$BAD_PID" 2>/dev/null

# --- v1 not served: v1beta1; in-cluster config --------------------------------
AP3=$(free_port); CP3=$(free_port)
"$KUBEAPI" --cert "$C/srv.crt" --key "$C/srv.key" --port "$AP3" --ctl-port "$CP3" --token sa-token --no-v1 \
	> "$T_TMP/kubeapi3.out" 2>&1 &
T_PIDS+=($!)
for _ in $(seq 1 50); do grep -q ready "$T_TMP/kubeapi3.out" 2>/dev/null && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$CP3/serviceentries/ns1/b" --data-binary '{"apiVersion":"networking.istio.io/v1beta1","kind":"ServiceEntry","spec":{"hosts":["beta.example.com"],"addresses":["10.8.8.8"],"resolution":"STATIC","ports":[{"number":80,"name":"http"}],"endpoints":[{"address":"192.0.2.8"}]}}' >/dev/null
mkdir -p "$T_TMP/sa" "$T_TMP/se3"; cp "$C/ca.crt" "$T_TMP/sa/ca.crt"; printf 'sa-token' > "$T_TMP/sa/token"
P3=$(free_port)
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$AP3 NODE_NAME=n1 PORT=$P3 \
	start_sedns "$T_TMP/sedns-incluster.log" --listen 127.0.0.1:$P3 --state-dir "$T_TMP/state3" \
	--serviceentries "$T_TMP/se3" --upstream 127.0.0.1:9 --kube-in-cluster \
	--kube-service-account-dir "$T_TMP/sa"
kill -0 "$SEDNS_PID" || tail -5 "$T_TMP/sedns-incluster.log"
check "in-cluster sedns starts" kill -0 "$SEDNS_PID"
expect_eq "in-cluster config, v1 not served: v1beta1 is used" "10.8.8.8" \
	"$(dig @127.0.0.1 -p $P3 +short +time=1 +tries=1 beta.example.com)"
grep -q "v1/serviceentries is not served (404); trying" "$T_TMP/sedns-incluster.log"
check "the log says it falls back to v1beta1" test $? -eq 0

# --- bad kubeconfig: refused at start with file:line:col ----------------------
printf 'apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c}\ncurrent-context: c\n' > "$T_TMP/kc-insecure"
out=$(timeout 5 "$SEDNS" serve --listen 127.0.0.1:$(free_port) --state-dir "$T_TMP/state4" --serviceentries "$SE2" \
	--kubeconfig "$T_TMP/kc-insecure" --kube-node-name n1 2>&1)
expect_match "insecure-skip-tls-verify is refused with file:line:col" 'kc-insecure:6:[0-9]+: insecure-skip-tls-verify is not supported' "$out"
sed "s|server: https://|server: http://|" "$T_TMP/kubeconfig" > "$T_TMP/kc-http"
out=$(timeout 5 "$SEDNS" serve --listen 127.0.0.1:$(free_port) --state-dir "$T_TMP/state4" --serviceentries "$SE2" \
	--kubeconfig "$T_TMP/kc-http" --kube-node-name n1 2>&1)
expect_match "an http:// server is refused (the token would go in clear)" \
	'kc-http:[0-9]+:[0-9]+: cluster.server must be an https:// URL' "$out"
out=$(timeout 5 "$SEDNS" serve --listen 127.0.0.1:$(free_port) --state-dir "$T_TMP/state4" --serviceentries "$SE2" \
	--kubeconfig "$T_TMP/kubeconfig" 2>&1)
expect_match "pods without a node name is refused" 'no node name' "$out"

# --- the DaemonSet that uses it --------------------------------------------------
out=$(python3 - config/kubernetes/sedns-api.yaml <<'EOF'
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
role = docs["ClusterRole"]["rules"]
print("rbac", sorted((r["apiGroups"][0], r["resources"][0], ",".join(r["verbs"])) for r in role))
pod = docs["DaemonSet"]["spec"]["template"]["spec"]
print("containers", [c["name"] for c in pod["containers"]])
env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in pod["containers"][0].get("env", [])}
print("node", env.get("NODE_NAME"))
cfg = yaml.safe_load(docs["ConfigMap"]["data"]["sedns.yaml"])
print("kube", cfg["kubernetes"]["in_cluster"], cfg["serviceentries"])
open(sys.argv[2] if len(sys.argv) > 2 else "/dev/null", "w")
EOF
)
expect_match "DaemonSet RBAC: get, list, watch on serviceentries and pods, nothing else" \
	"rbac \[\('', 'pods', 'get,list,watch'\), \('networking.istio.io', 'serviceentries', 'get,list,watch'\)\]" "$out"
expect_match "DaemonSet: sedns alone, no kubectl sidecar" "containers \['sedns'\]" "$out"
expect_match "DaemonSet: NODE_NAME from spec.nodeName" "node spec.nodeName" "$out"
expect_match "DaemonSet config: in_cluster, no files" "kube True \[\]" "$out"
python3 -c "import yaml; print([d for d in yaml.safe_load_all(open('config/kubernetes/sedns-api.yaml')) if d['kind']=='ConfigMap'][0]['data']['sedns.yaml'])" > "$T_TMP/api.yaml"
KUBE_DNS_SERVICE_HOST=10.96.0.10 NODE_NAME=n1 "$SEDNS" serve -n -c "$T_TMP/api.yaml" >/dev/null 2>&1
expect_eq "the DaemonSet's config passes serve -n" 0 $?

finish
