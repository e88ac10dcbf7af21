//! VM tests: each boots a real kernel under QEMU (TCG here) and runs programs through the
//! agent. They are `#[ignore]`d so a plain `cargo test` stays fast; `ci/test.sh` runs them
//! with `--ignored` (see docs/testing.md).

mod fixture;

use std::process::Command;

use std::time::{Duration, Instant};

use fixture::{boot, boot_with, example, kernel, Workdir};
use shmemfuzz_core::oracle::FindingKind;
use shmemfuzz_core::program::parse;
use shmemfuzz_core::protocol::ChildExit;

fn every_op_is_clean_on(kernel_id: &str) {
    let wd = Workdir::new(kernel_id);
    let k = kernel(kernel_id);
    let mut s = boot(&k, &wd);
    assert!(
        s.info
            .release
            .starts_with(k.release.split('-').next().expect("release")),
        "booted {}",
        s.info.release
    );
    let program = example("every-op.prog");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert_eq!(out.exit, Some(ChildExit::Completed));
    assert_eq!(out.records.len(), program.ops.len());
    let checks = out.records.iter().filter(|r| r.data.is_some()).count();
    assert!(checks >= 5, "data was actually compared ({checks} checks)");
    // `madvise v0 … pageout` (op 8) pushed the memfd's pages to swap0, and op 25's swapoff
    // of swap0 brought what was left there back (swap1 holds only what op 23 paged out).
    assert!(
        out.records[8].swap_used_kib >= 1024,
        "pageout reached swap: {:?}",
        out.records[8]
    );
    assert!(
        out.verdict.is_clean(),
        "findings on a stock kernel: {:#?}",
        out.verdict.findings
    );
    // Kernel coverage: the swap-in path of shmem ran, counted by kprobes.
    let swapins = out
        .coverage
        .iter()
        .find(|c| c.func == "shmem_swapin_folio")
        .map_or(0, |c| c.hits);
    assert!(
        swapins > 0,
        "kprobe coverage saw shmem swap-ins: {:?}",
        out.coverage
    );
    let t = out.teardown.expect("teardown report");
    assert_eq!(t.after.shmem_kib, t.baseline.shmem_kib);
    // A second program on the same guest starts from the same baseline.
    let again = s
        .run(&example("pageout-roundtrip.prog"), &mut |_| {})
        .expect("second run");
    assert!(again.verdict.is_clean(), "{:#?}", again.verdict.findings);
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn every_operation_is_clean_on_debian_6_1() {
    every_op_is_clean_on("debian-6.1");
}

#[test]
#[ignore = "boots a VM"]
fn every_operation_is_clean_on_debian_6_12() {
    every_op_is_clean_on("debian-6.12");
}

#[test]
#[ignore = "boots a VM"]
fn data_changed_behind_the_models_back_is_a_data_finding() {
    let wd = Workdir::new("corrupt");
    let k = kernel("debian-6.1");
    let mut s = boot(&k, &wd);
    let program = parse(
        "memfd m0 size=64K\nwrite m0 off=0 len=64K seed=1\nmmap v0 m0 off=0 len=64K shared\n\
         touch v0 off=0 len=64K read\nmadvise v0 off=0 len=64K pageout\n\
         corrupt m0 off=5000 len=3 seed=2\ncheck m0 off=0 len=64K\n",
    )
    .expect("valid");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    let sigs = out.verdict.signatures();
    assert_eq!(
        sigs,
        vec!["data:memfd:check"],
        "{:#?}",
        out.verdict.findings
    );
    let f = &out.verdict.findings[0];
    assert_eq!((f.kind, f.op), (FindingKind::Data, Some(6)));
    assert!(
        f.detail.contains("offset 0x1388"),
        "the first differing byte is named: {}",
        f.detail
    );
    s.shutdown();
}

/// The agent's teardown phases of a run, by name.
fn teardown_phases(out: &shmemfuzz::session::RunOutcome) -> Vec<String> {
    let t = out.teardown.as_ref().expect("teardown report");
    t.phases_us
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| name.starts_with("teardown: "))
        .collect()
}

