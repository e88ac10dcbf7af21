#!/usr/bin/env bash
# The main job on the default kernel: set up, fetch the default Debian kernel, boot it under
# QEMU and run the example program, printing every operation and the verdict.
# Exit status: 0 clean, 1 finding, 2 harness or usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --release --locked -p shmemfuzz
exec target/release/shmemfuzz run "${1:-examples/every-op.prog}" "${@:2}"
