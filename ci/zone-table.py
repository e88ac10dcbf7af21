"""One row of ci/zone-table.sh from a run's trace: the operations that move pages, their
results, and where the DMA32-masked objects' pages are after each (see the script)."""
import json
import re
import sys

MOVING = re.compile(r"^(madvise \S+ .* (collapse|soft-offline|hugepage)|khugepaged|compact|"
                    r"mbind|move-pages|migrate-pages|offline|hugetlb|pin)\b")
example, topology, status, trace_path, log_path = sys.argv[1:6]
log = open(log_path, errors="replace").read()
sigs = sorted(set(re.findall(r"signature: (\S+)", log)))
try:
    trace = json.load(open(trace_path))
except (OSError, ValueError):
    print(f"| {example} | {topology} | no trace (exit {status}) | | | {' '.join(sigs)} |")
    sys.exit(0)
# Every check and read touch of the run compared bytes; a mismatch is a `[data]` finding.
data_ok = "[data]" not in log
for op in trace["ops"]:
    if not MOVING.match(op["op"]):
        continue
    above = total = 0
    for p in op.get("pages", []):
        zones = p.get("zones", "")
        above += zones.count("N") + zones.count("?")
        total += len(zones)
    result = op["result"] if isinstance(op["result"], str) else json.dumps(op["result"])
    print(f"| {example} | {topology} | `{op['op']}` | {result} | {above}/{total} |"
          f" {'intact' if data_ok else 'MISMATCH'} | {' '.join(sigs) or 'clean'} |")