#[test]
#[ignore = "boots a VM"]
fn teardown_swaps_off_only_when_it_can_find_something_and_a_held_page_is_a_leak() {
    let wd = Workdir::new("leak");
    let k = kernel("debian-6.1");
    let mut s = boot(&k, &wd);
    let has = |phases: &[String], name: &str| phases.iter().any(|p| p == name);
    // Nothing reached swap: the quiet check proves there is nothing for a swapoff to find.
    let quiet = parse(
        "memfd m0 size=64K\nwrite m0 off=0 len=64K seed=1\ncheck m0 off=0 len=64K\nclose m0\n",
    )
    .expect("valid");
    let out = s.run(&quiet, &mut |_| {}).expect("the run completes");
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    let phases = teardown_phases(&out);
    assert!(
        has(&phases, "teardown: quiet check") && !has(&phases, "teardown: swapoff"),
        "{phases:?}"
    );
    // Pages went to swap and came back: slots may sit in the slot caches, so swapoff runs.
    let out = s
        .run(&example("pageout-roundtrip.prog"), &mut |_| {})
        .expect("the run completes");
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    assert!(has(&teardown_phases(&out), "teardown: swapoff"));
    // One page outlives the program (a process outside it holds the memfd): a one-page
    // drift, which the quiet check refuses and the exact path reports to the page.
    let held = parse("memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\nhold m0\nclose m0\n")
        .expect("valid");
    let out = s.run(&held, &mut |_| {}).expect("the run completes");
    assert_eq!(
        out.verdict.signatures(),
        vec!["leak:shmem"],
        "{:#?}",
        out.verdict.findings
    );
    let t = out.teardown.as_ref().expect("teardown report");
    assert_eq!(t.after.shmem_kib, t.baseline.shmem_kib + 4, "{t:?}");
    assert!(has(&teardown_phases(&out), "teardown: swapoff"));
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn records_too_large_for_one_port_write_arrive_whole_and_in_order() {
    // 8192 pages of a DMA32 object in every record: well over the 32 KiB the child writes
    // to the port in one go, so these records go through the supervisor.
    let wd = Workdir::new("bigrec");
    let k = kernel("debian-6.1");
    let mut s = boot(&k, &wd);
    let program = parse(
        "memfd m0 size=32M\ndma32 m0\nwrite m0 off=0 len=32M seed=1\n\
         mmap v0 m0 off=0 len=32M shared\ntouch v0 off=0 len=32M read\n\
         memfd m1 size=4K\nwrite m1 off=0 len=4K seed=2\ncheck m0 off=0 len=1M\nclose m0\n",
    )
    .expect("valid");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    let indices: Vec<u32> = out.records.iter().map(|r| r.index).collect();
    assert_eq!(indices, (0..9).collect::<Vec<u32>>());
    let pages = |i: usize| {
        out.records[i]
            .pages
            .iter()
            .map(|o| o.pages.len())
            .sum::<usize>()
    };
    assert_eq!((pages(4), pages(6)), (8192, 8192), "observed whole");
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn a_guest_panic_is_a_kernel_finding_and_the_harness_exits_cleanly() {
    let wd = Workdir::new("panic");
    kernel("debian-6.1");
    let prog = wd.path().join("panic.prog");
    std::fs::write(
        &prog,
        "memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\nsysrq c\ncheck m0 off=0 len=4K\n",
    )
    .expect("write");
    let trace = wd.path().join("trace.json");
    let out = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args([
            "run",
            "--allow-test-ops",
            "--kernel",
            "debian-6.1",
            "--workdir",
        ])
        .arg(wd.path().join("run"))
        .arg("--trace")
        .arg(&trace)
        .arg(&prog)
        .output()
        .expect("shmemfuzz runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 = finding\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("signature: kernel:"), "{stdout}");
    assert!(
        stdout.contains("sysrq triggered crash"),
        "the panic's title is shown: {stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace written"))
            .expect("trace is JSON");
    assert_eq!(
        json["ops"].as_array().map(Vec::len),
        Some(2),
        "ops before the panic are recorded"
    );
    assert!(json["findings"][0]["signature"]
        .as_str()
        .is_some_and(|s| s.starts_with("kernel:")));
}

#[test]
#[ignore = "boots a VM"]
fn a_guest_that_stops_answering_is_a_hang_finding() {
    let wd = Workdir::new("hang");
    let k = kernel("debian-6.1");
    let mut s = boot_with(&k, &wd, |o| {
        o.op_timeout = Duration::from_secs(2);
        o.host_margin = Duration::from_secs(5);
    });
    // Freeze the guest's CPUs: the agent can no longer answer, not even with its own deadline.
    s.monitor("stop").expect("QMP stop");
    let started = Instant::now();
    let program = parse("memfd m0 size=4K\ncheck m0 off=0 len=4K\n").expect("valid");
    let out = s
        .run(&program, &mut |_| {})
        .expect("a hang is a finding, not a harness error");
    assert_eq!(
        out.verdict.signatures(),
        vec!["hang:guest"],
        "{:#?}",
        out.verdict.findings
    );
    assert!(!out.vm_alive);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded: {:?}",
        started.elapsed()
    );
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn an_operation_past_the_agents_deadline_is_a_hang_finding_for_that_operation() {
    let wd = Workdir::new("slowop");
    let k = kernel("debian-6.1");
    let mut s = boot_with(&k, &wd, |o| o.op_timeout = Duration::from_millis(300));
    // Writing 128 MiB takes seconds under TCG: far past a 300 ms deadline.
    let program =
        parse("memfd m0 size=4K\nwrite m0 off=0 len=128M seed=1\ncheck m0 off=0 len=4K\n")
            .expect("valid");
    let out = s.run(&program, &mut |_| {}).expect("the run ends");
    assert_eq!(out.exit, Some(ChildExit::Hung { op: 1 }));
    assert_eq!(
        out.verdict.signatures(),
        vec!["hang:write"],
        "{:#?}",
        out.verdict.findings
    );
    s.shutdown();
}
