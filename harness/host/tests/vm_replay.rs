//! Record/replay through the CLI on Debian 6.1: a recorded bundle replays with the same
//! results, data and page states/zones; `repro` groups saved inputs by signature; `run
//! --repeat` stops at the first finding or goes on, and records the hit rate in the bundle.

mod fixture;

use fixture::{examples_dir, kernel, shmemfuzz, text, Workdir};
use shmemfuzz::findings::bundle::{Bundle, HitCount};

#[test]
#[ignore = "boots a VM"]
fn a_recording_replays_identically_on_the_same_kernel() {
    let wd = Workdir::new("replay");
    kernel("debian-6.1");
    let prog = fixture::examples_dir().join("gem-lifecycle.prog");
    let bundle = wd.path().join("b");
    let rec = shmemfuzz(
        &["run", prog.to_str().expect("utf-8"), "--bundle", "b"],
        wd.path(),
    );
    assert_eq!(rec.status.code(), Some(0), "{}", text(&rec));
    assert!(bundle.join("bundle.json").exists());
    let rep = shmemfuzz(&["replay", "b", "--runs", "2"], wd.path());
    let out = text(&rep);
    assert_eq!(rep.status.code(), Some(0), "{out}");
    assert_eq!(
        out.matches("same results, data and page states/zones as the recording")
            .count(),
        2,
        "{out}"
    );
}

#[test]
#[ignore = "boots a VM"]
fn repro_groups_three_inputs_with_two_findings_into_two_bundles() {
    let wd = Workdir::new("repro");
    kernel("debian-6.1");
    let inputs = wd.path().join("in");
    std::fs::create_dir(&inputs).expect("mkdir");
    let write = |name: &str, text: &str| std::fs::write(inputs.join(name), text).expect("write");
    write("a.prog", "memfd m0 size=64K\nwrite m0 off=0 len=64K seed=1\ncorrupt m0 off=100 len=3 seed=2\ncheck m0 off=0 len=64K\n");
    write("b.prog", "memfd m1 size=16K\nwrite m1 off=0 len=16K seed=5\ncorrupt m1 off=9000 len=1 seed=7\ncheck m1 off=0 len=16K\n");
    write("c.prog", "memfd m0 size=4K\nsysrq c\n");
    // A libFuzzer-style crash file: raw bytes, decoded as the fuzz target decodes them.
    std::fs::write(
        inputs.join("crash-0"),
        (0u8..=255).cycle().take(300).collect::<Vec<u8>>(),
    )
    .expect("write");
    let r = shmemfuzz(
        &["repro", "in", "--allow-test-ops", "--out", "out"],
        wd.path(),
    );
    let out = text(&r);
    assert_eq!(r.status.code(), Some(1), "{out}");
    assert!(
        out.contains("4 inputs, 1 clean, 2 distinct findings"),
        "{out}"
    );
    assert!(
        out.contains("data:memfd:check") && out.contains("kernel:PANIC"),
        "{out}"
    );
    let bundles: Vec<_> = std::fs::read_dir(wd.path().join("out"))
        .expect("out dir")
        .flatten()
        .collect();
    assert_eq!(bundles.len(), 2, "one bundle per signature");
    // Each bundle replays and reproduces its own signature.
    let b = wd.path().join("out/data_memfd_check");
    let rep = shmemfuzz(
        &["replay", b.to_str().expect("utf-8"), "--allow-test-ops"],
        wd.path(),
    );
    assert!(
        text(&rep).contains("reproduced `data:memfd:check` in 1/1"),
        "{}",
        text(&rep)
    );
}

#[test]
#[ignore = "boots a VM"]
fn repeat_stops_at_the_first_finding_unless_asked_and_records_the_hit_rate() {
    let wd = Workdir::new("repeat");
    kernel("debian-6.1");
    // A deterministic data finding (the test-only `corrupt` writes behind the program's back).
    std::fs::write(
        wd.path().join("corrupt.prog"),
        "memfd m0 size=64K\nwrite m0 off=0 len=64K seed=1\n\
         corrupt m0 off=100 len=3 seed=2\ncheck m0 off=0 len=64K\n",
    )
    .expect("write the program");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "corrupt.prog", "--allow-test-ops"];
        args.extend_from_slice(extra);
        let o = shmemfuzz(&args, wd.path());
        (o.status.code(), text(&o))
    };
    let (code, out) = run(&["--repeat", "4", "--bundle", "first"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("run 1/4: data:"), "{out}");
    assert!(
        !out.contains("run 2/4"),
        "stops at the first finding: {out}"
    );
    assert!(
        out.contains("1 of 4 run(s)") && out.contains("stopped at the first finding"),
        "{out}"
    );
    let b = Bundle::read(&wd.path().join("first")).expect("the first finding's bundle");
    assert!(
        b.contents
            .signature
            .as_deref()
            .is_some_and(|s| s.starts_with("data:")),
        "{:?}",
        b.contents.signature
    );
    assert_eq!(b.contents.hits, HitCount { runs: 1, hits: 1 });

    let (code, out) = run(&["--repeat", "3", "--keep-going", "--bundle", "all"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("3 of 3 run(s)") && out.contains("3/3 runs (100.0%), first in run 1"),
        "{out}"
    );
    let b = Bundle::read(&wd.path().join("all")).expect("bundle");
    assert_eq!(
        b.contents.hits,
        HitCount { runs: 3, hits: 3 },
        "the final count is recorded"
    );

    // A deterministic bundle replays once by default, and reproduces.
    let rep = shmemfuzz(&["replay", "all", "--allow-test-ops"], wd.path());
    let out = text(&rep);
    assert_eq!(rep.status.code(), Some(1), "{out}");
    assert!(
        out.contains("1 of 1 run(s)") && out.contains("in 1/1 runs"),
        "{out}"
    );

    // A race example on a stock kernel: every repetition clean, exit 0.
    let race = examples_dir().join("race-swapoff-evict.prog");
    let o = shmemfuzz(
        &[
            "run",
            race.to_str().expect("utf-8"),
            "--smp",
            "2",
            "--repeat",
            "3",
        ],
        wd.path(),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("3 of 3 run(s)") && out.contains(": 3 clean"),
        "{out}"
    );
}
