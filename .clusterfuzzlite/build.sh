#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target of fuzz/ into $OUT, with the
# seed corpus of shmem_ops zipped beside it (<target>_seed_corpus.zip, OSS-Fuzz's convention)
# and, for the kernel target, $OUT/shmemfuzz-runtime: QEMU with its libraries and firmware,
# the default kernel with its mock driver, the catalog (.clusterfuzzlite/runtime.sh). The
# target finds that directory beside itself, so it runs on a runner without QEMU or a
# checkout (docs/fuzzing.md, "ClusterFuzzLite and OSS-Fuzz"; tested by ci/cflite-test.sh).
#   SRC=<dir holding shmemfuzz/> OUT=<dir> .clusterfuzzlite/build.sh
# Without cargo-fuzz (a local run) the targets are built on stable Rust with the coverage
# instrumentation cargo fuzz adds, as ci/fuzz-parsers.sh does, into
# ${FUZZ_TARGET_DIR:-fuzz/target}/cflite.
cd "$SRC/shmemfuzz"
targets=(program_text protocol_decode console_parse oracle_model bundle_read shmem_ops)
if cargo fuzz --version >/dev/null 2>&1; then
  cargo fuzz build -O
  release=fuzz/target/x86_64-unknown-linux-gnu/release
else
  triple=$(rustc -vV | sed -n 's/^host: //p')
  tdir=${FUZZ_TARGET_DIR:-fuzz/target}/cflite
  bins=()
  for t in "${targets[@]}"; do bins+=(--bin "$t"); done
  RUSTFLAGS="--cfg fuzzing -C debug-assertions -C overflow-checks -C passes=sancov-module \
 -C llvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-inline-8bit-counters \
 -C llvm-args=-sanitizer-coverage-pc-table -C llvm-args=-sanitizer-coverage-trace-compares" \
    cargo build --quiet --release --locked --manifest-path fuzz/Cargo.toml \
      --target "$triple" --target-dir "$tdir" "${bins[@]}"
  release=$tdir/$triple/release
fi
for t in "${targets[@]}"; do
  cp "$release/$t" "$OUT/"
done
rm -f "$OUT/shmem_ops_seed_corpus.zip"
(cd fuzz/corpus/shmem_ops && zip -q "$OUT/shmem_ops_seed_corpus.zip" ./*)
# The host CLI (which fetches the kernel) builds without the fuzzing flags.
RUSTFLAGS= .clusterfuzzlite/runtime.sh "$OUT/shmemfuzz-runtime" "$OUT/shmem_ops"
