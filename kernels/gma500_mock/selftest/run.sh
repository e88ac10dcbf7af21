#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Boots a kernel under QEMU (TCG) with the gma500_mock selftest as /init:
#   kernels/gma500_mock/selftest/run.sh [catalog id, default debian-6.1]
# The kernel and its headers come from the harness's cache (`shmemfuzz kernel fetch`);
# set VMLINUZ and HEADERS (the build dir), and MODDIR (lib/modules/<release>, if the kernel
# has modules) to use others, e.g. a self-built tree. Needs gcc, make, cpio, mkswap
# (util-linux) and qemu-system-x86. Exits 0 only if the guest printed
# "SELFTEST PASS" and the console shows no kernel report.
set -eu

id=${1:-debian-6.1}
here=$(cd "$(dirname "$0")" && pwd)
mod=$(dirname "$here")
root=$(cd "$mod/../.." && pwd)
log=${TMPDIR:-/tmp}/gma500-selftest-$id.log
work=$(mktemp -d "${TMPDIR:-/tmp}/gma500-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "${VMLINUZ:-}" ] || [ -z "${HEADERS:-}" ]; then
	out=$(cd "$root" && cargo run -q -p shmemfuzz -- kernel fetch "$id" --headers)
	HEADERS=$(echo "$out" | sed -n 's/^headers: //p')
	VMLINUZ=$(echo "$out" | sed -n "s/^$id: .* at //p")
fi
moddir=${MODDIR:-$(dirname "$VMLINUZ")/../lib/modules/${VMLINUZ##*/vmlinuz-}}
echo "kernel $VMLINUZ"
echo "headers $HEADERS"

# $1 and its dependencies from modules.dep, dependencies first; nothing if built in.
resolve() {
	local line dep name
	line=$(grep -sE "(^|/)$1\.ko(\.xz)?:" "$moddir/modules.dep" || true)
	[ -n "$line" ] || return 0
	for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac); do
		name=${dep##*/}
		resolve "${name%%.ko*}"
	done
	echo "${line%%:*}"
}

mkdir -p "$work/root/modules" "$work/mod"
i=10
for path in $( (resolve virtio_pci; resolve virtio_blk; resolve drm) | awk '!seen[$0]++'); do
	cp "$moddir/$path" "$work/root/modules/$i-${path##*/}"
	i=$((i + 1))
done

cp "$mod"/Kbuild "$mod"/*.c "$mod"/*.h "$work/mod/"
cp -r "$mod/include" "$work/mod/"
# Module BTF would need pahole (dwarves) on 6.12 and is of no use here.
make -s -C "$HEADERS" M="$work/mod" CONFIG_DEBUG_INFO_BTF_MODULES= modules
cp "$work/mod/gma500_mock.ko" "$work/root/"
gcc -static -O2 -Wall -I"$mod/include/uapi" -o "$work/root/init" \
	"$here/selftest.c" "$here/cases.c"
(cd "$work/root" && find . | cpio -o -H newc --quiet) >"$work/initrd.cpio"
truncate -s 256M "$work/swap.img"
mkswap -q "$work/swap.img"

status=0
timeout 180 qemu-system-x86_64 -accel tcg -cpu max \
	-machine pc,max-ram-below-4g=1G -m 2G -smp 1 \
	-nodefaults -display none -no-reboot -serial stdio \
	-kernel "$VMLINUZ" -initrd "$work/initrd.cpio" \
	-drive file="$work/swap.img",format=raw,if=virtio \
	-append "console=ttyS0 panic=-1 rdinit=/init rootfstype=ramfs" \
	</dev/null | tee "$log" || status=$?

echo "console log: $log"
if [ "$status" -ne 0 ]; then
	echo "qemu exited with status $status (124: timed out)"
	exit 1
fi
if grep -E "WARNING:|BUG:|Oops|Call Trace|general protection|Kernel panic" "$log"; then
	echo "kernel report on the console"
	exit 1
fi
grep -q "^SELFTEST PASS" "$log"
