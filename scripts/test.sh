#!/usr/bin/env bash
# Runs kconnect's whole test suite: installs what it needs (scripts/setup.sh), then
# `deno task test`. Many tests use network namespaces and TUN devices, so it runs as root
# (through sudo when started as another user). Extra arguments go to `deno test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi
bash scripts/setup.sh
exec deno task test "$@"
