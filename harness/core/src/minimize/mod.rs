//! Minimization: shrinking a program that reproduces a finding into a small program that
//! reproduces the **same** finding (same signature, see [`crate::oracle::finding`]).
//!
//! [`minimize`] is pure: the caller's [`Oracle`] runs each candidate (in a VM, possibly
//! several times) and answers with an [`Outcome`]. Only [`Outcome::Reproduces`] accepts a
//! candidate: a candidate that shows a *different* signature is a different bug and is
//! rejected like a clean one (its signature is kept in [`Minimized::other_signatures`]).
//!
//! Two phases, each candidate checked with [`Scope`] before the oracle sees it (an invalid
//! candidate costs no run):
//! 1. **Operations** (`ops.rs`): delta debugging (Zeller's ddmin, complement steps), first
//!    over *families* (an object or mapping declaration with every operation that uses it,
//!    or one operation that uses no name), then over single operations: remove chunks,
//!    halving the chunk size down to one, until no single family or operation can go.
//!    Removing an operation that declares a name (`memfd m0`, `mmap v0 …`) removes every
//!    later operation that uses the name too, so candidates stay valid and an unneeded object
//!    goes in one run.
//! 2. **Arguments** (`args.rs`): per operation, last to first (uses shrink before the
//!    declarations that bound them): first every argument at once to its simplest value, then
//!    one argument at a time. Offsets go toward 0; lengths, sizes and `reclaim` bytes toward a
//!    page (file sizes toward 0): the floor, then half the value (if that fails the value
//!    stays), then powers of two and bisection to the page or a quarter of the value. Seeds
//!    go toward 0 then 1, `swapon` priority to none, `gem … pinned` to unpinned,
//!    `private`/`gem` mappings to `shared`.
//!
//! Cost, measured with fake oracles (`tests.rs`, deterministic findings): a 30-operation
//! input whose bug needs 9 of them (spread through it) takes 1 call for the input, 21 for the
//! operations and 15 to 19 for the arguments; 3 needed operations and their 2 declarations
//! among 40 others take 24 calls in all. A flaky finding costs more calls (rejections are
//! not remembered across sweeps) and `runs_needed` runs per rejected candidate.
//!
//! Comments and blank lines of the input are dropped: they describe the input, not the result.
//!
//! # Flaky findings
//!
//! A finding that reproduces in a fraction `hit_rate` of runs (the bundle records it; pass it
//! in [`Options::hit_rate`]) is handled so:
//! - A candidate is **accepted on its first reproduction**: there are no false positives, a
//!   run that shows the target signature proves the candidate triggers the bug.
//! - It is **rejected only after [`runs_needed`]`(hit_rate)` runs without the target
//!   signature**, `ceil(log(0.05) / log(1 - hit_rate))` (5 for a hit rate of 50%, 1 for a
//!   deterministic finding), so a candidate that still holds the bug is wrongly rejected with
//!   probability at most 5%. The oracle does the repeating (it knows what a run costs);
//!   [`reproduce_within`] implements this policy around one run.
//! - A rejection is **final only for deterministic findings** (`hit_rate >= 1`): then every
//!   rejected candidate is remembered and never run again. For a flaky finding a rejection is
//!   remembered only until the end of the current sweep (one chunk size of the operation
//!   phase, or the argument phase), so a candidate met again in a later sweep is run again
//!   and gets another chance.
//! - [`Outcome::Error`] (the harness failed, not the kernel) rejects the candidate and is
//!   never remembered; [`Options::max_consecutive_errors`] errors in a row stop the run.
//!
//! # Budget
//!
//! [`Budget`] bounds oracle calls and wall time; both are checked before each call (a call in
//! flight is not interrupted). When either runs out, minimization stops with
//! [`StopReason::Budget`] and returns the smallest reproducing program found so far.

mod args;
mod ops;

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::program::scope::{Scope, ScopeError};
use crate::program::text::print;
use crate::program::{Op, Program, DEFAULT_SWAP_DEVICES};

pub use args::Field;

/// What one oracle call says about a candidate.
///
/// (Not named `Verdict`: [`crate::oracle::Verdict`] is the verdict over one run, which an
/// oracle typically turns into an `Outcome` with [`Outcome::judge`].)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// At least one run showed the target signature.
    Reproduces,
    /// No run showed the target signature, but one showed this other signature.
    Different(String),
    /// No run showed any finding.
    Clean,
    /// The harness could not run the candidate (VM did not boot, agent lost, …): says nothing
    /// about the kernel.
    Error(String),
}

