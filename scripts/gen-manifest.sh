#!/usr/bin/env bash
# gen-manifest.sh — writes config/kubernetes/sedns.yaml (one file, applied
# with one `kubectl apply`) from config/kubernetes/sedns.yaml.in, embedding
# scripts/sync-kubernetes.sh in the sync sidecar's ConfigMap. `make
# manifest` runs it; tests/shell/test_deploy.sh fails when the committed
# file is not what this prints.
#   scripts/gen-manifest.sh [OUT]     (default: config/kubernetes/sedns.yaml; - for stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-config/kubernetes/sedns.yaml}
gen() {
	while IFS= read -r line; do
		if [ "$line" = "@SYNC_SCRIPT@" ]; then
			# a literal block scalar: every line indented by 4, blank lines kept
			sed 's/^\(.\)/    \1/' scripts/sync-kubernetes.sh
		else
			printf '%s\n' "$line"
		fi
	done <config/kubernetes/sedns.yaml.in
}
if [ "$out" = - ]; then
	gen
else
	gen >"$out.tmp.$$"
	mv -f "$out.tmp.$$" "$out"
fi
