#!/bin/bash -eu
# Lays out the runtime of the kernel fuzz target shmem_ops in DIR (build.sh gives
# $OUT/shmemfuzz-runtime; the target finds it beside itself: harness/host/src/kernels/runtime.rs):
#   DIR/kernels/catalog.toml, kernels/gma500_mock/, kernels/known/   the data of a checkout
#   DIR/.cache/kernels/<kernel>, <kernel>-headers                    as `shmemfuzz kernel fetch` lays them out,
#                                                                    with only the modules the guest loads
#   DIR/.cache/modules/gma500_mock/<release>-<key>/                  the mock driver, built here
#   DIR/qemu/bin/qemu-system-x86_64, qemu/lib/ (ld-linux and every library ldd lists),
#   DIR/qemu/modules/ (accel-*.so: TCG is a module in Debian's QEMU), qemu/firmware/ (-L)
#   .clusterfuzzlite/runtime.sh DIR SHMEM_OPS
# SHMEM_OPS is the built target: it is started once on an empty input (which starts the
# target but boots nothing) so that it builds the mock driver into DIR/.cache with this
# machine's make and gcc-12; the runner then needs neither. The kernel is SHMEMFUZZ_KERNEL
# (default debian-6.1), fetched into (or found in) the usual cache: SHMEMFUZZ_CACHE or the
# checkout's .cache. Needs: the checkout as the working directory, cargo, qemu-system-x86_64
# (its binary, libraries, modules and firmware are copied), ldd.
rt=$1
target=$2
kernel=${SHMEMFUZZ_KERNEL:-debian-6.1}
[ -d kernels ] && [ -f fuzz/Cargo.toml ] || { echo "runtime.sh: run from a shmemfuzz checkout" >&2; exit 1; }
rm -rf "$rt"
mkdir -p "$rt/kernels" "$rt/.cache/kernels" "$rt/qemu/bin" "$rt/qemu/lib" "$rt/qemu/modules" "$rt/qemu/firmware"

# The data a checkout holds that the target reads.
cp kernels/catalog.toml "$rt/kernels/"
cp -r kernels/gma500_mock kernels/known "$rt/kernels/"

# The kernel and its headers, from the cache (fetched there first if missing).
fetched=$(cargo run --quiet --locked -p shmemfuzz -- kernel fetch "$kernel" --headers)
echo "$fetched"
bzimage=$(sed -n "s/^$kernel: .* at //p" <<<"$fetched")
headers=$(sed -n 's/^headers: //p' <<<"$fetched")
[ -f "$bzimage" ] && [ -d "$headers" ] || { echo "runtime.sh: no kernel or headers in: $fetched" >&2; exit 1; }
image_dir=$(dirname "$(dirname "$bzimage")")             # <cache>/kernels/<name>/boot/vmlinuz-*
headers_dir=$(dirname "$(dirname "$(dirname "$headers")")") # <name>-headers/usr/src/linux-headers-*
cp -a "$image_dir" "$headers_dir" "$rt/.cache/kernels/"
# Of the kernel's modules (390 MB), only those the guest loads: harness/host/src/guest/mod.rs's
# BASE_MODULES and MOCK_DEPENDENCIES, with what modules.dep says they depend on.
release=${bzimage##*/vmlinuz-}
mdir=$rt/.cache/kernels/$(basename "$image_dir")/lib/modules/$release
# (found by name under harness/host/src, wherever the guest module lives)
wanted=$(grep -rhE '^pub const (BASE_MODULES|MOCK_DEPENDENCIES): ' harness/host/src |
  sed -n 's/^pub const [A-Z_]*: &\[&str\] = &\[\(.*\)\];$/\1/p' | tr -d '" ' | tr ',\n' '  ' | xargs)
[ "$(wc -w <<<"$wanted")" -ge 2 ] || { echo "runtime.sh: no BASE_MODULES and MOCK_DEPENDENCIES under harness/host/src" >&2; exit 1; }
awk -v want="$wanted" '
  BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { gsub("-", "_", w[i]); wanted[w[i]] = 1 } }
  { path = $1; sub(":$", "", path); name = path; sub(".*/", "", name); sub("[.]ko.*$", "", name)
    gsub("-", "_", name)
    if (name in wanted) { print path; for (i = 2; i <= NF; i++) print $i } }' \
  "$mdir/modules.dep" | sort -u >"$rt/.keep"
