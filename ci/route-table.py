"""One row of ci/route-table.sh from a run's trace: where the DMA32-masked objects' pages are
at the end: zone counts (D DMA32, N Normal), folio orders, and how many are at another PFN
than at their first observation (a replacement, or a read from swap, moved them).
Self-built kernels have no kprobes (and gcc inlines shmem_replace_folio()), so whether the
route went through shmem_should_replace_folio() shows by the planted switch: on, the pages
stay where the swap cache had them."""
import json
import re
import sys

route, media, order, switch, status, trace_path, log_path = sys.argv[1:8]
log = open(log_path, errors="replace").read()
sigs = sorted(set(re.findall(r"signature: (\S+)", log)))
row = f"| {route} | {media} | {order} | {switch} | {status}"
try:
    trace = json.load(open(trace_path))
except (OSError, ValueError):
    print(f"{row} | no trace | {' '.join(sigs)} |")
    sys.exit(0)
masked = set(re.findall(r"^(?:dma32|gem) (\S+)", trace["program"], re.M))
first = {}  # (object, index) -> the PFN of the page's first resident observation
last = {}   # object -> its last observation
for op in trace["ops"]:
    for p in op["pages"]:
        if p["obj"] not in masked:
            continue
        for i, pfn in enumerate(p["pfns"]):
            if p["states"][i] == "R":
                first.setdefault((p["obj"], i), pfn)
        last[p["obj"]] = p
cells = []
for obj, p in sorted(last.items()):
    zones = {z: p["zones"].count(z) for z in "dDN?" if p["zones"].count(z)}
    orders = sorted(set(o for o, s in zip(p["orders"], p["states"]) if s == "R"))
    new = sum(1 for i, pfn in enumerate(p["pfns"])
              if p["states"][i] == "R" and first.get((obj, i), pfn) != pfn)
    z = " ".join(f"{k}{v}" for k, v in zones.items()) or "none resident"
    cells.append(f"{obj}: {z}, order {'/'.join(orders) or '-'}, {new} new")
print(f"{row} | {'; '.join(cells)} | {' '.join(sigs) or 'clean'} |")