impl Outcome {
    /// The outcome of one run whose findings have `signatures`, chasing `target`.
    pub fn judge<S: AsRef<str>>(target: &str, signatures: &[S]) -> Outcome {
        if signatures.iter().any(|s| s.as_ref() == target) {
            Outcome::Reproduces
        } else if let Some(other) = signatures.first() {
            Outcome::Different(other.as_ref().to_string())
        } else {
            Outcome::Clean
        }
    }
}

/// Runs candidates for the minimizer.
pub trait Oracle {
    /// Runs `candidate` (as many times as the flaky policy needs, see [`reproduce_within`])
    /// and says whether it reproduces the target signature.
    fn reproduces(&mut self, candidate: &Program) -> Outcome;
}

impl<F: FnMut(&Program) -> Outcome> Oracle for F {
    fn reproduces(&mut self, candidate: &Program) -> Outcome {
        self(candidate)
    }
}

/// Probability with which the flaky policy may wrongly reject a candidate that holds the bug.
pub const MISS_PROBABILITY: f64 = 0.05;
/// Most runs [`runs_needed`] asks for (reached at hit rates below about 4.6%).
pub const MAX_RUNS_PER_CANDIDATE: u32 = 64;

/// Runs without the target signature after which a candidate is rejected:
/// `ceil(log(MISS_PROBABILITY) / log(1 - hit_rate))`, at least 1 and at most
/// [`MAX_RUNS_PER_CANDIDATE`]. A hit rate of 1 (or more) means deterministic: 1 run.
pub fn runs_needed(hit_rate: f64) -> u32 {
    if hit_rate >= 1.0 {
        return 1;
    }
    if hit_rate.is_nan() || hit_rate <= 0.0 {
        return MAX_RUNS_PER_CANDIDATE;
    }
    let runs = MISS_PROBABILITY.ln() / (1.0 - hit_rate).ln();
    // The epsilon keeps an exact quotient (hit rate 0.95: 1.0000000001) from rounding up.
    let runs = (runs - 1e-9).ceil();
    if runs >= f64::from(MAX_RUNS_PER_CANDIDATE) {
        MAX_RUNS_PER_CANDIDATE
    } else {
        (runs as u32).max(1)
    }
}

/// The flaky policy around one run: calls `run_once` up to `runs` times and stops at the
/// first [`Outcome::Reproduces`] (accepted on first reproduction) or [`Outcome::Error`].
/// Otherwise the answer is the first [`Outcome::Different`] seen, or [`Outcome::Clean`].
pub fn reproduce_within(runs: u32, mut run_once: impl FnMut() -> Outcome) -> Outcome {
    let mut other = None;
    for _ in 0..runs.max(1) {
        match run_once() {
            Outcome::Clean => {}
            Outcome::Different(sig) => {
                other.get_or_insert(sig);
            }
            done @ (Outcome::Reproduces | Outcome::Error(_)) => return done,
        }
    }
    other.map_or(Outcome::Clean, Outcome::Different)
}

/// How long minimization may go on. `Default` is unbounded.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most oracle calls (each may run the program several times), the check of the input
    /// included.
    pub max_runs: Option<u64>,
    /// Most wall time, measured with `clock`.
    pub max_time: Option<Duration>,
    /// A monotonic clock (time since any fixed point); [`monotonic_clock`] unless a test
    /// supplies a fake one.
    pub clock: fn() -> Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_runs: None,
            max_time: None,
            clock: monotonic_clock,
        }
    }
}

/// Time since the first call in this process, from [`Instant`].
pub fn monotonic_clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// What the minimizer knows about the input and the machine.
#[derive(Clone, Debug)]
pub struct Options {
    /// Fraction of runs of the input that reproduced its finding (from the bundle); `1.0`
    /// means deterministic. Decides whether rejections are final (see the module doc).
    pub hit_rate: f64,
    /// Swap devices of the VM the oracle runs (for the validity check of candidates).
    pub swap_devices: u8,
    /// Run the input first and stop with [`StopReason::NotReproduced`] unless it reproduces.
    pub check_input: bool,
    /// Run the argument phase after the operation phase.
    pub simplify_args: bool,
    /// Stop with [`StopReason::OracleError`] after this many [`Outcome::Error`]s in a row.
    pub max_consecutive_errors: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hit_rate: 1.0,
            swap_devices: DEFAULT_SWAP_DEVICES,
            check_input: true,
            simplify_args: true,
            max_consecutive_errors: 3,
        }
    }
}

