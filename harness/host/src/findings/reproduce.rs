//! Running one program several times on one kernel:
//! - [`repeat`]: what `run --repeat N` and `replay --repeat N` do with a racy program — up to
//!   N runs in one VM, stopping at the first finding unless asked to go on, counting how many
//!   runs showed which signature and when each was first seen;
//! - [`replay_counting`]: N runs counted against one signature, what each bisection step
//!   decides on. A run whose findings do not include the signature but are not empty is
//!   *unrelated* (another bug), counted apart from clean runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmemfuzz_core::oracle::FindingKind;
use shmemfuzz_core::program::Program;

use crate::findings::bundle::HitCount;
use crate::session::runner::ProgramRunner;
use crate::session::{RunOutcome, SessionError};

/// How to repeat a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepeatPlan {
    /// Most runs.
    pub runs: u32,
    /// Go on after a finding (else stop at the first run that has one).
    pub keep_going: bool,
}

/// One signature's share of a repetition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHits {
    /// The first title seen with it.
    pub title: String,
    /// Runs that showed it.
    pub hits: u32,
    /// The (1-based) run that first showed it.
    pub first_run: u32,
    /// From the start of the first run to the end of that run (boots included).
    pub first_after: Duration,
}

/// How a repetition came out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repetition {
    /// Runs done.
    pub runs: u32,
    /// Runs with no finding.
    pub clean: u32,
    /// Every signature seen, with its hits.
    pub by_signature: BTreeMap<String, SignatureHits>,
    /// Stopped at a finding before `RepeatPlan::runs`.
    pub stopped_early: bool,
    /// Wall time of all runs.
    pub elapsed: Duration,
}

impl Repetition {
    /// Counts one run's findings (`(signature, title)`), `elapsed` after the start.
    pub fn count(&mut self, findings: &[(&str, &str)], elapsed: Duration) {
        self.runs += 1;
        self.elapsed = elapsed;
        if findings.is_empty() {
            self.clean += 1;
        }
        for (sig, title) in findings {
            let e = self
                .by_signature
                .entry((*sig).to_string())
                .or_insert_with(|| SignatureHits {
                    title: (*title).to_string(),
                    hits: 0,
                    first_run: self.runs,
                    first_after: elapsed,
                });
            e.hits += 1;
        }
    }

    /// Runs and hits of `signature` (for a bundle's hit rate).
    pub fn hit_count(&self, signature: &str) -> HitCount {
        HitCount {
            runs: self.runs,
            hits: self.by_signature.get(signature).map_or(0, |h| h.hits),
        }
    }

    /// The signature first seen (the earliest run; ties in signature order).
    pub fn first_signature(&self) -> Option<&str> {
        self.by_signature
            .iter()
            .min_by_key(|(_, h)| h.first_run)
            .map(|(s, _)| s.as_str())
    }
}

/// Runs `program` up to `plan.runs` times on `runner`'s kernel and counts the outcomes.
/// A guest that died is rebooted (the runner does it); with `keep_going`, so is a guest whose
/// kernel reported a bug, so that every run starts from a kernel that has not yet corrupted
/// itself (KASAN keeps reporting with `kasan_multi_shot`, but the memory it reported about is
/// not to be trusted). `on_run(runner, run number, outcome)` sees each run as it ends, while
/// the runner still knows that run's guest (to write a bundle).
pub fn repeat<R: ProgramRunner>(
    runner: &mut R,
    program: &Program,
    plan: RepeatPlan,
    on_run: &mut dyn FnMut(&R, u32, &RunOutcome),
) -> Result<Repetition, SessionError> {
    let started = Instant::now();
    let mut rep = Repetition::default();
    for run in 1..=plan.runs {
        let out = runner.run(program, &mut |_| {})?;
        let findings: Vec<(&str, &str)> = out
            .verdict
            .findings
            .iter()
            .map(|f| (f.signature.as_str(), f.title.as_str()))
            .collect();
        rep.count(&findings, started.elapsed());
        on_run(runner, run, &out);
        if findings.is_empty() {
            continue;
        }
        if !plan.keep_going {
            rep.stopped_early = run < plan.runs;
            break;
        }
        if out
            .verdict
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Kernel)
        {
            runner.replace_guest();
        }
    }
    Ok(rep)
}

