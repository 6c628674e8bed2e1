#!/usr/bin/env bash
# gen-kubectl-list.sh N [NAMESPACES] > dump.yaml
# Prints what `kubectl get serviceentries.networking.istio.io -A -o yaml`
# prints for N ServiceEntries spread over NAMESPACES namespaces (default
# 50): one List, items in namespace order, each with the metadata a real
# cluster adds (uid, resourceVersion, generation, creationTimestamp, the
# last-applied-configuration annotation, managedFields) and istiod's
# status.addresses off; about 1.2 KB per entry (14,000 entries: ~17 MB).
# For tests and benchmarks of large inputs.
set -euo pipefail
n=${1:?usage: gen-kubectl-list.sh N [NAMESPACES]}
nns=${2:-50}
awk -v n="$n" -v nns="$nns" 'BEGIN {
	printf "apiVersion: v1\nitems:\n"
	per = int((n + nns - 1) / nns)
	for (i = 0; i < n; i++) {
		ns = sprintf("tenant-%03d", int(i / per))
		name = sprintf("ext-%05d", i)
		host = sprintf("api-%05d.partner%d.example", i, i % 97)
		printf "- apiVersion: networking.istio.io/v1\n  kind: ServiceEntry\n  metadata:\n"
		printf "    annotations:\n      kubectl.kubernetes.io/last-applied-configuration: |\n"
		printf "        {\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{\"annotations\":{},\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"hosts\":[\"%s\"],\"location\":\"MESH_EXTERNAL\",\"ports\":[{\"name\":\"https\",\"number\":443,\"protocol\":\"TLS\"}],\"resolution\":\"DNS\"}}\n", name, ns, host
		printf "    creationTimestamp: \"2026-%02d-%02dT%02d:%02d:%02dZ\"\n", 1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60
		printf "    generation: 1\n    labels:\n      app.kubernetes.io/managed-by: platform\n      team: %s\n", ns
		printf "    managedFields:\n    - apiVersion: networking.istio.io/v1\n      fieldsType: FieldsV1\n"
		printf "      fieldsV1:\n        f:metadata:\n          f:annotations:\n            .: {}\n"
		printf "            f:kubectl.kubernetes.io/last-applied-configuration: {}\n        f:spec:\n"
		printf "          .: {}\n          f:hosts: {}\n          f:location: {}\n          f:ports: {}\n"
		printf "          f:resolution: {}\n      manager: kubectl-client-side-apply\n      operation: Update\n"
		printf "      time: \"2026-01-01T00:00:00Z\"\n"
		printf "    name: %s\n    namespace: %s\n    resourceVersion: \"%d\"\n", name, ns, 100000 + i
		printf "    uid: %08x-%04x-4%03x-8%03x-%012x\n", i * 2654435761 % 4294967296, i % 65536, i % 4096, (i * 7) % 4096, i * 97
		printf "  spec:\n    hosts:\n    - %s\n    location: MESH_EXTERNAL\n    ports:\n", host
		printf "    - name: https\n      number: 443\n      protocol: TLS\n    resolution: DNS\n"
	}
	printf "kind: List\nmetadata:\n  resourceVersion: \"\"\n"
}'
