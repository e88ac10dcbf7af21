#!/usr/bin/env bash
# The ClusterFuzzLite $OUT, end to end: builds it with .clusterfuzzlite/build.sh into a
# scratch directory (SRC = this checkout; the kernel comes from the cache, nothing is
# rebuilt), then runs the kernel target from it inside a clean Debian 12 chroot that has no
# QEMU and no checkout, and checks that it executed inputs on the real kernel with the QEMU
# of $OUT/shmemfuzz-runtime.
#   ci/cflite-test.sh [RUNS]        default 12 executions (libFuzzer -runs), from the seeds
# The chroot is `debootstrap --variant=minbase bookworm` from this machine's Debian mirror,
# made once and kept as <cache>/cflite/debian-bookworm-minbase.tar.gz (SHMEMFUZZ_CACHE or
# .cache). Needs root (chroot, mounts); installs debootstrap and unzip if missing. A trap
# unmounts everything, kills whatever still runs inside the chroot and removes the scratch
# directory. Run by ci/test.sh when SHMEMFUZZ_CFLITE=1 (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${1:-12}
[ "$(id -u)" -eq 0 ] || { echo "cflite-test: needs root (chroot and mounts)" >&2; exit 1; }
export SHMEMFUZZ_CACHE=${SHMEMFUZZ_CACHE:-$repo/.cache}
base=$SHMEMFUZZ_CACHE/cflite/debian-bookworm-minbase.tar.gz
work=$(mktemp -d /tmp/shmemfuzz-cflite-XXXXXX)
root=$work/root
qemu_rt=/out/shmemfuzz-runtime/qemu/bin/qemu-system-x86_64
sampler=
started=$(date +%s)

# PIDs of the processes whose root directory is the chroot.
inside() {
  local p
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then echo "${p#/proc/}"; fi
  done
}
cleanup() {
  local status=$? m pid
  if [ -n "$sampler" ]; then touch "$work/stop"; wait "$sampler" 2>/dev/null || true; fi
  for pid in $(inside); do kill -KILL "$pid" 2>/dev/null || true; done
  # Every mount under the scratch directory (ours, or debootstrap's after a failure), deepest first.
  for m in $(findmnt -rn -o TARGET | grep -F "$work/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if findmnt -rn -o TARGET | grep -qF "$work/"; then
    echo "cflite-test: mounts remain under $work; not removing it" >&2
    exit 1
  fi
  rm -rf "$work"
  echo "cflite-test: $(( $(date +%s) - started )) s in all"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v unzip >/dev/null || need+=(unzip)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

# 1. $OUT, as ClusterFuzzLite's build step makes it.
mkdir -p "$work/src" "$work/out"
ln -s "$repo" "$work/src/shmemfuzz"
fuzz_dir=${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}
SRC=$work/src OUT=$work/out FUZZ_TARGET_DIR=${fuzz_dir:-fuzz/target} .clusterfuzzlite/build.sh
built=$(date +%s)

# 2. A clean Debian 12 without QEMU: the cached base, or debootstrap once.
if [ ! -f "$base" ]; then
  # The first non-security Debian URI apt uses (deb822 or one-line sources), else deb.debian.org.
  mirror=${SHMEMFUZZ_DEBIAN_MIRROR:-$({
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' || true
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '/^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' || true
  } | awk '!/security/ && !n++')}
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "cflite-test: debootstrap bookworm from $mirror (once; cached as $base)"
  if ! debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$base")"
  tar -C "$work/base" -czf "$base.partial" .
  mv "$base.partial" "$base"
  rm -rf "$work/base"
fi
mkdir "$root"
tar -C "$root" -xzf "$base"
if chroot "$root" /bin/sh -c 'command -v qemu-system-x86_64 || ls /usr/share/qemu /usr/share/seabios' >/dev/null 2>&1; then
  echo "cflite-test: the chroot has QEMU or its firmware; it must not" >&2
  exit 1
fi

# 3. $OUT moved into the chroot, the seeds unzipped, and the target run from there.
mv "$work/out" "$root/out"
mkdir "$root/out/corpus"
unzip -q "$root/out/shmem_ops_seed_corpus.zip" -d "$root/out/corpus"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
# Which QEMU runs: every QEMU command line seen inside the chroot, until the stop file.
: >"$work/qemu-seen"
(
  while [ ! -e "$work/stop" ]; do
    for pid in $(inside); do
      { tr '\0' ' ' <"/proc/$pid/cmdline"; echo; } 2>/dev/null | grep -F qemu-system >>"$work/qemu-seen" || true
    done
    sleep 0.5
  done
) &
sampler=$!
log=$work/libfuzzer.log
status=0
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp \
  SHMEMFUZZ_STATS=/tmp/stats.json SHMEMFUZZ_KNOWN=/out/shmemfuzz-runtime/kernels/known/6.1.toml \
  ${SHMEMFUZZ_ACCEL:+SHMEMFUZZ_ACCEL=$SHMEMFUZZ_ACCEL} \
  /out/shmem_ops -runs="$runs" -seed=1 -print_final_stats=1 /out/corpus >"$log" 2>&1 || status=$?
ran=$(date +%s)
touch "$work/stop"
wait "$sampler" || true
sampler=
sort -u -o "$work/qemu-seen" "$work/qemu-seen"

# 4. What happened.
fail() {
  echo "cflite-test: FAILED: $*" >&2
  tail -40 "$log" >&2
  exit 1
}
[ "$status" -eq 0 ] || fail "shmem_ops exited $status"
executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
grep -qE "^Done $runs runs" "$log" || fail "no 'Done $runs runs' line"
[ "${executed:-0}" -ge "$runs" ] || fail "executed ${executed:-0} inputs, asked for $runs"
stats=$(cat "$root/tmp/stats.json" 2>/dev/null) || fail "the target wrote no stats"
kernel_runs=$(sed -n 's/.*"runs": *\([0-9]*\).*/\1/p' <<<"$stats" | head -1)
boots=$(sed -n 's/.*"boots": *\([0-9]*\).*/\1/p' <<<"$stats" | head -1)
[ "${kernel_runs:-0}" -gt 0 ] && [ "${boots:-0}" -gt 0 ] || fail "no program ran on a booted kernel: $stats"
grep -q '"kernel": *"debian-6.1"' <<<"$stats" || fail "not on debian-6.1: $stats"
grep -qF "$qemu_rt" "$work/qemu-seen" 2>/dev/null || fail "no QEMU of the runtime was seen running: $(cat "$work/qemu-seen")"
grep -qF -- "-L /out/shmemfuzz-runtime/qemu/firmware" "$work/qemu-seen" || fail "QEMU ran without the runtime's firmware"
if grep -vqF "$qemu_rt" "$work/qemu-seen"; then fail "another QEMU ran: $(cat "$work/qemu-seen")"; fi
for _ in 1 2 3 4 5; do [ -z "$(inside)" ] && break; sleep 1; done
[ -z "$(inside)" ] || fail "processes left in the chroot: $(inside | tr '\n' ' ')"
grep -E '^(Done|stat::)' "$log"
echo "cflite-test: ok: $executed executions on debian-6.1 (the target's stats: $boots boot(s), programs" \
  "run) in a Debian 12 chroot without QEMU, with $qemu_rt; build $((built - started)) s, chroot" \
  "and run $((ran - built)) s, \$OUT $(du -sh "$root/out" | cut -f1)"
