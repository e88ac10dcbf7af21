//! The kernel target: each input decodes (with `arbitrary`) into a valid program, which runs
//! on a real kernel booted once per process under QEMU (`SHMEMFUZZ_KERNEL`, default the
//! catalog's default). Any finding panics with its signature, the readable program and the
//! commands to replay and minimize it. A harness failure (the VM could not boot, the agent
//! failed) is not a finding: the input is rejected and the VM rebooted on the next input.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::{fuzz_target, Corpus};
use shmemfuzz::context::Context;
use shmemfuzz::runner::Runner;
use shmemfuzz::session::SessionOptions;
use shmemfuzz_core::program::Program;

struct Target {
    runner: Runner,
    _workdir: tempfile::TempDir,
}

static TARGET: Mutex<Option<Target>> = Mutex::new(None);

fn start() -> Target {
    let ctx = Context::new().expect("kernel catalog");
    let id = std::env::var("SHMEMFUZZ_KERNEL").ok();
    let kernel = ctx.prepare(id.as_deref(), &|_| {}).expect("preparing the kernel");
    let accel = ctx.accel(&kernel.kernel.bzimage).expect("accelerator probe");
    let workdir = tempfile::Builder::new().prefix("shmemfuzz-fuzz-").tempdir().expect("tempdir");
    let mut opts = SessionOptions::new(workdir.path().to_path_buf(), accel);
    opts.append = std::env::var("SHMEMFUZZ_APPEND").map(|a| a.split_whitespace().map(String::from).collect()).unwrap_or_default();
    Target { runner: Runner::new(kernel, opts), _workdir: workdir }
}

fuzz_target!(|program: Program| -> Corpus {
    if program.ops.is_empty() {
        return Corpus::Reject;
    }
    let mut guard = TARGET.lock().unwrap_or_else(|e| e.into_inner());
    let target = guard.get_or_insert_with(start);
    let out = match target.runner.run(&program, &mut |_| {}) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("shmemfuzz: harness failure (not a finding), input rejected: {e}");
            return Corpus::Reject;
        }
    };
    if let Some(f) = out.verdict.findings.first() {
        let kernel = std::env::var("SHMEMFUZZ_KERNEL").unwrap_or_else(|_| "debian-6.1".into());
        panic!(
            "shmemfuzz finding: {}\n  {}\n\nprogram:\n{program}\nreplay and minimize the crash file libFuzzer writes below:\n  \
             shmemfuzz repro <crash-file> --kernel {kernel} --out bundles\n  shmemfuzz minimize bundles/<signature>\n",
            f.signature, f.title
        );
    }
    Corpus::Keep
});
