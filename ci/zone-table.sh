#!/usr/bin/env bash
# Measures every path that moves a shmem page outside swap on one kernel: runs each example
# of docs/zone-oracle.md ("Beyond swap") with its topology, keeps the traces, and prints one
# row per example: the moving operation's result, pages of DMA32-masked objects at or above
# 4 GiB after it / pages observed, whether every read matched, and the verdict's signatures.
#   ci/zone-table.sh [KERNEL] [OUT_DIR]      (default: the catalog's default kernel)
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=${1:-debian-6.1}
out=${2:-target/zone-table/$kernel}
mkdir -p "$out"
cargo build --quiet --release --locked -p shmemfuzz
# example -> topology
declare -A topo=(
  [collapse-dma32]=flat [khugepaged-dma32]=flat [soft-offline-dma32]=flat
  [gem-collapse-pin]=flat [compact-dma32]=flat [offline-dma32]=blocks
  [mbind-dma32]=numa [hugetlb-1g-dma32]=hugetlb
)
for ex in collapse-dma32 khugepaged-dma32 soft-offline-dma32 gem-collapse-pin compact-dma32 \
          offline-dma32 mbind-dma32 hugetlb-1g-dma32; do
  status=0
  timeout 900 target/release/shmemfuzz run "examples/$ex.prog" --kernel "$kernel" \
    --topology "${topo[$ex]}" --trace "$out/$ex.json" > "$out/$ex.log" 2>&1 || status=$?
  python3 ci/zone-table.py "$ex" "${topo[$ex]}" "$status" "$out/$ex.json" "$out/$ex.log"
done
