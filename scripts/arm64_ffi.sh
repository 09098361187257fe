#!/usr/bin/env bash
# Runs the FFI layer's tests on Linux arm64 (aarch64) under qemu-user, on an x86_64 Linux host:
# the Deno.dlopen bindings (libc, mallopt, SO_PEERCRED) with aarch64's struct layouts, calling
# convention and glibc, with the same Deno version as the host's `deno`.
#
#   bash scripts/arm64_ffi.sh      (as root: CI is root; otherwise it re-runs itself with sudo)
#
# 1. Debian packages: qemu-user (qemu-aarch64) and the arm64 glibc and libgcc_s as a sysroot in
#    /usr/aarch64-linux-gnu. Installed without recommends, so qemu-user-binfmt is not: nothing on
#    the host starts arm64 binaries through qemu behind anyone's back.
# 2. The arm64 Deno CLI from npm, `npm pack @deno/linux-arm64-glibc@<host deno's version>`
#    (npm checks the tarball against the registry's integrity), unpacked into a temporary
#    directory.
# 3. A DENO_DIR of its own for the arm64 deno, filled from deno.lock (--frozen) by that deno
#    with only what FFI_TESTS import; then the tests run with --frozen --cached-only.
#    They run with --no-check: `deno task check` type-checks the same code on the host, and the
#    type checker under emulation costs ~100 s for nothing an arch could change.
#
# Exit status: 0 all passed; 1 a test failed, or the arm64 deno does not run under qemu;
# 77 skipped: something it needs cannot be had here (no apt-get or no package, no npm or no
# such npm package, the npm dependencies cannot be fetched, not an x86_64 Linux host). The
# last line printed is the result: "arm64-ffi: ok | ...", "arm64-ffi: FAILED | ..." or
# "arm64-ffi: SKIP: <reason>".
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests (and modules whose JSDoc examples run, as in `deno task test --doc`) of the FFI
# layer that need no TUN device, no network namespace and no root networking. Add a test here
# when it binds native code and can run on Linux arm64 without those (peercred_test needs root
# for setpriv, which CI is). darwin_libc_test calls glibc through the macOS 9-parameter
# ioctl/fcntl declarations: on aarch64 that is the AAPCS64 register/stack split.
FFI_TESTS=(
  src/tun/libc_test.ts src/tun/libc.ts
  src/tun/darwin_libc_test.ts src/tun/darwin_libc.ts
  src/host/allocator_test.ts src/host/allocator.ts
  src/daemon/peercred_test.ts
)
APT_PACKAGES=(qemu-user libc6-arm64-cross libgcc-s1-arm64-cross)
SYSROOT=/usr/aarch64-linux-gnu
NPM_PACKAGE=@deno/linux-arm64-glibc
SKIP=77
# A hung emulated test must not hold CI: each qemu run gets this many seconds.
RUN_TIMEOUT=600

