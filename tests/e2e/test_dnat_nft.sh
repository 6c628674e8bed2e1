#!/usr/bin/env bash
# End-to-end, in network namespaces: pod → sedns VIP → nft DNAT → endpoint.
# See dnat-suite.sh for the scenarios and lib-netns.sh for the world.
set -u
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/e2e/lib-netns.sh"
. "$ROOT/tests/e2e/dnat-suite.sh"
run_dnat_suite nft
finish