/// How `runs` replays came out against one signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub runs: u32,
    /// Runs whose findings include the signature.
    pub hits: u32,
    /// Runs with no finding at all.
    pub clean: u32,
    /// The findings of runs that had some, none of them the signature (deduplicated, in
    /// order of first appearance).
    pub unrelated: Vec<String>,
}

impl Tally {
    /// Counts one run's signatures; true if it hit `target`.
    pub fn count(&mut self, target: Option<&str>, signatures: &[&str]) -> bool {
        self.runs += 1;
        let hit = target.is_some_and(|t| signatures.contains(&t));
        if hit {
            self.hits += 1;
        } else if signatures.is_empty() {
            self.clean += 1;
        } else {
            for s in signatures {
                if !self.unrelated.iter().any(|u| u == s) {
                    self.unrelated.push((*s).to_string());
                }
            }
        }
        hit
    }
}

/// Runs `program` `runs` times on `runner`'s kernel (rebooting a guest that died) and tallies
/// the runs against `target`. `on_run(runner, run number, outcome, hit)` sees each run as it
/// ends (the runner for its last guest).
pub fn replay_counting<R: ProgramRunner>(
    runner: &mut R,
    program: &Program,
    target: Option<&str>,
    runs: u32,
    on_run: &mut dyn FnMut(&R, u32, &RunOutcome, bool),
) -> Result<Tally, SessionError> {
    let mut tally = Tally::default();
    for run in 1..=runs {
        let out = runner.run(program, &mut |_| {})?;
        let hit = tally.count(target, &out.verdict.signatures());
        on_run(runner, run, &out, hit);
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmemfuzz_core::oracle::{Finding, Verdict};

    /// A scripted runner: each run's findings in turn (kind, signature), and what was done.
    struct Scripted {
        runs: Vec<Vec<(FindingKind, &'static str)>>,
        next: usize,
        replaced_after: Vec<usize>,
    }

    impl Scripted {
        fn new(runs: Vec<Vec<(FindingKind, &'static str)>>) -> Scripted {
            Scripted {
                runs,
                next: 0,
                replaced_after: Vec::new(),
            }
        }
    }

    impl ProgramRunner for Scripted {
        fn run(
            &mut self,
            _program: &Program,
            _on_record: &mut dyn FnMut(&shmemfuzz_core::protocol::OpRecord),
        ) -> Result<RunOutcome, SessionError> {
            let findings = self.runs.get(self.next).cloned().unwrap_or_default();
            self.next += 1;
            let mut verdict = Verdict::default();
            for (kind, sig) in findings {
                let mut f = Finding::new(kind, "x", sig.to_string(), None, String::new());
                f.signature = sig.to_string();
                verdict.push(f);
            }
            Ok(RunOutcome {
                records: Vec::new(),
                exit: None,
                teardown: None,
                reports: Vec::new(),
                verdict,
                vm_alive: true,
                wall_ms: 1,
                coverage: Vec::new(),
                kcov: None,
                draws: 0,
            })
        }

        fn replace_guest(&mut self) {
            self.replaced_after.push(self.next);
        }
    }

    fn program() -> Program {
        shmemfuzz_core::program::parse("memfd m0 size=4K\n").expect("valid")
    }

    #[test]
    fn repeat_stops_at_the_first_finding_unless_it_keeps_going() {
        let script = || {
            Scripted::new(vec![
                vec![],
                vec![(FindingKind::Data, "data:m0")],
                vec![(FindingKind::Kernel, "kernel:KASAN:x")],
                vec![],
            ])
        };
        let mut r = script();
        let plan = RepeatPlan {
            runs: 4,
            keep_going: false,
        };
        let rep = repeat(&mut r, &program(), plan, &mut |_, _, _| {}).expect("runs");
        assert_eq!((rep.runs, rep.stopped_early), (2, true));
        let mut r = script();
        let plan = RepeatPlan {
            runs: 4,
            keep_going: true,
        };
        let mut seen = Vec::new();
        let rep = repeat(&mut r, &program(), plan, &mut |_, n, _| seen.push(n)).expect("runs");
        assert_eq!((rep.runs, rep.clean, rep.stopped_early), (4, 2, false));
        assert_eq!(seen, [1, 2, 3, 4]);
        assert_eq!(
            r.replaced_after,
            [3],
            "the guest is replaced after a kernel report, not after a data finding"
        );
    }

    #[test]
    fn replay_counting_tallies_every_run_against_the_target() {
        let mut r = Scripted::new(vec![
            vec![(FindingKind::Kernel, "kernel:KASAN:x")],
            vec![],
            vec![(FindingKind::Data, "data:m0")],
        ]);
        let mut hits = Vec::new();
        let tally = replay_counting(
            &mut r,
            &program(),
            Some("kernel:KASAN:x"),
            3,
            &mut |_, _, _, hit| hits.push(hit),
        )
        .expect("runs");
        assert_eq!(hits, [true, false, false]);
        assert_eq!((tally.runs, tally.hits, tally.clean), (3, 1, 1));
        assert_eq!(tally.unrelated, ["data:m0"]);
    }

    #[test]
    fn hits_clean_and_unrelated_runs_are_told_apart() {
        let mut t = Tally::default();
        assert!(t.count(Some("zone:a"), &["zone:a", "kernel:x"]));
        assert!(!t.count(Some("zone:a"), &[]));
        assert!(!t.count(Some("zone:a"), &["kernel:x"]));
        assert!(!t.count(Some("zone:a"), &["kernel:x", "data:y"]));
        assert_eq!(
            t,
            Tally {
                runs: 4,
                hits: 1,
                clean: 1,
                unrelated: vec!["kernel:x".into(), "data:y".into()],
            }
        );
        // Without a target every finding is unrelated.
        let mut u = Tally::default();
        assert!(!u.count(None, &["zone:a"]));
        assert_eq!((u.hits, u.clean, u.unrelated.len()), (0, 0, 1));
    }

    #[test]
    fn repetitions_count_each_signature_and_its_first_run() {
        let ms = Duration::from_millis;
        let mut r = Repetition::default();
        r.count(&[], ms(10));
        r.count(
            &[("kernel:KASAN:x", "KASAN: use-after-free Read in a")],
            ms(20),
        );
        r.count(&[], ms(30));
        r.count(
            &[
                ("kernel:KASAN:x", "KASAN: use-after-free Read in b"),
                ("kernel:LIST_CORRUPTION:y", "list_del corruption"),
            ],
            ms(40),
        );
        assert_eq!((r.runs, r.clean, r.elapsed), (4, 2, ms(40)));
        let x = &r.by_signature["kernel:KASAN:x"];
        assert_eq!((x.hits, x.first_run, x.first_after), (2, 2, ms(20)));
        assert_eq!(
            x.title, "KASAN: use-after-free Read in a",
            "the first title is kept"
        );
        let y = &r.by_signature["kernel:LIST_CORRUPTION:y"];
        assert_eq!((y.hits, y.first_run), (1, 4));
        assert_eq!(r.first_signature(), Some("kernel:KASAN:x"));
        assert_eq!(r.hit_count("kernel:KASAN:x"), HitCount { runs: 4, hits: 2 });
        assert_eq!(r.hit_count("nothing"), HitCount { runs: 4, hits: 0 });
        assert_eq!(Repetition::default().first_signature(), None);
    }
}