skip() {
  echo "arm64-ffi: SKIP: $*"
  exit "$SKIP"
}
fail() {
  echo "arm64-ffi: FAILED | $*"
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E env -u SUDO_UID -u SUDO_GID -u SUDO_USER -u SUDO_COMMAND "PATH=$PATH" bash "$0" "$@"
fi

start=$SECONDS
elapsed() { echo "$((SECONDS - start)) s"; }

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  skip "this job emulates arm64 on an x86_64 Linux host; this is $(uname -s) $(uname -m)"
fi
for f in "${FFI_TESTS[@]}"; do
  [ -f "$f" ] || fail "$f (listed in FFI_TESTS in $0) does not exist"
done

# The host's deno decides the version: "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)".
host_version=$(deno --version | head -n 1)
version=$(awk '{print $2}' <<<"$host_version")
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
  skip "cannot tell the host deno's version from '$host_version'"

# 1. qemu-aarch64 and the arm64 sysroot.
have_sysroot() {
  command -v qemu-aarch64 >/dev/null && [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] &&
    [ -e "$SYSROOT/lib/libc.so.6" ] && [ -e "$SYSROOT/lib/libgcc_s.so.1" ]
}
if ! have_sysroot; then
  command -v apt-get >/dev/null || skip "no apt-get here to install ${APT_PACKAGES[*]}"
  echo "arm64-ffi: installing ${APT_PACKAGES[*]} (apt, no recommends)"
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$(mktemp)
  apt_install() {
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
      "${APT_PACKAGES[@]}" >"$apt_log" 2>&1
  }
  if ! apt_install; then
    apt-get update -q >>"$apt_log" 2>&1 || true
    if ! apt_install; then
      tail -n 5 "$apt_log" >&2
      why=$(grep -E '^E:' "$apt_log" | head -n 1 || true)
      rm -f "$apt_log"
      skip "apt-get cannot install ${APT_PACKAGES[*]}: ${why:-see above}"
    fi
  fi
  rm -f "$apt_log"
  have_sysroot || fail "${APT_PACKAGES[*]} installed, but qemu-aarch64 or $SYSROOT/lib is missing"
fi
qemu_version=$(qemu-aarch64 --version | head -n 1)

# 2. The arm64 deno of the same version.
work=$(mktemp -d /tmp/kconnect-arm64.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v npm >/dev/null || skip "no npm here to fetch $NPM_PACKAGE@$version"
echo "arm64-ffi: npm pack $NPM_PACKAGE@$version"
if ! tarball=$(cd "$work" && npm pack --loglevel=error "$NPM_PACKAGE@$version" 2>"$work/npm.err"); then
  cat "$work/npm.err" >&2
  why=$(grep -E '^npm (error|ERR!) ' "$work/npm.err" | grep -vE ' code | A complete log' |
    head -n 1 | sed -E 's/^npm (error|ERR!) //' || true)
  skip "npm cannot fetch $NPM_PACKAGE@$version: ${why:-see above}"
fi
tar -xzf "$work/$tarball" -C "$work" package/deno
deno_arm64="$work/package/deno"
[ -x "$deno_arm64" ] || fail "$NPM_PACKAGE@$version has no executable package/deno"
echo "arm64-ffi: $tarball, deno sha256 $(sha256sum "$deno_arm64" | awk '{print $1}')"

arm64() {
  DENO_DIR="$work/deno-dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 \
    timeout --kill-after=10 "$RUN_TIMEOUT" qemu-aarch64 -L "$SYSROOT" "$deno_arm64" "$@"
}
arm64_version=$(arm64 --version 2>&1 | head -n 1) ||
  fail "the arm64 deno does not run under $qemu_version: $arm64_version"
[ "$arm64_version" = "deno $version (stable, release, aarch64-unknown-linux-gnu)" ] ||
  fail "under qemu the arm64 deno says '$arm64_version', not deno $version for aarch64"
echo "arm64-ffi: $arm64_version under $qemu_version ($(elapsed))"

# 3. Its own cache of what the tests import, from deno.lock.
echo "arm64-ffi: filling the arm64 deno's cache from deno.lock"
if ! arm64 install --frozen --quiet --entrypoint "${FFI_TESTS[@]}" >"$work/install.log" 2>&1; then
  tail -n 5 "$work/install.log" >&2
  skip "the arm64 deno cannot fetch the tests' dependencies from deno.lock: $(grep -m 1 -i error "$work/install.log" || tail -n 1 "$work/install.log")"
fi

echo "arm64-ffi: qemu-aarch64 deno test --doc -A --frozen --cached-only --no-check ${FFI_TESTS[*]}"
set +e
arm64 test --doc -A --frozen --cached-only --no-check "${FFI_TESTS[@]}" </dev/null 2>&1 |
  tee "$work/test.log"
status=${PIPESTATUS[0]}
set -e

# "ok | 5 passed | 0 failed (3s)" or "FAILED | 4 passed | 1 failed (3s)".
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$work/test.log" | tail -n 1 || true)
[ -n "$summary" ] || fail "no deno test summary (exit status $status, $(elapsed))"
# As in CI: no test may be skipped here (peercred_test is root-only, and this runs as root).
if grep -qE ' \.\.\. ignored' "$work/test.log"; then
  grep -E ' \.\.\. ignored' "$work/test.log" >&2
  fail "${summary#* | } — a test was skipped, and none may be ($(elapsed))"
fi
[ "$status" -eq 0 ] || fail "${summary#* | } (exit status $status, $(elapsed))"
echo "arm64-ffi: ok | ${summary#* | } | deno $version aarch64 under qemu-user, $(elapsed)"
