//! Which commit to test next, and when the answer is known: a pure function of the ordered
//! candidates and the verdicts so far ([`next`]), so that a resumed bisection picks exactly
//! what the interrupted one would have.
//!
//! `revs` is the range oldest first: `revs[0]` is the good end, the last one the bad end.
//! The ends are tested first (bad end, then good end): a reproducer that does not reproduce
//! on the bad end, or already does on the good end, makes any answer meaningless. Then the
//! untested commit nearest the middle of (last good, first bad) is tested, the lower one on a
//! tie; skipped commits are stepped around. When nothing untested is left between them, the
//! first bad commit is known, or, if skipped commits sit right before it, a short list of
//! candidates (as `git bisect` says "only skipped commits left to test").

use std::collections::BTreeMap;

use super::verdict::Verdict;

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Test `revs[i]`.
    Test(usize),
    /// The bisection is over.
    Done(Outcome),
}

/// How a bisection ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `revs[index]` is the first bad one.
    FirstBad { rev: String },
    /// The first bad one is among these (the others could not be tested), oldest first.
    OneOf { revs: Vec<String> },
    /// The bad end does not reproduce: nothing to bisect.
    BadEndGood { rev: String },
    /// The good end reproduces already.
    GoodEndBad { rev: String },
    /// An end could not be tested (does not build or boot, or an unrelated finding).
    EndSkipped { rev: String, verdict: Verdict },
}

/// The next step when every revision is to be tested (`--every`): the ends first, then the
/// rest newest first; once all are tested, the answer [`next`] gives on the full picture.
pub fn next_every(revs: &[String], verdicts: &BTreeMap<usize, Verdict>) -> Next {
    let n = revs.len();
    let order = [n - 1, 0].into_iter().chain((1..n - 1).rev());
    for i in order {
        if !verdicts.contains_key(&i) {
            return Next::Test(i);
        }
    }
    next(revs, verdicts)
}

/// Good verdicts above a bad one: the reproducer (or the history) is not monotonic, and
/// the answer should not be trusted blindly.
pub fn good_after_bad(verdicts: &BTreeMap<usize, Verdict>) -> Vec<usize> {
    let Some(first_bad) = verdicts
        .iter()
        .find(|(_, v)| **v == Verdict::Bad)
        .map(|(i, _)| *i)
    else {
        return Vec::new();
    };
    verdicts
        .iter()
        .filter(|(i, v)| **i > first_bad && **v == Verdict::Good)
        .map(|(i, _)| *i)
        .collect()
}

