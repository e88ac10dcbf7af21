#!/usr/bin/env bash
# The pure fuzz targets under libFuzzer, briefly: the program text parser, the protocol
# decoder, the console parser, the oracle model and bundle reading (fuzz/fuzz_targets/).
#   ci/fuzz-parsers.sh [SECONDS]        default 20 s per target
# Built on stable Rust with the coverage instrumentation `cargo fuzz` adds (SanitizerCoverage
# inline 8-bit counters, PC table, compare tracing) but no sanitizer, into
# fuzz/target/parsers; each target runs from a scratch copy of its corpus (fuzz/corpus/<name>
# when there is one, never written). Exit 1 on a crash, leak or timeout of any target; the
# crashing input is kept under fuzz/findings-parsers/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
targets=(program_text protocol_decode console_parse oracle_model bundle_read)
export RUSTFLAGS="--cfg fuzzing -C debug-assertions -C overflow-checks -C passes=sancov-module \
 -C llvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-inline-8bit-counters \
 -C llvm-args=-sanitizer-coverage-pc-table -C llvm-args=-sanitizer-coverage-trace-compares"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros, as cargo fuzz does.
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --quiet --release --locked --manifest-path fuzz/Cargo.toml \
  --target "$triple" --target-dir fuzz/target/parsers "${bins[@]}"
bindir=fuzz/target/parsers/$triple/release
out=fuzz/findings-parsers
rm -rf "$out"
status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d /tmp/shmemfuzz-parsers-XXXXXX)
  if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$work/"; fi
  mkdir -p "$out/$t"
  log="$out/$t/libfuzzer.log"
  if "$bindir/$t" "$work" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$out/$t/" -print_final_stats=1 >"$log" 2>&1; then
    echo "$t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, no crash"
    rm -rf "$out/$t"
  else
    echo "$t: FAILED (libFuzzer output and the input in $out/$t/)" >&2
    tail -30 "$log" >&2
    status=1
  fi
  rm -rf "$work" /tmp/shmemfuzz-fuzz-bundle-*
done
exit "$status"
