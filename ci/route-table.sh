#!/usr/bin/env bash
# Measures every route that brings a page of a DMA32-masked object back from swap on one
# kernel (examples/routes/README.md): each route on each swap media, order-0 and under
# `thp always`, with the planted switch shmem.planted_no_replace=1 off and, on self-built
# kernels, on. Prints one row per run (see ci/route-table.py); traces and logs are kept.
#   ci/route-table.sh [KERNEL] [OUT_DIR]       (default: src-6.12)
# ROUTES="fault swapoff" MEDIA="disk" ORDERS="0" limit the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
kernel=${1:-src-6.12}
out=${2:-target/route-table/$kernel}
mkdir -p "$out"
cargo build --quiet --release --locked -p shmemfuzz
declare -A prog=(
  [fault]=examples/routes/fault.prog [read]=examples/routes/read.prog
  [write]=examples/routes/write.prog [swapoff]=examples/routes/swapoff.prog
  [willneed]=examples/dma32-willneed.prog [readahead]=examples/dma32-readahead.prog
  [gem-fault]=examples/routes/gem-fault.prog [gem-pin]=examples/routes/gem-pin.prog
)
routes=${ROUTES:-fault read write swapoff willneed readahead gem-fault gem-pin}
media=${MEDIA:-disk ssd zram}
orders=${ORDERS:-0 large}
switches="off"
case "$kernel" in src-*) switches="off on" ;; esac
echo "| route | media | folios | switch | exit | masked pages at the end: zones, orders, moved | signatures |"
echo "|---|---|---|---|---|---|---|"
for route in $routes; do
  for m in $media; do
    for order in $orders; do
      for sw in $switches; do
        name="$route-$m-$order-$sw"
        p="$out/$name.prog"
        if [ "$order" = large ]; then echo "thp always" > "$p"; else : > "$p"; fi
        cat "${prog[$route]}" >> "$p"
        # page_owner=off: reading the page_owner record of a misplaced page oopses on 6.12.118
        # (tests/kbuild_612.rs); the table is about the replacement, not that bug.
        args=(--append "shmemfuzz.swap_media=$m" --append page_owner=off)
        [ "$sw" = on ] && args+=(--append shmem.planted_no_replace=1)
        status=0
        timeout 600 target/release/shmemfuzz run "$p" --kernel "$kernel" "${args[@]}" \
          --trace "$out/$name.json" > "$out/$name.log" 2>&1 || status=$?
        python3 ci/route-table.py "$route" "$m" "$order" "$sw" "$status" \
          "$out/$name.json" "$out/$name.log"
      done
    done
  done
done
