//! Bisection: the first bad commit (or Debian kernel version) for a reproducer bundle.
//!
//! - `plan.rs`: which revision to test next and when the answer is known (pure).
//! - `verdict.rs`: a step's verdict from its replays, decided on the bundle's signature only
//!   (another finding is neither good nor bad), and the confidence of the answer.
//! - `state.rs`: the work directory's `state.json` (saved after every step: resumable) and
//!   `bisect.log`.
//! - `probe.rs`: the real [`Probe`]s: a git revision built from source
//!   ([`probe::GitKernels`]) or a Debian kernel package ([`probe::DebianKernels`]), replayed
//!   in QEMU.
//! - `debian.rs`: the Debian versions between two ABIs, from the catalog.
//!
//! [`bisect`] drives a [`Probe`] through a [`State`]: a step builds the revision; a build
//! that fails is skipped; an image identical (sha256) to one already tested takes its
//! verdict without replaying; otherwise the reproducer is replayed `runs` times.

mod debian;
mod error;
mod plan;
pub mod probe;
mod state;
mod verdict;

use std::time::Instant;

pub use debian::debian_range;
pub use error::BisectError;
pub use plan::{good_after_bad, next, next_every, Next, Outcome};
pub use state::{Key, Rev, State, Step, LOG_FILE, STATE_FILE};
pub use verdict::{confidence, hit_rate, Verdict};

use crate::reproduce::Tally;

/// A revision made ready to test, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Build {
    /// Built (or fetched): the image's sha256.
    Image { sha256: String },
    /// It does not build: why, in a few lines.
    Failed { reason: String },
}

/// Replays on a built revision, or why there were none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    Ran(Tally),
    /// The kernel did not boot (or the harness failed on it): not a verdict on the bug.
    NoBoot {
        reason: String,
    },
}

/// What a bisection needs from the world: build a revision, replay the reproducer on it.
/// The real one builds kernels and boots QEMU; tests use a fake.
pub trait Probe {
    fn build(&mut self, rev: &str) -> Result<Build, BisectError>;
    /// Replays on the revision last built.
    fn replay(&mut self, rev: &str, runs: u32) -> Result<Replay, BisectError>;
}

/// What happens during a bisection, for progress display (the log gets the same lines).
#[derive(Debug, Clone, PartialEq)]
pub enum BisectEvent {
    /// Testing `revs[index]` (step `step` of this run, `left` candidates left about).
    Testing {
        index: usize,
        rev: String,
        label: String,
        step: usize,
    },
    Building {
        rev: String,
    },
    Replaying {
        rev: String,
        runs: u32,
    },
    /// A step ended.
    Stepped(Step),
}

/// How a bisection run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `None` when stopped by `max_steps` before the end.
    pub outcome: Option<Outcome>,
    /// The confidence in the answer (see [`confidence`]), with the hit rate it used.
    pub confidence: f64,
    pub hit_rate: f64,
    /// Revisions skipped for unrelated findings, with those findings.
    pub unrelated: Vec<(String, Vec<String>)>,
    /// Steps taken by this run (not counting resumed ones).
    pub new_steps: usize,
}

/// Options of a run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Replays per step.
    pub runs: u32,
    /// The bundle's own (runs, hits).
    pub recorded: (u32, u32),
    /// Stop after this many new steps (the state keeps them: run again to go on).
    pub max_steps: Option<usize>,
    /// Test every revision instead of bisecting (short ranges: a full picture).
    pub every: bool,
}

/// Runs (or resumes) the bisection in `state` to its end or to `opts.max_steps`.
pub fn bisect(
    probe: &mut dyn Probe,
    state: &mut State,
    opts: &Options,
    events: &mut dyn FnMut(&BisectEvent),
) -> Result<Report, BisectError> {
    let mut new_steps = 0;
    let outcome = loop {
        let revs: Vec<String> = state.revs().iter().map(|r| r.rev.clone()).collect();
        let planned = if opts.every {
            next_every(&revs, &state.verdicts())
        } else {
            next(&revs, &state.verdicts())
        };
        let i = match planned {
            Next::Done(o) => break Some(o),
            Next::Test(i) => i,
        };
        if opts.max_steps.is_some_and(|m| new_steps >= m) {
            state.log(&format!(
                "stopped after {new_steps} step(s) (--max-steps): run the same command again to resume"
            ));
            break None;
        }
        new_steps += 1;
        let Rev { rev, label } = state.revs()[i].clone();
        let ev = BisectEvent::Testing {
            index: i,
            rev: rev.clone(),
            label: label.clone(),
            step: state.steps().len() + 1,
        };
        state.log(&format!(
            "step {}: testing {rev} ({label})",
            state.steps().len() + 1
        ));
        events(&ev);
        let step = test_one(probe, state, i, &rev, opts.runs, events)?;
        state.log(&step_line(&step));
        events(&BisectEvent::Stepped(step.clone()));
        state.push(step)?;
    };
    let report = summarize(state, opts, outcome, new_steps);
    if let Some(o) = &report.outcome {
        state.finish(o.clone())?;
        for line in report_lines(state, &report) {
            state.log(&line);
        }
    }
    Ok(report)
}

