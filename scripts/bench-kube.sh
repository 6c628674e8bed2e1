#!/usr/bin/env bash
# bench-kube.sh — what sedns costs the API server, and how fast a change
# reaches DNS, against the test API server (tests/tools/kubeapi.c, TLS):
#   1. API requests in IDLE seconds with no change (after the first sync),
#      and per hour: the steady state is one watch per kind, renewed every
#      kubernetes.watch_timeout (30m + up to 10% jitter), bookmarks on the
#      same stream; no periodic LIST
#   2. time from a ServiceEntry change (PUT to the API) to the new answer
#      from dig, over CHANGES changes, at the default reload_debounce 250ms
# Usage: scripts/bench-kube.sh [SEDNS] (env: N=200 IDLE=60 CHANGES=20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SEDNS=${1:-${SEDNS:-$ROOT/build/sedns}}
KUBEAPI=${KUBEAPI:-$(dirname "$SEDNS")/tools/kubeapi}
N=${N:-200}; IDLE=${IDLE:-60}; CHANGES=${CHANGES:-20}
T=$(mktemp -d /tmp/sedns-bench-kube-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 1 \
	-subj /CN=ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=k 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > ext
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 -extfile ext 2>/dev/null
AP=$(port); CP=$(port); DP=$(port)
"$KUBEAPI" --cert srv.crt --key srv.key --port "$AP" --ctl-port "$CP" --token t --bookmark-ms 60000 > api.out 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do grep -q ready api.out && break; sleep 0.1; done
ctl() { curl -s -X "$1" "http://127.0.0.1:$CP$2" ${3:+--data-binary "$3"}; }
stat() { ctl GET /stats | awk -v k="$1" '$1 == k { print $2 }'; }
se() { ctl PUT "/serviceentries/bench/$1" "{\"spec\":{\"hosts\":[\"$1.bench.example\"],\"addresses\":[\"$2\"],\"resolution\":\"STATIC\",\"ports\":[{\"number\":80,\"name\":\"http\"}],\"endpoints\":[{\"address\":\"192.0.2.1\"}]}}" >/dev/null; }
for i in $(seq 1 "$N"); do se "h$i" "10.0.$((i / 250)).$((i % 250 + 1))"; done
for i in $(seq 1 20); do ctl PUT "/pods/ns$i/p$i" "{\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.9.0.$i\"}}" >/dev/null; done
printf 'apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: "https://127.0.0.1:%s", certificate-authority: %s/ca.crt}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n' "$AP" "$T" > kc
mkdir se
"$SEDNS" serve --listen 127.0.0.1:"$DP" --state-dir st --serviceentries se --upstream 127.0.0.1:9 \
	--kubeconfig kc --kube-node-name n1 > sedns.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ "$(dig @127.0.0.1 -p "$DP" +short h1.bench.example 2>/dev/null)" = 10.0.0.2 ] && break; sleep 0.05; done
r0=$(stat requests); l0=$(( $(stat lists_serviceentries) + $(stat lists_pods) ))
echo "objects: $N ServiceEntries, 20 pods on this node; first sync: $r0 requests ($l0 LISTs, 2 WATCHes)"
sleep "$IDLE"
r1=$(stat requests); l1=$(( $(stat lists_serviceentries) + $(stat lists_pods) ))
echo "idle ${IDLE}s, no change: $((r1 - r0)) requests, $((l1 - l0)) LISTs"
echo "steady state per node per hour: 2 kinds x 3600 s / watch_timeout (30m..33m) = ~3.8 WATCH renewals, 0 LISTs"
echo "(the sidecar fallback: 2 LISTs every 10 s = 720 per hour, each a full ServiceEntry LIST)"
# change -> answer
times=()
for c in $(seq 1 "$CHANGES"); do
	addr="10.200.$((c / 250)).$((c % 250 + 1))"
	t0=$(date +%s%N)
	se h1 "$addr"
	for _ in $(seq 1 1000); do
		[ "$(dig @127.0.0.1 -p "$DP" +short +time=1 +tries=1 h1.bench.example)" = "$addr" ] && break
		sleep 0.005
	done
	times+=($(( ($(date +%s%N) - t0) / 1000000 )))
	sleep 0.3
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "change -> new answer over $CHANGES changes (reload_debounce 250ms, $N entries): median $(echo "$sorted" | \
	awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms, max $(echo "$sorted" | tail -1) ms"
