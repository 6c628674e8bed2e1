#!/usr/bin/env bash
# gen-serviceentries.sh N [PORTS] > file.yaml
# Prints N/PORTS STATIC ServiceEntries (multi-document YAML), each with one
# host (svcI.bench.example), PORTS TCP ports (default 1) and 3 endpoint IPs
# from 198.18.0.0/15, i.e. N VIP:port pairs in total. For benchmarks.
set -euo pipefail
n=${1:?usage: gen-serviceentries.sh N [PORTS]}
ports=${2:-1}
awk -v n="$n" -v ports="$ports" 'BEGIN {
	svcs = int((n + ports - 1) / ports)
	for (i = 0; i < svcs; i++) {
		printf "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		printf "metadata:\n  name: svc%d\n  namespace: bench\nspec:\n", i
		printf "  hosts:\n  - svc%d.bench.example\n  location: MESH_EXTERNAL\n  ports:\n", i
		for (p = 0; p < ports; p++)
			printf "  - number: %d\n    name: tcp-%d\n    protocol: TCP\n", 8000 + p, p
		printf "  resolution: STATIC\n  endpoints:\n"
		for (k = 0; k < 3; k++) {
			j = 3 * i + k + 1
			printf "  - address: 198.%d.%d.%d\n", 18 + int(j / 65536), int(j / 256) % 256, j % 256
		}
	}
}'
