//! Replaying one program several times on one kernel and counting how often it shows a given
//! signature ([`replay_counting`]): what `replay` prints as "reproduced in h/n runs" and what
//! each bisection step decides on. A run whose findings do not include the signature but are
//! not empty is *unrelated* (another bug), counted apart from clean runs.

use serde::{Deserialize, Serialize};
use shmemfuzz_core::program::Program;

use crate::runner::Runner;
use crate::session::{RunOutcome, SessionError};

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
pub fn replay_counting(
    runner: &mut Runner,
    program: &Program,
    target: Option<&str>,
    runs: u32,
    on_run: &mut dyn FnMut(&Runner, u32, &RunOutcome, bool),
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
}
