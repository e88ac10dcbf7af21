#!/usr/bin/env bash
# The test suite CI runs (.ci/run calls this). Tiers, in order:
#   1. format and lints;
#   2. unit, golden-file and CLI tests (no VM), then the pure fuzz targets under libFuzzer;
#   3. VM tests: boot real Debian kernels under QEMU (TCG here) and run programs;
#   4. the self-built kernel's tests; 5. a 60 s fuzzing campaign (ci/fuzz-smoke.sh) and its
#      report opened in headless Chromium, beside a fixture campaign's; the ClusterFuzzLite
#      $OUT, its kernel target run in a Debian chroot without QEMU (ci/cflite-test.sh, root);
#   6. bisection; 7. only with SHMEMFUZZ_KASAN=1: the KASAN kernel (a second kernel built
#      from source) and the planted swapoff/eviction race, 200 repetitions per kernel, then
#      the race target's campaign figures (ci/race-campaign.sh: hours).
#   8. only with SHMEMFUZZ_612=1: linux-source-6.12 built (src-6.12) and its planted
#      switches checked at boot and through every route to shmem_replace_folio();
#      src-6.12-kasan built and the planted race hit on zram swap, clean without it.
# See docs/testing.md for what each tier needs and how long it takes.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }
# Work directories the harness makes in /tmp: the suite must leave none of its own behind.
workdirs() { find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'shmemfuzz-*' 2>/dev/null | sort; }
workdirs_before=$(workdirs)

step setup
# chromium for the report's browser test: it installs in ~20 s, so it is in the default suite.
ci/setup.sh browser

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# fuzz/ is its own cargo workspace (cargo-fuzz's layout): linted on its own.
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets --locked --target-dir fuzz/target/clippy -- -D warnings

step "unit, golden and CLI tests"
cargo test --workspace --locked

step "parsers under libFuzzer: program text, protocol, console, oracle model, bundles (20 s each; ~4 min fresh build)"
ci/fuzz-parsers.sh 20

step "VM tests (real kernels under QEMU)"
cargo test -p shmemfuzz --locked --test vm --test vm_boot --test vm_zone --test vm_runner --test vm_replay --test vm_fuzz --test vm_threads --test vm_moving --test vm_large_folio --test vm_interrupt -- --ignored --test-threads 2 --skip measure_boot_times --skip growing_the_1g_hugetlb_pool

step "installed like a tool: cargo install from a copy of the checkout, the copy hidden, kernel list and run from /tmp (a release build: ~7 min fresh, seconds after)"
# On its own: its release build would starve the VM tests' guests of CPU.
cargo test -p shmemfuzz --locked --test install -- --ignored --test-threads 1 --nocapture

step "self-built kernel with the planted regression (a fresh build takes ~5 min; cached after)"
cargo test -p shmemfuzz --locked --test kbuild --test export_c -- --ignored --test-threads 2

step "fuzz smoke: the main job for 60 s on Debian 6.1 (builds the fuzz target, ~3 min fresh)"
ci/fuzz-smoke.sh 60s

step "the campaign report in headless Chromium: a fixture campaign, then the smoke campaign's (plots drawn, no console errors)"
cargo test -p shmemfuzz --locked --test report_browser -- --ignored --nocapture
SHMEMFUZZ_REPORT_DIR="$PWD/fuzz/findings-smoke" cargo test -p shmemfuzz --locked --test report_browser -- --ignored --nocapture

step "ClusterFuzzLite \$OUT: built, then shmem_ops run from it in a Debian 12 chroot without QEMU (~30 s warm; debootstrap and the targets' build once, ~5 min)"
ci/cflite-test.sh

step "bisection over a synthetic git history and Debian versions (~11 min fresh; 2–6 min cached)"
cargo test -p shmemfuzz --locked --test bisect -- --ignored --test-threads 1

if [ "${SHMEMFUZZ_KASAN:-0}" = 1 ]; then
  step "KASAN kernel and the planted swapoff/eviction race (SHMEMFUZZ_KASAN=1; see docs/testing.md)"
  cargo test -p shmemfuzz --locked --test vm_kasan -- --ignored --test-threads 1 --nocapture
  step "the race found by the fuzzer: seeds alone, campaigns from the seeds, clean campaigns (SHMEMFUZZ_KASAN=1; hours: see ci/race-campaign.sh)"
  ci/race-campaign.sh all
fi

if [ "${SHMEMFUZZ_612:-0}" = 1 ]; then
  step "src-6.12 and its planted switches (SHMEMFUZZ_612=1; see docs/testing.md)"
  cargo test -p shmemfuzz --locked --test kbuild_612 -- --ignored --test-threads 1 --nocapture
  cargo test -p shmemfuzz --locked --test routes_612 -- --ignored --test-threads 1 --nocapture
  cargo test -p shmemfuzz --locked --test race_612 -- --ignored --test-threads 1 --nocapture
fi

step "no QEMU and no work directory left behind"
if pgrep -a qemu-system-x86 | grep -v '<defunct>' | grep -q shmemfuzz; then
  pgrep -a qemu-system-x86 >&2
  echo "a QEMU process outlived the tests" >&2
  exit 1
fi
left=$(comm -13 <(echo "$workdirs_before") <(workdirs))
if [ -n "$left" ]; then
  echo "work directories left behind by the suite:" >&2
  echo "$left" >&2
  exit 1
fi
step "done"
