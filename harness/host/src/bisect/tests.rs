//! The driver against a fake probe: no kernel, no VM.

use std::collections::HashMap;

use super::*;

/// A history where `images[i]` is revision i's image (None: does not build) and
/// `outcomes[image]` says how replays of that image come out, run by run (cycled).
struct Fake {
    images: Vec<Option<&'static str>>,
    outcomes: HashMap<&'static str, Vec<&'static [&'static str]>>,
    built: Option<&'static str>,
    replays: Vec<String>,
    builds: Vec<String>,
}

const SIG: &str = "zone:memfd:touch:Normal";

impl Probe for Fake {
    fn build(&mut self, rev: &str) -> Result<Build, BisectError> {
        self.builds.push(rev.to_string());
        let i: usize = rev[1..].parse().expect("c<i>");
        self.built = self.images[i];
        Ok(match self.images[i] {
            Some(img) => Build::Image {
                sha256: img.to_string(),
            },
            None => Build::Failed {
                reason: "mm/shmem.c:1: error: expected ')'".into(),
            },
        })
    }

    fn replay(&mut self, rev: &str, runs: u32) -> Result<Replay, BisectError> {
        self.replays.push(rev.to_string());
        let img = self.built.expect("built before replay");
        if img == "noboot" {
            return Ok(Replay::NoBoot {
                reason: "kernel panic at boot".into(),
            });
        }
        let seq = &self.outcomes[img];
        let mut t = Tally::default();
        for r in 0..runs as usize {
            t.count(Some(SIG), seq[r % seq.len()]);
        }
        Ok(Replay::Ran(t))
    }
}

/// The synthetic history of the VM test: c1 has c0's image, c4 does not build, c5 has c3's
/// image, c6 is the regression.
fn synthetic() -> Fake {
    let images = vec![
        Some("i0"),
        Some("i0"),
        Some("i2"),
        Some("i3"),
        None,
        Some("i3"),
        Some("i6"),
        Some("i7"),
        Some("i8"),
    ];
    let clean: &'static [&'static str] = &[];
    let hit: &'static [&'static str] = &[SIG];
    let mut outcomes = HashMap::new();
    for img in ["i0", "i2", "i3"] {
        outcomes.insert(img, vec![clean]);
    }
    for img in ["i6", "i7", "i8"] {
        outcomes.insert(img, vec![hit]);
    }
    Fake {
        images,
        outcomes,
        built: None,
        replays: vec![],
        builds: vec![],
    }
}

fn revs(n: usize) -> Vec<Rev> {
    (0..n)
        .map(|i| Rev {
            rev: format!("c{i}"),
            label: format!("commit {i}"),
        })
        .collect()
}

fn key() -> Key {
    Key {
        mode: "git".into(),
        source: "/fake".into(),
        good: "c0".into(),
        bad: "c8".into(),
        paths: vec![],
        repro_sha256: "x".into(),
        runs: 3,
        config: "cfg".into(),
    }
}

fn opts(max_steps: Option<usize>) -> Options {
    Options {
        max_steps,
        ..Options::new(3, (1, 1))
    }
}

#[test]
fn the_synthetic_history_skips_the_broken_build_and_reuses_identical_images() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let mut fake = synthetic();
    let r = bisect(&mut fake, &mut st, &opts(None), &mut |_| {}).expect("bisect");
    assert_eq!(r.outcome, Some(Outcome::FirstBad { rev: "c6".into() }));
    assert_eq!(fake.builds, ["c8", "c0", "c4", "c3", "c5", "c6"]);
    assert_eq!(
        fake.replays,
        ["c8", "c0", "c3", "c6"],
        "c4 did not build, c5 is c3's image"
    );
    let c5 = st.steps().iter().find(|s| s.index == 5).expect("c5 tested");
    assert_eq!(c5.reused_from.as_deref(), Some("c3"));
    assert_eq!(r.confidence, 1.0, "a reproducer that always hits");
    let log = std::fs::read_to_string(d.path().join(LOG_FILE)).expect("log");
    assert!(log.contains("build failed: mm/shmem.c:1: error"), "{log}");
    assert!(log.contains("first bad: c6 commit 6"), "{log}");
    assert!(log.contains("confidence 1.0000"), "{log}");
}

#[test]
fn an_interrupted_bisection_resumes_to_the_same_answer_without_repeating_steps() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut fake = synthetic();
    for max in [Some(2), Some(1), None] {
        let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
        let r = bisect(&mut fake, &mut st, &opts(max), &mut |_| {}).expect("bisect");
        if max.is_some() {
            assert_eq!(r.outcome, None);
            assert_eq!(r.new_steps, max.unwrap_or(0));
        } else {
            assert_eq!(r.outcome, Some(Outcome::FirstBad { rev: "c6".into() }));
        }
    }
    assert_eq!(
        fake.builds,
        ["c8", "c0", "c4", "c3", "c5", "c6"],
        "no step twice"
    );
    // A finished bisection run again only reports.
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let r = bisect(&mut fake, &mut st, &opts(None), &mut |_| {}).expect("bisect");
    assert_eq!(
        (r.outcome, r.new_steps),
        (Some(Outcome::FirstBad { rev: "c6".into() }), 0)
    );
}

/// The interruption the next test's bisection sees (only that test reads it).
static INTERRUPT_AT_C3: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted_at_c3() -> Option<crate::interrupt::Interrupted> {
    INTERRUPT_AT_C3
        .load(std::sync::atomic::Ordering::SeqCst)
        .then_some(crate::interrupt::Interrupted {
            signal: nix::sys::signal::Signal::SIGINT,
        })
}

