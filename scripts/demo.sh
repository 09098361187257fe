#!/usr/bin/env bash
# Runs kconnect's main job end to end on this machine: installs what it needs
# (scripts/setup.sh), then `deno task demo` (tests/demo.ts): a test cluster in network
# namespaces, `kconnect up` on its "laptop", programs there using the cluster's names
# (curl http://web.default/, getent hosts web) and IPs, `kconnect down`, and everything removed
# again, even on failure or Ctrl-C. Exits non-zero when any step fails. Runs as root (through
# sudo when started as another user): it creates TUN devices, routes and network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi
bash scripts/setup.sh
exec deno task demo "$@"