impl Options {
    pub fn is_deterministic(&self) -> bool {
        self.hit_rate >= 1.0
    }

    /// [`runs_needed`] for this input's hit rate: what the oracle should run per candidate.
    pub fn runs_needed(&self) -> u32 {
        runs_needed(self.hit_rate)
    }
}

/// One accepted reduction. Operation indices are those of the **input** program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// These operations were removed (the chunk tried and the operations using names it
    /// declared).
    Removed { ops: Vec<usize> },
    /// Operation `op` had `field` simplified.
    Simplified {
        op: usize,
        field: Field,
        from: Op,
        to: Op,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Removed { ops } => {
                let s = if ops.len() == 1 { "" } else { "s" };
                write!(f, "removed {} operation{s} (", ops.len())?;
                for (i, op) in ops.iter().enumerate() {
                    match i {
                        0 => write!(f, "#{op}")?,
                        1..=7 => write!(f, " #{op}")?,
                        _ => {
                            write!(f, " …")?;
                            break;
                        }
                    }
                }
                write!(f, ")")
            }
            Step::Simplified {
                op,
                field,
                from,
                to,
            } => {
                write!(f, "#{op} {}: `{from}` → `{to}`", field.name())
            }
        }
    }
}

/// Why minimization ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Both phases ran to the end: no single removal or simplification tried reproduces.
    Done,
    /// The budget ran out; the result is the best found so far.
    Budget,
    /// The input did not reproduce (with [`Options::check_input`]); nothing was minimized.
    NotReproduced(Outcome),
    /// The oracle failed [`Options::max_consecutive_errors`] times in a row (or on the input).
    OracleError(String),
    /// The input is not a valid program for `Options::swap_devices`: operation `op` breaks a
    /// rule. No oracle call was made.
    InvalidInput { op: usize, message: String },
}

/// The result: the smallest reproducing program found and how it was reached.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// Valid, without notes; the input (without notes) if nothing could be removed.
    pub program: Program,
    /// Oracle calls made.
    pub runs: u64,
    pub elapsed: Duration,
    /// Every accepted reduction, in order.
    pub steps: Vec<Step>,
    pub stopped: StopReason,
    /// Other signatures candidates showed (first seen first): other bugs, maybe worth a look.
    pub other_signatures: Vec<String>,
}

/// Where minimization is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Running the input as it is.
    Input,
    Operations,
    Arguments,
}

/// Reported after each oracle call and each accepted step.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub phase: Phase,
    /// Operations in the best program so far.
    pub ops: usize,
    pub input_ops: usize,
    /// Oracle calls so far, and the budget's bound on them.
    pub runs: u64,
    pub max_runs: Option<u64>,
    /// Wall time so far, by the budget's clock.
    pub elapsed: Duration,
    /// The last accepted reduction, if any.
    pub last_step: Option<&'a Step>,
}

