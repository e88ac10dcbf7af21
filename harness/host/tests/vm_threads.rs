//! VM tests of threaded programs (issue 8, parts 1–2): the race examples run clean on stock
//! kernels, records of interleaved threads come back and are judged, the oracle still finds
//! what is wrong inside and after a section, and a stuck thread is a hang at its operation.

mod fixture;

use std::time::{Duration, Instant};

use fixture::{boot, boot_with, example, kernel, shmemfuzz, text, Workdir};
use shmemfuzz_core::oracle::FindingKind;
use shmemfuzz_core::program::{parse, Op};
use shmemfuzz_core::protocol::{errno, ChildExit, OpResult};

/// How many times each race example runs in a row on one guest.
const REPEAT: usize = 3;

fn race_examples_are_clean_on(kernel_id: &str) {
    let wd = Workdir::new(&format!("race-{kernel_id}"));
    let k = kernel(kernel_id);
    let mut s = boot(&k, &wd);
    for name in [
        "race-swapoff-close.prog",
        "race-swapoff-detach.prog",
        "race-swapoff-unlink.prog",
        "race-swapoff-umount.prog",
    ] {
        let program = example(name);
        let swapoff = program
            .ops
            .iter()
            .position(|op| matches!(op, Op::Swapoff { .. }))
            .expect("the race has a swapoff");
        for round in 0..REPEAT {
            let started = Instant::now();
            let mut arrival = Vec::new();
            let out = s
                .run(&program, &mut |r| arrival.push(r.index))
                .unwrap_or_else(|e| panic!("{name} round {round}: {e:#}"));
            eprintln!(
                "{kernel_id} {name} round {round}: {} ms, records arrived {arrival:?}",
                started.elapsed().as_millis()
            );
            assert_eq!(out.exit, Some(ChildExit::Completed), "{name}");
            assert_eq!(out.records.len(), program.ops.len(), "{name}");
            let indexes: Vec<u32> = out.records.iter().map(|r| r.index).collect();
            let want: Vec<u32> = (0..program.ops.len() as u32).collect();
            assert_eq!(indexes, want, "{name}: stored in program order");
            // The pages were on swap0 when the section started.
            assert!(
                out.records[swapoff - 3].swap_used_kib >= 16 << 10,
                "{name}: the pageout reached swap: {:?}",
                out.records[swapoff - 3]
            );
            // Start stamps (the overlap feedback): after the main lane's operations before
            // the section, and the operation after thread b's delay starts after it ended.
            let delay = program
                .ops
                .iter()
                .position(|op| matches!(op, Op::Delay { .. }))
                .expect("thread b waits");
            let before = &out.records[swapoff - 3];
            let (waited, next) = (&out.records[delay], &out.records[delay + 1]);
            assert!(
                out.records[swapoff].start_micros >= before.start_micros + before.micros
                    && next.start_micros >= waited.start_micros + 200,
                "{name}: start stamps out of order: {before:?} {:?} {waited:?} {next:?}",
                out.records[swapoff]
            );
            let r = &out.records[swapoff].result;
            assert!(
                matches!(r, OpResult::Ok | OpResult::Errno(errno::ENOMEM)),
                "{name}: swapoff {r}"
            );
            assert!(
                out.verdict.is_clean(),
                "{name} round {round}: findings on a stock kernel: {:#?}",
                out.verdict.findings
            );
        }
    }
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn race_examples_run_clean_repeatedly_on_debian_6_1() {
    race_examples_are_clean_on("debian-6.1");
}

#[test]
#[ignore = "boots a VM"]
fn race_examples_run_clean_repeatedly_on_debian_6_12() {
    race_examples_are_clean_on("debian-6.12");
}

#[test]
#[ignore = "boots a VM"]
fn wrong_data_inside_and_after_a_section_is_reported() {
    let wd = Workdir::new("threads-corrupt");
    let k = kernel("debian-6.1");
    let mut s = boot(&k, &wd);
    // Thread a changes m0 behind the model's back and checks it; thread b does the same to
    // m1, whose check comes only after the join.
    let program = parse(
        "memfd m0 size=64K\nmemfd m1 size=64K\nwrite m0 off=0 len=64K seed=1\n\
         write m1 off=0 len=64K seed=2\nthreads\nthread a\n  corrupt m0 off=100 len=1 seed=9\n\
         \x20 check m0 off=0 len=64K\nthread b\n  swapoff swap0\n  corrupt m1 off=8K len=4K seed=9\n\
         join\ncheck m1 off=0 len=64K\n",
    )
    .expect("valid");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert_eq!(out.exit, Some(ChildExit::Completed));
    let data: Vec<Option<u32>> = out
        .verdict
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Data)
        .map(|f| f.op)
        .collect();
    // One signature (`data:memfd:check`): the first occurrence, inside the section, is kept.
    assert_eq!(data, [Some(7)], "{:#?}", out.verdict.findings);
    let after = out.records.iter().find(|r| r.index == 12).expect("op 12");
    assert!(
        // (One page rewritten with another seed: a few bytes agree by chance.)
        after.data.as_ref().is_some_and(|d| d.mismatched_pages == 1
            && d.first_mismatch
                .is_some_and(|(off, _, _)| (8192..12288).contains(&off))),
        "the check after the join saw thread b's change: {after:?}"
    );
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn a_stuck_thread_is_a_hang_finding_for_its_operation() {
    let wd = Workdir::new("threads-hang");
    let k = kernel("debian-6.1");
    let mut s = boot_with(&k, &wd, |o| o.op_timeout = Duration::from_millis(300));
    // Thread b's 128 MiB write takes seconds under TCG; thread a finishes at once.
    let program = parse(
        "memfd m0 size=4K\nmemfd m1 size=4K\nthreads\nthread a\n  close m0\nthread b\n\
         \x20 write m1 off=0 len=128M seed=1\njoin\n",
    )
    .expect("valid");
    let out = s.run(&program, &mut |_| {}).expect("the run ends");
    assert_eq!(out.exit, Some(ChildExit::Hung { op: 6 }));
    assert_eq!(
        out.verdict.signatures(),
        vec!["hang:write"],
        "{:#?}",
        out.verdict.findings
    );
    s.shutdown();
}

#[test]
#[ignore = "boots a VM"]
fn a_race_recorded_on_two_cpus_replays_through_the_cli() {
    let wd = Workdir::new("threads-replay");
    kernel("debian-6.1");
    let prog = fixture::examples_dir().join("race-swapoff-close.prog");
    let prog = prog.to_str().expect("utf-8");
    let rec = shmemfuzz(
        &[
            "run",
            prog,
            "--kernel",
            "debian-6.1",
            "--smp",
            "2",
            "--bundle",
            "b",
        ],
        wd.path(),
    );
    let out = text(&rec);
    assert_eq!(rec.status.code(), Some(0), "{out}");
    assert!(out.contains("verdict: clean"), "{out}");
    assert!(
        out.contains("thread a") && out.contains("join"),
        "records of every thread are printed: {out}"
    );
    let rep = shmemfuzz(&["replay", "b", "--runs", "2"], wd.path());
    let out = text(&rep);
    assert_eq!(rep.status.code(), Some(0), "{out}");
    assert!(
        out.contains("run 1/2: clean") && out.contains("run 2/2: clean"),
        "{out}"
    );
    assert!(
        out.contains("2 of 2 run(s)") && out.contains(": 2 clean"),
        "{out}"
    );
}

#[test]
#[ignore = "boots Debian 6.1 under QEMU"]
fn ranged_delays_draw_per_run_and_a_fixed_seed_draws_the_same_again() {
    use shmemfuzz_core::program::draw;
    let wd = Workdir::new("draws");
    let mut s = boot(&kernel("debian-6.1"), &wd);
    let program =
        parse("memfd m0 size=4K\ndelay 0us..20ms\nspin 0..100000\ndelay 1ms\n").expect("parses");
    let drawn = |out: &shmemfuzz::session::RunOutcome| -> Vec<Option<u32>> {
        out.records.iter().map(|r| r.drawn).collect()
    };
    let first = s.run(&program, &mut |_| {}).expect("runs");
    let second = s.run(&program, &mut |_| {}).expect("runs");
    assert!(first.verdict.is_clean(), "{:?}", first.verdict.findings);
    assert_ne!(first.draws, second.draws, "each run draws a fresh seed");
    for out in [&first, &second] {
        let d = drawn(out);
        assert_eq!(d[0], None, "memfd draws nothing");
        assert_eq!(d[1], Some(draw(out.draws, 1, 0, 20_000)));
        assert_eq!(d[2], Some(draw(out.draws, 2, 0, 100_000)));
        assert_eq!(d[3], None, "a plain delay draws nothing");
    }
    // A replay fixes the recorded seed: the same values again.
    s.set_draws(Some(first.draws));
    let again = s.run(&program, &mut |_| {}).expect("runs");
    assert_eq!(again.draws, first.draws);
    assert_eq!(drawn(&again), drawn(&first));
    s.shutdown();
}

#[test]
#[ignore = "boots Debian 6.1 under QEMU"]
fn threads_sharing_a_memfd_while_a_third_pages_it_out_are_clean() {
    let wd = Workdir::new("threads-shared");
    let k = kernel("debian-6.1");
    let mut s = boot_with(&k, &wd, |o| o.smp = 2);
    // Threads a and b write overlapping ranges of m0 (by pwrite and through v0) and read it
    // back (pread and touch) while c pages the mapping out to swap0 twice.
    let section = "memfd m0 size=2M\nwrite m0 off=0 len=2M seed=1\nmmap v0 m0 off=0 len=2M shared\n\
         touch v0 off=0 len=2M read\nthreads\nthread a\n  write m0 off=0 len=1M seed=2\n\
         \x20 check m0 off=0 len=2M\n  touch v0 off=512K len=1M write seed=4\n  touch v0 off=0 len=2M read\n\
         thread b\n  write m0 off=768K len=1M seed=3\n  touch v0 off=0 len=2M read\n\
         \x20 check m0 off=0 len=2M\nthread c\n  madvise v0 off=0 len=2M pageout\n  delay 0us..2ms\n\
         \x20 madvise v0 off=0 len=2M pageout\njoin\n";
    let join = 18;
    let clean = parse(&format!(
        "{section}check m0 off=0 len=2M\ntouch v0 off=0 len=2M read\n"
    ))
    .expect("threads may share m0");
    assert_eq!(clean.ops[join], Op::Join);
    for round in 0..4 {
        let mut order = Vec::new();
        let out = s
            .run(&clean, &mut |r| order.push(r.index))
            .expect("the run completes");
        let swapped: Vec<u64> = out.records.iter().map(|r| r.swap_used_kib).collect();
        eprintln!("round {round}: records arrived {order:?}, swap used KiB {swapped:?}");
        assert_eq!(out.exit, Some(ChildExit::Completed));
        assert!(
            out.verdict.is_clean(),
            "round {round}: {:#?}",
            out.verdict.findings
        );
        let at_join = out.records[join].data.as_ref();
        assert!(
            at_join.is_some_and(|d| d.is_clean() && d.expected_len == 2 << 20),
            "the join reads back all of m0, which both threads wrote: {at_join:?}"
        );
    }
    // After the join the model holds what was read: a byte changed behind its back is found.
    let corrupt = parse(&format!(
        "{section}corrupt m0 off=900K len=1 seed=99\ncheck m0 off=0 len=2M\n"
    ))
    .expect("valid");
    let out = s.run(&corrupt, &mut |_| {}).expect("the run completes");
    let data: Vec<(Option<u32>, String)> = out
        .verdict
        .findings
        .iter()
        .map(|f| (f.op, f.signature.clone()))
        .collect();
    assert_eq!(data, [(Some(20), "data:memfd:check".to_string())]);
    s.shutdown();
}
