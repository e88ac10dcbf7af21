//! Time to the first finding: cold-start campaigns (one worker, fresh corpus) on a kernel
//! with a planted regression, stopped at the first finding, once from an empty corpus and
//! once from the seeds, each repeated.
//!
//! "Cold start" is the campaign's start: the worker's VM boots inside the measured time (the
//! fuzz target is built and the kernel prepared before). The time is when the worker's
//! stats file recorded the finding.

use std::path::PathBuf;
use std::time::Duration;

use super::campaign::{self, CampaignError, CampaignOptions};

/// One measured campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct FindRun {
    pub seeded: bool,
    /// Seconds to the first finding whose signature starts with the wanted prefix; `None`
    /// if none came within the limit.
    pub secs: Option<f64>,
    /// The first finding's signature (whatever it was).
    pub signature: Option<String>,
    /// Its title from its bundle (a zone finding's says the page's folio order), when the
    /// campaign could write one.
    pub title: Option<String>,
    pub execs: u64,
}

/// Runs one campaign from `seeds` (or nothing) until the first finding or `limit`.
pub fn time_to_first(
    template: &CampaignOptions,
    seeds: Option<PathBuf>,
    limit: Duration,
    wanted_prefix: &str,
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
        stop_on_finding: true,
        known: None,
        topology: None,
        ..template.clone()
    };
    let status = campaign::run(&opts, &mut |_| {})?;
    if status.execs == 0 && !status.abandoned.is_empty() {
        return Err(CampaignError::NoWorker(status.abandoned.join("\n")));
    }
    let first = status.findings.iter().min_by_key(|(_, f)| f.first_at);
    let title = first.and_then(|(sig, f)| title_in_bundle(f.bundle.as_deref()?, sig));
    Ok(FindRun {
        seeded: seeds.is_some(),
        secs: first
            .filter(|(sig, _)| sig.starts_with(wanted_prefix))
            .map(|(_, f)| f.first_at.as_secs_f64()),
        signature: first.map(|(sig, _)| sig.clone()),
        title,
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
