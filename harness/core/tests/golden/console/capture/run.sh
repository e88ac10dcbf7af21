#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# usage: run.sh VMLINUZ INITRAMFS OUT.log [kernel command line words...]
# Boots under TCG (no KVM here), bounded by timeout; the guest's console goes to OUT.log.
# Environment: MEM (default 1G), SMP (default 1).
kern=$1; initrd=$2; out=$3; shift 3
timeout 120 qemu-system-x86_64 -accel tcg -cpu max -m "${MEM:-1G}" -smp "${SMP:-1}" \
  -display none -no-reboot -nodefaults -serial stdio \
  -kernel "$kern" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 rdinit=/init $*" > "$out" 2>&1 < /dev/null
echo "rc=$?"
