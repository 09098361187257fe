#!/usr/bin/env bash
# Installs what kconnect's tests and demo need, on Debian 12 with Node.js and npm:
# the Debian packages below, and Deno from npm. Idempotent and quick when all is in place:
# apt is only touched when a package is missing. Needs root (scripts/test.sh and
# scripts/demo.sh run it as root).
set -euo pipefail

# The one list of Debian packages the tests use. Add yours here. (Not qemu-user and the arm64
# libc that scripts/arm64_ffi.sh installs itself: CI reports that job as a skip when they cannot
# be had, and a missing package here would stop everything.)
PACKAGES=(
  iproute2 iputils-ping curl dnsutils dnsmasq-base iperf3 tcpdump tshark python3-scapy
  redis-server redis-tools socat ncat ethtool procps openssl iptables python3
  dbus-daemon libsystemd-shared
  # x86_64-w64-mingw32-gcc: src/tun/windows_rows_test.ts checks the iphlpapi row layouts against
  # the real Windows headers (mingw-w64's netioapi.h).
  gcc-mingw-w64-x86-64-win32
)
DENO_NPM_PACKAGE="deno@2"
# systemd-resolved for tests/resolved/env.ts is NOT installed (its postinst would replace
# /etc/resolv.conf with a symlink and enable the service): its .deb, with the libsystemd-shared
# and systemd .debs of the same version (systemd for busctl, which a fresh Debian image lacks),
# is unpacked into this directory instead. Keep in step with RESOLVED_DIR in
# tests/resolved/env.ts.
RESOLVED_DIR="${KCONNECT_RESOLVED_DIR:-/var/cache/kconnect-test/systemd-resolved}"

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

# Unpacks systemd-resolved, libsystemd-shared and systemd (same version: the installed
# libsystemd-shared's when apt still offers it, else apt's candidate) into $RESOLVED_DIR/root,
# writing $RESOLVED_DIR/VERSION last; does nothing when that is in place (resolved, resolvectl
# and busctl), and replaces a directory that lacks any of them.
fetch_resolved() {
  local root="$RESOLVED_DIR/root"
  if [ -s "$RESOLVED_DIR/VERSION" ] && [ -x "$root/lib/systemd/systemd-resolved" ] &&
    [ -x "$root/usr/bin/resolvectl" ] && [ -x "$root/usr/bin/busctl" ]; then
    return 0
  fi
  local offered installed version
  offered=$(apt-cache madison systemd-resolved 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  if [ -z "$offered" ]; then
    apt-get update -q
    offered=$(apt-cache madison systemd-resolved | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  fi
  installed=$(dpkg-query -W -f='${Version}' libsystemd-shared 2>/dev/null || true)
  if [ -n "$installed" ] && grep -qxF "$installed" <<<"$offered"; then
    version=$installed
  else
    version=$(apt-cache policy systemd-resolved | awk '/Candidate:/ {print $2}')
  fi
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "setup: apt offers no systemd-resolved package to unpack" >&2
    exit 1
  fi
  echo "setup: unpacking systemd-resolved, libsystemd-shared and systemd $version into $RESOLVED_DIR (not installed)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root \
    "systemd-resolved=$version" "libsystemd-shared=$version" "systemd=$version")
  mkdir -p "$tmp/root"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  for f in lib/systemd/systemd-resolved usr/bin/resolvectl usr/bin/busctl; do
    if [ ! -x "$tmp/root/$f" ]; then
      echo "setup: $f is not in the unpacked packages" >&2
      exit 1
    fi
  done
  echo "$version" >"$tmp/VERSION"
  mkdir -p "$(dirname "$RESOLVED_DIR")"
  rm -rf "$RESOLVED_DIR"
  mkdir -p "$RESOLVED_DIR"
  mv "$tmp/root" "$RESOLVED_DIR/root"
  mv "$tmp/VERSION" "$RESOLVED_DIR/VERSION"
  rm -rf "$tmp"
  trap - EXIT
}
fetch_resolved

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
# Fill the Deno cache (DENO_DIR, or ~/.cache/deno) from deno.lock: every npm package the
# imports pin, and the bundler's esbuild (`deno bundle` fetches it on first use). Everything the
# product and the tests start later runs with --frozen --cached-only, often inside a network
# namespace with no route to the registry, so this is the last step that may use the network.
echo "setup: filling the Deno cache from deno.lock (${DENO_DIR:-~/.cache/deno})"
(
  cd "$(dirname "$0")/.."
  deno install --frozen --quiet
  warm=$(mktemp -d)
  trap 'rm -rf "$warm"' EXIT
  deno bundle --quiet --frozen --config deno.json -o "$warm/manager.js" src/manager/main.ts
)
# Deno keeps the file modes of npm tarballs, and some ship world-writable files (whatwg-url
# 5.0.0: 0666). Root runs this code (the daemon, the service unit from source), so nobody else
# may write any of it.
chmod -R go-w "${DENO_DIR:-$HOME/.cache/deno}"
echo "setup: ready ($(deno --version | head -n1))"
