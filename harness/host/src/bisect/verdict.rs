//! One step's verdict from its replays ([`Verdict::from_tally`]) and the confidence of a
//! whole bisection ([`confidence`]).
//!
//! A step is decided on the reproducer's signature only: any run that shows it makes the
//! kernel bad; all runs clean make it good; runs with other findings and none of the
//! signature make it *unrelated*, which is neither (skipped, and reported), as are commits
//! that do not build and kernels that do not boot.

use crate::reproduce::Tally;

/// What a step found out about one commit (or version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every replay was clean.
    Good,
    /// At least one replay showed the signature.
    Bad,
    /// The commit does not build (the tail of make's output).
    BuildFailed { reason: String },
    /// The kernel did not boot or the harness failed on it.
    NoBoot { reason: String },
    /// Replays crashed with other signatures and never with the reproducer's.
    Unrelated { signatures: Vec<String> },
}

impl Verdict {
    /// The verdict of replays that all completed.
    pub fn from_tally(t: &Tally) -> Verdict {
        if t.hits > 0 {
            Verdict::Bad
        } else if !t.unrelated.is_empty() {
            Verdict::Unrelated {
                signatures: t.unrelated.clone(),
            }
        } else {
            Verdict::Good
        }
    }

    /// Neither good nor bad: the bisection steps around it.
    pub fn is_skip(&self) -> bool {
        !matches!(self, Verdict::Good | Verdict::Bad)
    }

    /// One word for logs: good, bad, skip.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::BuildFailed { .. } => "skip (does not build)",
            Verdict::NoBoot { .. } => "skip (does not boot)",
            Verdict::Unrelated { .. } => "skip (unrelated finding)",
        }
    }
}

/// The reproducer's hit rate: the bundle's recorded runs and hits, plus the replays on every
/// bad kernel of this bisection (which show how reliably it reproduces where the bug is).
/// `None` when nothing was counted.
pub fn hit_rate(recorded: (u32, u32), bad_tallies: &[&Tally]) -> Option<f64> {
    let (mut runs, mut hits) = recorded;
    for t in bad_tallies {
        runs += t.runs;
        hits += t.hits;
    }
    (runs > 0).then(|| f64::from(hits) / f64::from(runs))
}

/// The probability that no good verdict was a bad kernel missed by chance: the product over
/// good verdicts of `1 - (1 - p)^n` (n replays each, hit rate p). Bad verdicts cannot be
/// wrong that way (the signature showed), so they do not count.
pub fn confidence(p: f64, good_runs: &[u32]) -> f64 {
    let p = p.clamp(0.0, 1.0);
    good_runs
        .iter()
        .map(|&n| 1.0 - (1.0 - p).powi(n as i32))
        .product()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(runs: u32, hits: u32, unrelated: &[&str]) -> Tally {
        Tally {
            runs,
            hits,
            clean: runs - hits - u32::from(!unrelated.is_empty()),
            unrelated: unrelated.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_signature_decides_and_other_findings_are_neither() {
        assert_eq!(Verdict::from_tally(&tally(3, 0, &[])), Verdict::Good);
        assert_eq!(Verdict::from_tally(&tally(3, 1, &[])), Verdict::Bad);
        assert_eq!(
            Verdict::from_tally(&tally(3, 1, &["kernel:x"])),
            Verdict::Bad
        );
        let v = Verdict::from_tally(&tally(3, 0, &["kernel:x"]));
        assert!(v.is_skip());
        assert_eq!(
            v,
            Verdict::Unrelated {
                signatures: vec!["kernel:x".into()]
            }
        );
    }

    #[test]
    fn confidence_is_the_product_over_good_verdicts() {
        assert_eq!(confidence(1.0, &[3, 3]), 1.0);
        assert_eq!(confidence(0.5, &[]), 1.0);
        let c = confidence(0.5, &[3, 2]);
        assert!((c - (0.875 * 0.75)).abs() < 1e-12, "{c}");
        assert_eq!(confidence(0.0, &[5]), 0.0);
        assert_eq!(hit_rate((0, 0), &[]), None);
        let t = tally(4, 2, &[]);
        assert_eq!(hit_rate((1, 1), &[&t]), Some(0.6));
    }
}
