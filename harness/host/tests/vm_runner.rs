//! The runner keeps going after a run kills the guest: the panic is a finding, the next run
//! gets a fresh guest (restored from the snapshot of the first, not booted cold) and is
//! judged on its own.

mod fixture;

use fixture::{example, kernel, mock_module, Workdir};
use shmemfuzz::kernels::context::{Context, PreparedKernel};
use shmemfuzz::session::runner::Runner;
use shmemfuzz::session::{Session, SessionOptions};
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
    assert_eq!(
        (runner.boots(), runner.restores()),
        (1, 1),
        "one cold boot, then a restore from the snapshot"
    );
    let snapshot = runner
        .snapshot()
        .expect("taken after the first boot")
        .clone();
    eprintln!(
        "snapshot: {} MB saved in {} ms",
        snapshot.bytes >> 20,
        snapshot.save_ms
    );
    runner.shutdown();
    // The snapshot does not restore into a guest with other kernel arguments.
    let mut other = SessionOptions::new(wd.path().join("other"), accel);
    other.append.push("shmem.planted_no_replace=1".into());
    other.modules.push(runner.kernel().mock_module.clone());
    let refused = Session::restore(&runner.kernel().kernel, &other, &snapshot)
        .expect_err("other kernel arguments");
    assert!(refused.to_string().contains("does not match"), "{refused}");
}
