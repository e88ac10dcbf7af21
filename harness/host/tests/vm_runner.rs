//! The runner keeps going after a run kills the guest: the panic is a finding, the next run
//! boots a fresh guest and is judged on its own.

mod fixture;

use fixture::{example, kernel, mock_module, Workdir};
use shmemfuzz::context::{Context, PreparedKernel};
use shmemfuzz::runner::Runner;
use shmemfuzz::session::SessionOptions;
use shmemfuzz_core::oracle::FindingKind;
use shmemfuzz_core::program::parse;

#[test]
#[ignore = "boots a VM"]
fn a_panic_does_not_end_the_runner() {
    let wd = Workdir::new("runner");
    let k = kernel("debian-6.1");
    let prepared = PreparedKernel {
        mock_module: mock_module(&k),
        kernel: k,
    };
    let accel = Context::new()
        .expect("catalog")
        .accel(&prepared.kernel.bzimage)
        .expect("probe");
    let mut runner = Runner::new(
        prepared,
        SessionOptions::new(wd.path().to_path_buf(), accel),
    );
    let panic = parse("memfd m0 size=4K\nsysrq c\n").expect("valid");
    let first = runner
        .run(&panic, &mut |_| {})
        .expect("a panic is a finding");
    assert!(!first.vm_alive);
    assert!(
        first
            .verdict
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Kernel),
        "{:#?}",
        first.verdict.findings
    );
    let second = runner
        .run(&example("pageout-roundtrip.prog"), &mut |_| {})
        .expect("a new guest boots");
    assert!(
        second.vm_alive && second.verdict.is_clean(),
        "{:#?}",
        second.verdict.findings
    );
    assert_eq!(runner.boots(), 2);
    runner.shutdown();
}