fn test_one(
    probe: &mut dyn Probe,
    state: &State,
    index: usize,
    rev: &str,
    runs: u32,
    events: &mut dyn FnMut(&BisectEvent),
) -> Result<Step, BisectError> {
    let t = Instant::now();
    events(&BisectEvent::Building {
        rev: rev.to_string(),
    });
    let built = probe.build(rev)?;
    let build_secs = t.elapsed().as_secs_f64();
    let mut step = Step {
        index,
        verdict: Verdict::Good,
        image_sha256: None,
        tally: None,
        reused_from: None,
        build_secs,
        replay_secs: 0.0,
    };
    let sha = match built {
        Build::Failed { reason } => {
            step.verdict = Verdict::BuildFailed { reason };
            return Ok(step);
        }
        Build::Image { sha256 } => sha256,
    };
    step.image_sha256 = Some(sha.clone());
    if let Some(same) = state.same_image(&sha) {
        step.verdict = same.verdict.clone();
        step.reused_from = Some(state.revs()[same.index].rev.clone());
        return Ok(step);
    }
    events(&BisectEvent::Replaying {
        rev: rev.to_string(),
        runs,
    });
    let t = Instant::now();
    let replay = probe.replay(rev, runs)?;
    step.replay_secs = t.elapsed().as_secs_f64();
    match replay {
        Replay::Ran(tally) => {
            step.verdict = Verdict::from_tally(&tally);
            step.tally = Some(tally);
        }
        Replay::NoBoot { reason } => step.verdict = Verdict::NoBoot { reason },
    }
    Ok(step)
}

/// One log line for a step.
pub fn step_line(s: &Step) -> String {
    let how = match (&s.reused_from, &s.tally) {
        (Some(from), _) => format!("same image as {from}: verdict reused"),
        (None, Some(t)) => format!(
            "{}/{} runs hit, {} clean{}",
            t.hits,
            t.runs,
            t.clean,
            if t.unrelated.is_empty() {
                String::new()
            } else {
                format!(", unrelated: {}", t.unrelated.join(" "))
            }
        ),
        (None, None) => match &s.verdict {
            Verdict::BuildFailed { reason } => format!("build failed: {}", first_error(reason)),
            Verdict::NoBoot { reason } => format!("did not boot: {}", last_line(reason)),
            _ => String::new(),
        },
    };
    format!(
        "  -> {}  [build {:.0} s, replay {:.0} s] {how}",
        s.verdict.word(),
        s.build_secs,
        s.replay_secs
    )
}

/// The compiler's first `error:` line of a failed build, else its last line.
fn first_error(s: &str) -> &str {
    s.lines()
        .find(|l| l.contains("error:") || l.contains("Error:"))
        .map_or_else(|| last_line(s), str::trim)
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(s)
}

fn summarize(state: &State, opts: &Options, outcome: Option<Outcome>, new_steps: usize) -> Report {
    let steps = state.steps();
    let bad: Vec<&Tally> = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Bad)
        .filter_map(|s| s.tally.as_ref())
        .collect();
    let p = hit_rate(opts.recorded, &bad).unwrap_or(0.0);
    // Each good image counts once: a reused verdict adds no evidence.
    let good: Vec<u32> = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Good)
        .filter_map(|s| s.tally.as_ref().map(|t| t.runs))
        .collect();
    let unrelated = steps
        .iter()
        .filter_map(|s| match &s.verdict {
            Verdict::Unrelated { signatures } => {
                Some((state.revs()[s.index].rev.clone(), signatures.clone()))
            }
            _ => None,
        })
        .collect();
    Report {
        outcome,
        confidence: confidence(p, &good),
        hit_rate: p,
        unrelated,
        new_steps,
    }
}

/// The final lines, for the log and the terminal.
pub fn report_lines(state: &State, r: &Report) -> Vec<String> {
    let label = |rev: &str| {
        state
            .revs()
            .iter()
            .find(|x| x.rev == rev)
            .map_or_else(String::new, |x| x.label.clone())
    };
    let mut out = Vec::new();
    match &r.outcome {
        None => out.push("not finished: run the same command again to resume".into()),
        Some(Outcome::FirstBad { rev }) => out.push(format!("first bad: {rev} {}", label(rev))),
        Some(Outcome::OneOf { revs }) => {
            out.push("the first bad one is one of these (the others could not be tested):".into());
            out.extend(revs.iter().map(|r| format!("  {r} {}", label(r))));
        }
        Some(Outcome::BadEndGood { rev }) => out.push(format!(
            "the bad end {rev} does not reproduce the signature: nothing to bisect (a flaky reproducer? raise --runs)"
        )),
        Some(Outcome::GoodEndBad { rev }) => out.push(format!(
            "the good end {rev} already reproduces the signature: choose an older --good"
        )),
        Some(Outcome::EndSkipped { rev, verdict }) => out.push(format!(
            "the end {rev} cannot be tested: {} ({verdict:?})",
            verdict.word()
        )),
    }
    if matches!(
        r.outcome,
        Some(Outcome::FirstBad { .. } | Outcome::OneOf { .. })
    ) {
        let tested = state.steps().iter().filter(|s| s.tally.is_some()).count();
        out.push(format!(
            "confidence {:.4} (hit rate {:.2} over the recording and the bad steps; {} good verdict(s), {} kernel(s) replayed, {} step(s))",
            r.confidence,
            r.hit_rate,
            state.steps().iter().filter(|s| s.verdict == Verdict::Good).count(),
            tested,
            state.steps().len()
        ));
    }
    let verdicts = state.verdicts();
    for i in good_after_bad(&verdicts) {
        out.push(format!(
            "warning: {} {} is good although an older one is bad: a flaky reproducer or a \
             regression that came and went",
            state.revs()[i].rev,
            state.revs()[i].label
        ));
    }
    for (rev, sigs) in &r.unrelated {
        out.push(format!(
            "unrelated finding on {rev} {}: {} (skipped)",
            label(rev),
            sigs.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
