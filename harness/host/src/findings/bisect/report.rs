//! What a bisection says: one line per step ([`step_line`]), and at the end the answer,
//! its confidence, good-after-bad warnings and unrelated findings ([`report_lines`]).

use super::plan::{good_after_bad, Outcome};
use super::verdict::{confidence, hit_rate, Verdict};
use super::{Options, Report, State, Step};
use crate::findings::reproduce::Tally;

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

pub(super) fn summarize(
    state: &State,
    opts: &Options,
    outcome: Option<Outcome>,
    new_steps: usize,
) -> Report {
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
        Some(Outcome::EndSkipped { rev, verdict }) => {
            let why = match verdict {
                Verdict::BuildFailed { reason } => first_error(reason).to_string(),
                Verdict::NoBoot { reason } => last_line(reason).to_string(),
                Verdict::Unrelated { signatures } => signatures.join(", "),
                _ => String::new(),
            };
            out.push(format!(
                "the end {rev} cannot be tested: {}: {why} (choose another end; state.json has the details)",
                verdict.word()
            ));
        }
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