#[test]
fn a_step_cut_short_by_an_interruption_is_not_recorded_and_is_tested_again() {
    use std::sync::atomic::Ordering;
    let d = tempfile::tempdir().expect("tempdir");
    let mut fake = synthetic();
    // c3's replay is cut short: the real probe then sees a guest that did not boot.
    fake.images[3] = Some("noboot");
    let o = Options {
        interrupted: interrupted_at_c3,
        ..opts(None)
    };
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let mut events = |ev: &BisectEvent| {
        if matches!(ev, BisectEvent::Replaying { rev, .. } if rev == "c3") {
            INTERRUPT_AT_C3.store(true, Ordering::SeqCst);
        }
    };
    let e = bisect(&mut fake, &mut st, &o, &mut events).expect_err("interrupted");
    assert!(matches!(e, BisectError::Interrupted(_)), "{e}");
    assert_eq!(fake.replays, ["c8", "c0", "c3"]);
    let saved = State::open(d.path(), key(), revs(9), false).expect("state");
    assert!(
        saved.steps().iter().all(|s| s.index != 3),
        "the interrupted step was saved: {:?}",
        saved.steps()
    );
    // Resumed (no longer interrupted, c3 boots this time): c3 is tested again, and the
    // answer is the uninterrupted one.
    INTERRUPT_AT_C3.store(false, Ordering::SeqCst);
    fake.images[3] = Some("i3");
    let mut st = saved;
    let r = bisect(&mut fake, &mut st, &o, &mut |_| {}).expect("resumed");
    assert_eq!(r.outcome, Some(Outcome::FirstBad { rev: "c6".into() }));
    assert_eq!(fake.replays, ["c8", "c0", "c3", "c3", "c6"]);
    let log = std::fs::read_to_string(d.path().join(LOG_FILE)).expect("log");
    assert!(log.contains("c3 interrupted, not recorded"), "{log}");
}

#[test]
fn an_unrelated_crash_is_neither_good_nor_bad_and_is_reported() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let mut fake = synthetic();
    // c3's image oopses elsewhere: it must not count as good (which would move the answer).
    let oops: &'static [&'static str] = &["kernel:oops:shmem_unuse"];
    fake.outcomes.insert("i3", vec![oops]);
    let r = bisect(&mut fake, &mut st, &opts(None), &mut |_| {}).expect("bisect");
    // c3 and c5 (the same image) crash elsewhere and c4 does not build: the answer is
    // honest about not knowing which of c3..c6 is first, rather than naming c6.
    let revs = ["c3", "c4", "c5", "c6"].map(String::from).to_vec();
    assert_eq!(r.outcome, Some(Outcome::OneOf { revs }));
    let oops = vec!["kernel:oops:shmem_unuse".to_string()];
    assert_eq!(
        r.unrelated,
        [("c3".to_string(), oops.clone()), ("c5".to_string(), oops)],
        "reported for each revision, c5 by way of c3's identical image"
    );
    let c5 = st.steps().iter().find(|s| s.index == 5).expect("c5");
    assert!(
        c5.verdict.is_skip(),
        "the same image: the same unrelated verdict"
    );
    let lines = report_lines(&st, &r).join("\n");
    assert!(lines.contains("unrelated finding on c3"), "{lines}");
    assert!(lines.contains("one of these"), "{lines}");
}

#[test]
fn a_flaky_reproducer_lowers_the_confidence_and_a_kernel_that_does_not_boot_is_skipped() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let mut fake = synthetic();
    let clean: &'static [&'static str] = &[];
    let hit: &'static [&'static str] = &[SIG];
    for img in ["i6", "i7", "i8"] {
        fake.outcomes.insert(img, vec![hit, clean]); // hits 2 of 3
    }
    fake.images[3] = Some("noboot");
    let r = bisect(&mut fake, &mut st, &opts(None), &mut |_| {}).expect("bisect");
    assert_eq!(r.outcome, Some(Outcome::FirstBad { rev: "c6".into() }));
    assert!(
        matches!(st.steps()[3].verdict, Verdict::NoBoot { .. }),
        "{:?}",
        st.steps()[3]
    );
    // p = (1 + 2 + 2) / (1 + 3 + 3) over the recording and the two bad steps.
    assert!((r.hit_rate - 5.0 / 7.0).abs() < 1e-9, "{}", r.hit_rate);
    assert!(r.confidence < 1.0 && r.confidence > 0.9, "{}", r.confidence);
}

#[test]
fn every_tests_all_revisions_even_when_the_bad_end_is_good() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut st = State::open(d.path(), key(), revs(9), false).expect("state");
    let mut fake = synthetic();
    let clean: &'static [&'static str] = &[];
    for img in ["i6", "i7", "i8"] {
        fake.outcomes.insert(img, vec![clean]);
    }
    let o = Options {
        every: true,
        ..opts(None)
    };
    let r = bisect(&mut fake, &mut st, &o, &mut |_| {}).expect("bisect");
    assert_eq!(r.outcome, Some(Outcome::BadEndGood { rev: "c8".into() }));
    assert_eq!(st.steps().len(), 9, "a verdict for each revision");
    assert_eq!(
        fake.builds,
        ["c8", "c0", "c7", "c6", "c5", "c4", "c3", "c2", "c1"]
    );
}
