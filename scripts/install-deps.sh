#!/usr/bin/env bash
# Installs the Debian packages that building, testing and benchmarking sedns
# need. Idempotent: when every package is present it returns at once.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  libldns-dev libevent-dev liblmdb-dev lmdb-utils libyaml-dev libcriterion-dev libpsl-dev publicsuffix
  libcurl4-openssl-dev libjson-c-dev libssl-dev openssl
  dnsutils knot-dnsutils ldnsutils nsd dnsperf dnsmasq-base unbound valgrind jq
  iproute2 iptables nftables procps netcat-openbsd curl python3-yaml systemd dnsdist util-linux
  clang libclang-rt-14-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Package installs must not start system DNS servers (nsd, unbound,
# dnsdist) on port 53: without systemd, Debian's init scripts would; a
# policy-rc.d that says "no" stops that for the duration of the install.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d &&
		made_policy=1
fi
cleanup_policy() { if [ "$made_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; made_policy=0; fi; }
trap cleanup_policy EXIT
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
cleanup_policy
# nsd's, unbound's and dnsdist's packages start system instances on port 53; the tests
# and benchmarks run their own on loopback ports.
for svc in nsd unbound dnsdist; do
  if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
