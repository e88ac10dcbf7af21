#!/usr/bin/env bash
# Installs the host packages shmemfuzz needs on Debian 12. As root it installs them itself
# (apt shows its progress); otherwise it prints the exact command and fails.
#   ci/setup.sh            the packages every tier needs
#   ci/setup.sh browser    also Debian's chromium, for the report's browser test (about 20 s
#                          to install on a fresh machine; ci/test.sh asks for it)
set -euo pipefail

# command -> Debian package that provides it
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86   # the VMs
  [depmod]=kmod                          # module dependency order of Debian's kernels
  [apt-get]=apt                          # apt-get download of kernel packages
  [dpkg-deb]=dpkg                        # unpacking them without installing
  [gcc]=gcc                              # crates with C parts; the benchmark's C floor
  [g++]=g++                              # libFuzzer (built by libfuzzer-sys for fuzz/)
  [nm]=binutils                          # mm/ text ranges of self-built kernels (KCOV feedback)
  [gcc-12]=gcc-12                        # the mock driver: Debian's kernels are built with gcc-12
  [make]=make
  [flex]=flex                            # building kernels from source (kernels/configs/)
  [bison]=bison
  [bc]=bc
  [perl]=perl
  [xz]=xz-utils
  [patch]=patch                          # kernels/regressions/*.patch
  [cpio]=cpio                            # the initramfs writer's test reads archives back with it
  [mkswap]=util-linux                    # the swap header's test compares with it
)
if [ "${1:-}" = browser ]; then
  need[chromium]=chromium                # headless: the report's browser test (tests/report_browser.rs)
fi
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# libraries, checked by package: objtool needs libelf, a kernel build's certs need openssl
for pkg in libelf-dev libssl-dev libc6-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust with rustup (https://rustup.rs), stable >= 1.85" >&2
  exit 1
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: host packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
