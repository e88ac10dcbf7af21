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
//! - `report.rs`: the log line of a step, the final answer, confidence and warnings.
//!
//! [`bisect`] drives a [`Probe`] through a [`State`]: a step builds the revision; a build
//! that fails is skipped; an image identical (sha256) to one already tested takes its
//! verdict without replaying; otherwise the reproducer is replayed `runs` times.
//!
//! An interruption (Ctrl-C, SIGTERM: [`crate::interrupt`]) ends the bisection with
//! [`BisectError::Interrupted`], and a step it overlapped is **not recorded**, whatever the
//! step concluded (a build or replay cut short looks like "does not build" or "does not
//! boot"): running the same command again tests that revision anew.

mod debian;
mod error;
pub(crate) mod plan;
pub mod probe;
mod report;
pub(crate) mod state;
pub(crate) mod verdict;

use std::time::Instant;

pub use debian::debian_range;
pub use error::BisectError;
pub use plan::{good_after_bad, next, next_every, Next, Outcome};
use report::summarize;
pub use report::{report_lines, step_line};
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
    /// Whether the process was interrupted: [`crate::interrupt::requested`] unless a test
    /// supplies its own.
    pub interrupted: fn() -> Option<crate::interrupt::Interrupted>,
}

impl Options {
    /// `runs` replays per step, the bundle's own `(runs, hits)`, no step limit, bisecting.
    pub fn new(runs: u32, recorded: (u32, u32)) -> Self {
        Options {
            runs,
            recorded,
            max_steps: None,
            every: false,
            interrupted: crate::interrupt::requested,
        }
    }

    fn check_interrupted(&self) -> Result<(), BisectError> {
        (self.interrupted)().map_or(Ok(()), |i| Err(i.into()))
    }
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
        opts.check_interrupted()?;
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
        tracing::info!(rev = %rev, index = i, "bisect: testing");
        let step = test_one(probe, state, i, &rev, opts.runs, events);
        // Checked before the step's own result: an interruption often shows as a failure.
        if let Err(e) = opts.check_interrupted() {
            state.log(&format!(
                "step {}: {rev} interrupted, not recorded: run the same command again to resume",
                state.steps().len() + 1
            ));
            return Err(e);
        }
        let step = step?;
        tracing::info!(
            rev = %rev,
            verdict = step.verdict.word(),
            build_secs = step.build_secs,
            replay_secs = step.replay_secs,
            "bisect: step done"
        );
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

#[cfg(test)]
mod tests;
