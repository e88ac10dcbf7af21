//! The kernel target: each input decodes (with `arbitrary`, one 16-byte record per
//! operation) into a valid program, which runs on a real kernel booted once per process under
//! QEMU. Configuration comes from the environment (see `shmemfuzz::fuzzing::target`):
//! `SHMEMFUZZ_KERNEL` (default: the catalog's default kernel), `SHMEMFUZZ_APPEND`, and, for
//! campaigns, `SHMEMFUZZ_STATS` / `SHMEMFUZZ_BUNDLES`. Away from its checkout (a
//! ClusterFuzzLite `$OUT`), QEMU, the kernel and the catalog come from the
//! `shmemfuzz-runtime/` directory beside the binary (`shmemfuzz::kernels::runtime`).
//!
//! Feedback is the kernel's coverage of each run (kprobe hit counts of mm functions, results
//! per operation, DMA32 pages replaced on swap-in, KCOV PCs in mm/ on KCOV kernels), written
//! into libFuzzer's extra counters. Mutation is structure-aware: whole operation records are
//! inserted, deleted, duplicated, moved and tweaked (`shmemfuzz_core::program::mutate`).
//!
//! Any finding panics with its signature, the readable program and the commands to replay
//! and minimize it. A harness failure (the VM could not boot, the agent failed) is not a
//! finding: the input is rejected and the VM rebooted for the next one; after several in a
//! row the process exits with status 2 and no crash file.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::{fuzz_crossover, fuzz_mutator, fuzz_target, fuzzer_mutate, Corpus};
use shmemfuzz::fuzzing::feedback::COUNTERS_LEN;
use shmemfuzz::fuzzing::target::Env;
use shmemfuzz::fuzzing::{FuzzTarget, Verdict};
use shmemfuzz_core::program::mutate::{self, Mutation};

/// libFuzzer's extra counters (it finds them by this section's start/stop symbols and
/// clears them before every run): the kernel's coverage of the last run.
#[repr(C, align(64))]
struct KernelCounters([u8; COUNTERS_LEN]);

#[used]
#[link_section = "__libfuzzer_extra_counters"]
static mut KERNEL_COUNTERS: KernelCounters = KernelCounters([0; COUNTERS_LEN]);

static TARGET: Mutex<Option<FuzzTarget>> = Mutex::new(None);

fn target() -> std::sync::MutexGuard<'static, Option<FuzzTarget>> {
    let mut guard = TARGET.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        match FuzzTarget::start(Env::from_env()) {
            Ok(t) => *guard = Some(t),
            Err(e) => give_up(&format!("cannot start: {}", shmemfuzz::error_chain(&e))),
        }
    }
    guard
}

/// A harness that cannot go on: say why and leave without a crash file (`_exit` skips
/// libFuzzer's exit handler, which would save the input as a crash).
fn give_up(why: &str) -> ! {
    eprintln!("shmemfuzz: harness failure, not a finding: {why}");
    // SAFETY: ends the process at once; nothing after this runs.
    unsafe { libc::_exit(shmemfuzz::fuzzing::campaign::HARNESS_EXIT) }
}

fuzz_target!(|data: &[u8]| -> Corpus {
    let mut guard = target();
    let Some(t) = guard.as_mut() else {
        return Corpus::Reject;
    };
    // SAFETY: libFuzzer runs inputs one at a time on this thread; nothing else touches the
    // counters while the target writes them.
    let counters = unsafe { &mut (*std::ptr::addr_of_mut!(KERNEL_COUNTERS)).0 };
    match t.execute(data, counters) {
        Verdict::Clean => Corpus::Keep,
        Verdict::Empty => Corpus::Reject,
        Verdict::HarnessFailure {
            message,
            give_up: false,
        } => {
            eprintln!("shmemfuzz: harness failure (not a finding), input rejected: {message}");
            Corpus::Reject
        }
        Verdict::HarnessFailure {
            message,
            give_up: true,
        } => {
            t.shutdown();
            give_up(&message)
        }
        Verdict::Finding { message, .. } => panic!("{message}"),
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut input = data[..size].to_vec();
    match mutate::mutate(&mut input, max_size, seed) {
        Mutation::ByteLevel => fuzzer_mutate(data, size, max_size),
        _ => {
            data[..input.len()].copy_from_slice(&input);
            input.len()
        }
    }
});

fuzz_crossover!(|data1: &[u8], data2: &[u8], out: &mut [u8], seed: u32| {
    let child = mutate::crossover(data1, data2, out.len(), seed);
    out[..child.len()].copy_from_slice(&child);
    child.len()
});