(cd "$mdir" && find kernel -type f -name '*.ko*' | grep -vxF -f "$rt/.keep" | xargs -r rm -f)
find "$mdir/kernel" -type d -empty -delete
echo "runtime.sh: kept $(wc -l <"$rt/.keep") of the kernel's modules ($wanted and their dependencies)"
rm "$rt/.keep"

# QEMU: the binary, every library it loads (the runtime's own loader starts it, so the
# runner's glibc does not matter), its accelerator modules and its firmware.
qemu=$(command -v qemu-system-x86_64)
cp -L "$qemu" "$rt/qemu/bin/"
moddir=
for d in /usr/lib/x86_64-linux-gnu/qemu /usr/lib64/qemu /usr/lib/qemu; do
  if compgen -G "$d/accel-*.so" >/dev/null; then moddir=$d; break; fi
done
if [ -n "$moddir" ]; then cp -L "$moddir"/accel-*.so "$rt/qemu/modules/"; fi
copy_libs() {
  # ldd prints `name => /path (addr)` and, for the loader, `/lib64/ld-linux-x86-64.so.2 (addr)`.
  ldd "$1" | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | while read -r lib; do
    cp -L "$lib" "$rt/qemu/lib/$(basename "$lib")"
  done
}
copy_libs "$qemu"
for m in "$rt"/qemu/modules/*.so; do [ -e "$m" ] && copy_libs "$m"; done
[ -f "$rt/qemu/lib/ld-linux-x86-64.so.2" ] || { echo "runtime.sh: ldd named no ld-linux-x86-64.so.2" >&2; exit 1; }
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
  [ -d "$d" ] || continue
  find "$d" -maxdepth 1 \( -type f -o -type l \) -exec cp -L {} "$rt/qemu/firmware/" \;
done
[ -f "$rt/qemu/firmware/bios-256k.bin" ] || { echo "runtime.sh: no bios-256k.bin (install seabios)" >&2; exit 1; }
"$rt/qemu/lib/ld-linux-x86-64.so.2" --library-path "$rt/qemu/lib" "$rt/qemu/bin/qemu-system-x86_64" --version | head -1

# The mock driver, built once here by the target itself (no VM boots for an empty input).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
: >"$scratch/empty"
SHMEMFUZZ_RUNTIME="$rt" SHMEMFUZZ_ROOT= SHMEMFUZZ_CACHE= SHMEMFUZZ_ACCEL=tcg SHMEMFUZZ_KERNEL="$kernel" \
  SHMEMFUZZ_WORKDIR="$scratch/vm" "$target" "$scratch/empty" >"$scratch/log" 2>&1 ||
  { cat "$scratch/log" >&2; echo "runtime.sh: the target could not start from $rt" >&2; exit 1; }
compgen -G "$rt/.cache/modules/gma500_mock/*/src/gma500_mock.ko" >/dev/null ||
  { cat "$scratch/log" >&2; echo "runtime.sh: the mock driver was not built" >&2; exit 1; }
rm -rf "$rt"/.cache/accel

cat >"$rt/README.md" <<EOF
# shmemfuzz runtime

What the shmem_ops fuzz target beside this directory needs at run time: QEMU
($(sed -n 1p <("$rt/qemu/lib/ld-linux-x86-64.so.2" --library-path "$rt/qemu/lib" "$rt/qemu/bin/qemu-system-x86_64" --version)))
with its libraries, loader, modules and firmware; the kernel $kernel ($(basename "$bzimage")) with
its modules and headers and the mock GMA500 driver built for it; the kernel catalog.
Found by the target as \`<its directory>/shmemfuzz-runtime\` (or \$SHMEMFUZZ_RUNTIME).
Written by .clusterfuzzlite/runtime.sh from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
The target writes here at run time (.cache/accel, the headers' Makefile when moved): keep it writable.
EOF
du -sh "$rt" | awk '{print "runtime.sh: " $1 " in " $2}'
