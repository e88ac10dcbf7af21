#!/usr/bin/env bash
# The main job: a bounded fuzzing campaign on the default kernel (Debian 6.1).
#   ci/main.sh                          10 minutes, one worker
#   ci/main.sh --duration 1h --jobs 2   any `shmemfuzz fuzz` option
# Sets up the host, builds shmemfuzz and the fuzz target, fetches the kernel, then fuzzes
# with live progress; findings go to fuzz/findings/bundles/<signature>.
# Exit status: 0 clean, 1 finding (the kernel failed), 2 harness or usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --release --locked -p shmemfuzz
has_duration=no
for a in "$@"; do [ "$a" = --duration ] && has_duration=yes; done
if [ "$has_duration" = no ]; then set -- --duration 10m "$@"; fi
# The default kernel's standing violations (kernels/known/6.1.toml) are counted, not failed on.
# The known-findings file of the kernel's line unless one is given (--known FILE or
# --known=FILE); the default kernel is Debian 6.1.
has_known=no line=6.1 prev=
for a in "$@"; do
  case "$a" in --known|--known=*) has_known=yes ;; esac
  case "$prev:$a" in --kernel:*6.12*|*:--kernel=*6.12*) line=6.12 ;; esac
  prev=$a
done
if [ "$has_known" = no ]; then set -- --known "kernels/known/$line.toml" "$@"; fi
exec target/release/shmemfuzz fuzz "$@"