/// Minimizes `program`, which reproduces the oracle's target signature, within `budget`.
pub fn minimize(
    program: &Program,
    options: &Options,
    oracle: &mut dyn Oracle,
    budget: &Budget,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Minimized {
    let mut run = Run {
        oracle,
        budget,
        options,
        progress,
        start: (budget.clock)(),
        runs: 0,
        consecutive_errors: 0,
        rejected: HashSet::new(),
        steps: Vec::new(),
        other_signatures: Vec::new(),
        phase: Phase::Input,
        ops: program.ops.len(),
        input_ops: program.ops.len(),
    };
    let mut current: Vec<(usize, Op)> = program.ops.iter().cloned().enumerate().collect();
    let stopped = match drive(&mut run, &mut current) {
        Ok(reason) => reason,
        Err(Halt::Budget) => StopReason::Budget,
        Err(Halt::OracleError(message)) => StopReason::OracleError(message),
    };
    Minimized {
        program: Program::new(current.into_iter().map(|(_, op)| op).collect()),
        runs: run.runs,
        elapsed: run.elapsed(),
        steps: run.steps,
        stopped,
        other_signatures: run.other_signatures,
    }
}

fn drive(run: &mut Run<'_>, current: &mut Vec<(usize, Op)>) -> Result<StopReason, Halt> {
    let ops: Vec<Op> = current.iter().map(|(_, op)| op.clone()).collect();
    if let Err((op, e)) = check(&ops, run.options.swap_devices) {
        return Ok(StopReason::InvalidInput {
            op,
            message: e.message,
        });
    }
    if run.options.check_input {
        match run.call(&ops)? {
            Outcome::Reproduces => {}
            Outcome::Error(message) => return Ok(StopReason::OracleError(message)),
            other => return Ok(StopReason::NotReproduced(other)),
        }
    }
    run.phase = Phase::Operations;
    ops::reduce(run, current)?;
    if run.options.simplify_args {
        run.phase = Phase::Arguments;
        run.end_sweep();
        args::simplify(run, current)?;
    }
    Ok(StopReason::Done)
}

/// Checks a whole program with [`Scope`]: the first operation that breaks a rule, if any.
fn check(ops: &[Op], swap_devices: u8) -> Result<(), (usize, ScopeError)> {
    let mut scope = Scope::new(swap_devices);
    for (i, op) in ops.iter().enumerate() {
        scope.apply(op).map_err(|e| (i, e))?;
    }
    scope.finish().map_err(|e| (ops.len().saturating_sub(1), e))
}

/// Why a phase stopped early.
#[derive(Debug)]
enum Halt {
    Budget,
    OracleError(String),
}

/// The state of one minimization: the oracle, the accounting and the memory of rejections.
struct Run<'a> {
    oracle: &'a mut dyn Oracle,
    budget: &'a Budget,
    options: &'a Options,
    progress: &'a mut dyn FnMut(&Progress<'_>),
    start: Duration,
    runs: u64,
    consecutive_errors: u32,
    /// Printed candidates rejected (for good if deterministic, else in this sweep).
    rejected: HashSet<String>,
    steps: Vec<Step>,
    other_signatures: Vec<String>,
    phase: Phase,
    /// Size of the best program so far, for progress.
    ops: usize,
    input_ops: usize,
}

impl Run<'_> {
    fn elapsed(&self) -> Duration {
        (self.budget.clock)().saturating_sub(self.start)
    }

    /// Whether the candidate `ops` reproduces: `false` without a run if it is invalid or was
    /// rejected before (see the flaky policy).
    fn test(&mut self, ops: &[Op]) -> Result<bool, Halt> {
        if ops.is_empty() || check(ops, self.options.swap_devices).is_err() {
            return Ok(false);
        }
        let key = print(&Program::new(ops.to_vec()));
        if self.rejected.contains(&key) {
            return Ok(false);
        }
        match self.call(ops)? {
            Outcome::Reproduces => Ok(true),
            Outcome::Different(_) | Outcome::Clean => {
                self.rejected.insert(key);
                Ok(false)
            }
            Outcome::Error(message) => {
                if self.consecutive_errors >= self.options.max_consecutive_errors {
                    return Err(Halt::OracleError(message));
                }
                Ok(false)
            }
        }
    }

    /// One oracle call within the budget, with its accounting.
    fn call(&mut self, ops: &[Op]) -> Result<Outcome, Halt> {
        if self.budget.max_runs.is_some_and(|max| self.runs >= max)
            || self
                .budget
                .max_time
                .is_some_and(|max| self.elapsed() >= max)
        {
            return Err(Halt::Budget);
        }
        let outcome = self.oracle.reproduces(&Program::new(ops.to_vec()));
        self.runs += 1;
        match &outcome {
            Outcome::Error(_) => self.consecutive_errors += 1,
            Outcome::Different(sig) => {
                self.consecutive_errors = 0;
                if !self.other_signatures.contains(sig) {
                    self.other_signatures.push(sig.clone());
                }
            }
            Outcome::Reproduces | Outcome::Clean => self.consecutive_errors = 0,
        }
        self.report();
        Ok(outcome)
    }

    /// Records an accepted reduction; the best program now has `ops` operations.
    fn accept(&mut self, step: Step, ops: usize) {
        self.steps.push(step);
        self.ops = ops;
        self.report();
    }

    /// Ends a sweep: a flaky finding's rejections are forgotten.
    fn end_sweep(&mut self) {
        if !self.options.is_deterministic() {
            self.rejected.clear();
        }
    }

    fn report(&mut self) {
        let elapsed = self.elapsed();
        (self.progress)(&Progress {
            phase: self.phase,
            ops: self.ops,
            input_ops: self.input_ops,
            runs: self.runs,
            max_runs: self.budget.max_runs,
            elapsed,
            last_step: self.steps.last(),
        });
    }
}

#[cfg(test)]
mod tests;