/// The next step, given the verdicts so far (`verdicts[i]` is about `revs[i]`).
pub fn next(revs: &[String], verdicts: &BTreeMap<usize, Verdict>) -> Next {
    let n = revs.len();
    assert!(n >= 2, "a range has a good and a bad end");
    let (good_end, bad_end) = (0, n - 1);
    for (end, wanted) in [(bad_end, Verdict::Bad), (good_end, Verdict::Good)] {
        match verdicts.get(&end) {
            None => return Next::Test(end),
            Some(v) if v.is_skip() => {
                return Next::Done(Outcome::EndSkipped {
                    rev: revs[end].clone(),
                    verdict: v.clone(),
                })
            }
            Some(v) if *v != wanted => {
                let rev = revs[end].clone();
                return Next::Done(if end == bad_end {
                    Outcome::BadEndGood { rev }
                } else {
                    Outcome::GoodEndBad { rev }
                });
            }
            Some(_) => {}
        }
    }
    // The first bad, then the last good below it.
    let hi = (0..n)
        .find(|i| verdicts.get(i) == Some(&Verdict::Bad))
        .unwrap_or(bad_end);
    let lo = (0..hi)
        .rev()
        .find(|i| verdicts.get(i) == Some(&Verdict::Good))
        .unwrap_or(good_end);
    let middle = (lo + hi) as f64 / 2.0;
    let pick = (lo + 1..hi)
        .filter(|i| !verdicts.contains_key(i))
        .min_by(|a, b| {
            let (da, db) = ((*a as f64 - middle).abs(), (*b as f64 - middle).abs());
            da.total_cmp(&db).then(a.cmp(b))
        });
    match pick {
        Some(i) => Next::Test(i),
        None if hi == lo + 1 => Next::Done(Outcome::FirstBad {
            rev: revs[hi].clone(),
        }),
        None => Next::Done(Outcome::OneOf {
            revs: revs[lo + 1..=hi].to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    /// Runs the plan to the end against `truth(i)`; returns the outcome and the order tested.
    fn drive(n: usize, truth: impl Fn(usize) -> Verdict) -> (Outcome, Vec<usize>) {
        let revs = revs(n);
        let mut v = BTreeMap::new();
        let mut order = Vec::new();
        loop {
            match next(&revs, &v) {
                Next::Test(i) => {
                    assert!(!v.contains_key(&i), "tested c{i} twice");
                    order.push(i);
                    v.insert(i, truth(i));
                }
                Next::Done(o) => return (o, order),
            }
        }
    }

    fn regression_at(k: usize) -> impl Fn(usize) -> Verdict {
        move |i| if i >= k { Verdict::Bad } else { Verdict::Good }
    }

    #[test]
    fn every_position_of_the_first_bad_commit_is_found() {
        for n in 2..40 {
            for k in 1..n {
                let (o, order) = drive(n, regression_at(k));
                assert_eq!(
                    o,
                    Outcome::FirstBad {
                        rev: format!("c{k}")
                    },
                    "n={n} k={k}"
                );
                // Ends, then about log2(n) steps.
                let bound = 2 + (usize::BITS - (n - 1).leading_zeros()) as usize;
                assert!(order.len() <= bound, "n={n} k={k}: {order:?}");
            }
        }
    }

    #[test]
    fn the_synthetic_history_is_walked_as_the_vm_test_expects() {
        // 9 revisions: base, 8 commits; c4 does not build, c6 is the regression.
        let (o, order) = drive(9, |i| match i {
            4 => Verdict::BuildFailed {
                reason: "typo".into(),
            },
            i if i >= 6 => Verdict::Bad,
            _ => Verdict::Good,
        });
        assert_eq!(o, Outcome::FirstBad { rev: "c6".into() });
        assert_eq!(order, [8, 0, 4, 3, 5, 6]);
    }

    #[test]
    fn skipped_commits_next_to_the_answer_leave_a_list() {
        let (o, _) = drive(6, |i| match i {
            2 | 3 => Verdict::Unrelated {
                signatures: vec!["kernel:x".into()],
            },
            i if i >= 3 => Verdict::Bad,
            _ => Verdict::Good,
        });
        assert_eq!(
            o,
            Outcome::OneOf {
                revs: vec!["c2".into(), "c3".into(), "c4".into()]
            }
        );
    }

    #[test]
    fn every_revision_is_tested_with_every_and_a_comeback_is_flagged() {
        let revs = revs(5);
        let mut v = BTreeMap::new();
        let mut order = Vec::new();
        let truth = |i: usize| match i {
            2 | 4 => Verdict::Bad,
            _ => Verdict::Good,
        };
        let o = loop {
            match next_every(&revs, &v) {
                Next::Test(i) => {
                    order.push(i);
                    v.insert(i, truth(i));
                }
                Next::Done(o) => break o,
            }
        };
        assert_eq!(order, [4, 0, 3, 2, 1]);
        assert_eq!(o, Outcome::FirstBad { rev: "c2".into() });
        assert_eq!(good_after_bad(&v), [3]);
    }

    #[test]
    fn ends_that_contradict_the_range_stop_at_once() {
        let (o, order) = drive(5, |_| Verdict::Good);
        assert_eq!(
            (o, order),
            (Outcome::BadEndGood { rev: "c4".into() }, vec![4])
        );
        let (o, order) = drive(5, |_| Verdict::Bad);
        assert_eq!(
            (o, order),
            (Outcome::GoodEndBad { rev: "c0".into() }, vec![4, 0])
        );
        let (o, _) = drive(5, |i| {
            if i == 4 {
                Verdict::NoBoot {
                    reason: "panic".into(),
                }
            } else {
                Verdict::Good
            }
        });
        assert!(matches!(o, Outcome::EndSkipped { .. }), "{o:?}");
    }
}
