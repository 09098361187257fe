#!/usr/bin/env bash
# Installs what kconnect's tests and demo need, on Debian 12 with Node.js and npm:
# the Debian packages below, and Deno from npm. Idempotent and quick when all is in place:
# apt is only touched when a package is missing. Needs root (scripts/test.sh and
# scripts/demo.sh run it as root).
set -euo pipefail

# The one list of Debian packages the tests use. Add yours here.
PACKAGES=(
  iproute2 iputils-ping curl dnsutils dnsmasq-base iperf3 tcpdump tshark python3-scapy
  redis-server redis-tools socat ncat ethtool procps openssl iptables python3
)
DENO_NPM_PACKAGE="deno@2"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (try: sudo bash $0)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: no apt-get here; install these yourself: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no instead of prompting.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
fi

if ! command -v deno >/dev/null; then
  if ! command -v npm >/dev/null; then
    echo "setup: deno is missing and so is npm to install it with (install Node.js and npm)" >&2
    exit 1
  fi
  echo "setup: installing Deno with npm i -g $DENO_NPM_PACKAGE"
  npm i -g --no-fund --no-audit "$DENO_NPM_PACKAGE"
  hash -r
  if ! command -v deno >/dev/null; then
    echo "setup: npm installed deno into $(npm prefix -g)/bin, which is not on PATH" >&2
    exit 1
  fi
fi
echo "setup: ready ($(deno --version | head -n1))"
