#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target of fuzz/ into $OUT, with the
# seed corpus of shmem_ops zipped beside it (<target>_seed_corpus.zip, OSS-Fuzz's convention).
cd "$SRC/shmemfuzz"
cargo fuzz build -O
release=fuzz/target/x86_64-unknown-linux-gnu/release
for t in program_text protocol_decode console_parse oracle_model shmem_ops; do
  cp "$release/$t" "$OUT/"
done
(cd fuzz/corpus/shmem_ops && zip -q "$OUT/shmem_ops_seed_corpus.zip" ./*)
# shmem_ops reads its kernel and QEMU at run time: SHMEMFUZZ_ROOT must point at a checkout
# with .cache/ filled (`shmemfuzz kernel fetch debian-6.1`), and qemu-system-x86_64 must be
# on PATH in the runner image.
