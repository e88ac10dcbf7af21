//! Time to the first finding: cold-start campaigns (one worker, fresh corpus) on a kernel
//! with a planted regression, stopped at the first finding a signature pattern matches
//! (findings it does not match are listed and the campaign goes on), once from an empty
//! corpus and once from the seeds, each repeated.
//!
//! "Cold start" is the campaign's start: the worker's VM boots inside the measured time (the
//! fuzz target is built and the kernel prepared before). The time is when the worker's
//! stats file recorded the finding.

use std::path::PathBuf;
use std::time::Duration;

use super::campaign::{self, CampaignError, CampaignOptions};
use super::sigpattern::SignaturePattern;

/// One measured campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct FindRun {
    pub seeded: bool,
    /// Seconds to the first finding the wanted pattern matches; `None` if none came within
    /// the limit.
    pub secs: Option<f64>,
    /// The first finding the pattern matches (else the first finding at all).
    pub signature: Option<String>,
    /// Its title from its bundle (a zone finding's says the page's folio order), when the
    /// campaign could write one.
    pub title: Option<String>,
    /// Every finding of the campaign with its time in seconds, earliest first: those the
    /// pattern does not match did not stop it.
    pub found: Vec<(String, f64)>,
    pub execs: u64,
}

/// Runs one campaign from `seeds` (or nothing) until the first finding `wanted` matches, or
/// `limit`.
pub fn time_to_first(
    template: &CampaignOptions,
    seeds: Option<PathBuf>,
    limit: Duration,
    wanted: &SignaturePattern,
) -> Result<FindRun, CampaignError> {
    let dir = tempfile::Builder::new()
        .prefix("shmemfuzz-find-")
        .tempdir()
        .map_err(|source| CampaignError::Io {
            what: "creating a temporary directory in",
            path: std::env::temp_dir(),
            source,
        })?;
    let opts = CampaignOptions {
        jobs: 1,
        duration: limit,
        corpus: dir.path().join("corpus"),
        seeds: seeds.iter().cloned().collect(),
        out: dir.path().join("out"),
        stop_on: Some(wanted.clone()),
        known: None,
        topology: None,
        ..template.clone()
    };
    let status = campaign::run(&opts, &mut |_| {})?;
    if status.execs == 0 && !status.abandoned.is_empty() {
        return Err(CampaignError::NoWorker(status.abandoned.join("\n")));
    }
    let mut found: Vec<(String, f64)> = status
        .findings
        .iter()
        .map(|(sig, f)| (sig.clone(), f.first_at.as_secs_f64()))
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    let hit = found.iter().find(|(sig, _)| wanted.matches(sig));
    let shown = hit.or(found.first()).map(|(sig, _)| sig.clone());
    let title = shown.as_ref().and_then(|sig| {
        let f = status.findings.get(sig)?;
        title_in_bundle(f.bundle.as_deref()?, sig)
    });
    Ok(FindRun {
        seeded: seeds.is_some(),
        secs: hit.map(|(_, secs)| *secs),
        signature: shown,
        title,
        found,
        execs: status.execs,
    })
}

/// The title of the finding `signature` in the bundle at `dir` (read before the campaign's
/// temporary directory goes); `None` if the bundle does not read.
fn title_in_bundle(dir: &std::path::Path, signature: &str) -> Option<String> {
    let b = crate::findings::bundle::Bundle::read(dir).ok()?;
    let findings = b.contents.outcome.verdict.findings;
    findings
        .iter()
        .find(|f| f.signature == signature)
        .or(findings.first())
        .map(|f| f.title.clone())
}

/// The median of the runs' times, counting a miss as the limit (so a median that equals
/// the limit means "not found within it in most runs").
pub fn median_secs(runs: &[&FindRun], limit: Duration) -> f64 {
    let mut t: Vec<f64> = runs
        .iter()
        .map(|r| r.secs.unwrap_or(limit.as_secs_f64()))
        .collect();
    t.sort_by(f64::total_cmp);
    t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
}
