#!/usr/bin/env bash
# Runs kconnect's whole test suite: installs what it needs (scripts/setup.sh), then
# `deno task test`. Many tests use network namespaces and TUN devices, so it runs as root
# (through sudo when started as another user). Extra arguments go to `deno test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  # Not the SUDO_* variables: under sudo kconnect fetches credentials as SUDO_UID, and the
  # tests start their root kconnect processes as root, not on behalf of whoever ran this.
  exec sudo -E env -u SUDO_UID -u SUDO_GID -u SUDO_USER -u SUDO_COMMAND "PATH=$PATH" bash "$0" "$@"
fi
bash scripts/setup.sh
exec deno task test "$@"
