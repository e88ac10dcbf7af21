//! What `run --repeat N` and `replay --repeat N` print and record: one line per run, the
//! findings of a run that had some, a summary by signature (hits, hit rate, first run and time
//! to it), and the bundle of the first finding with the final hit count.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;
use shmemfuzz::findings::bundle::{Bundle, BundleContents};
use shmemfuzz::findings::reproduce::{RepeatPlan, Repetition};
use shmemfuzz::session::runner::Runner;
use shmemfuzz::session::RunOutcome;
use shmemfuzz_core::program::Program;

/// Findings lines printed per run (a KASAN report is long; the console log has it all).
const DETAIL_LINES: usize = 40;

/// `run N/M: clean (1.8 s)` or the run's signatures, then each finding's title and detail.
pub(super) fn print_run(run: u32, plan: RepeatPlan, out: &RunOutcome, details: bool) {
    let secs = out.wall_ms as f64 / 1000.0;
    if out.verdict.is_clean() {
        println!("run {run}/{}: clean ({secs:.1} s)", plan.runs);
        return;
    }
    println!(
        "run {run}/{}: {} ({secs:.1} s)",
        plan.runs,
        out.verdict.signatures().join(", ")
    );
    if !details {
        return;
    }
    for f in &out.verdict.findings {
        println!("  [{}] {}", f.kind.tag(), f.title);
        for line in f.detail.lines().take(DETAIL_LINES) {
            println!("    | {line}");
        }
    }
}

/// The summary: runs, clean runs, and per signature its hits, rate and first appearance.
pub(super) fn print_summary(rep: &Repetition, plan: RepeatPlan, kernel: &str) {
    let how = if rep.stopped_early {
        " (stopped at the first finding; --keep-going runs them all)"
    } else {
        ""
    };
    println!(
        "{} of {} run(s) on {kernel} in {}{how}: {} clean",
        rep.runs,
        plan.runs,
        secs(rep.elapsed),
        rep.clean
    );
    for (sig, h) in &rep.by_signature {
        println!(
            "  {sig}\n    {}: {}/{} runs ({:.1}%), first in run {} after {}",
            h.title,
            h.hits,
            rep.runs,
            100.0 * f64::from(h.hits) / f64::from(rep.runs.max(1)),
            h.first_run,
            secs(h.first_after)
        );
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Records the first finding of a repetition as a bundle at once (an interrupted repetition
/// keeps it), and rewrites its hit count when the repetition ends.
pub(super) struct FirstFindingBundle {
    dir: Option<PathBuf>,
    written: Option<(String, BundleContents)>,
}

impl FirstFindingBundle {
    /// Writes to `dir` (nothing when `None`).
    pub fn new(dir: Option<&Path>) -> Self {
        FirstFindingBundle {
            dir: dir.map(Path::to_path_buf),
            written: None,
        }
    }

    /// Called after each run: the first run with a finding becomes the bundle, about its first
    /// signature.
    pub fn after_run(
        &mut self,
        runner: &Runner,
        program: &Program,
        out: &RunOutcome,
        so_far: shmemfuzz::findings::bundle::HitCount,
        pb: &ProgressBar,
    ) -> anyhow::Result<()> {
        let (Some(dir), None) = (&self.dir, &self.written) else {
            return Ok(());
        };
        let Some(sig) = out.verdict.signatures().first().map(|s| s.to_string()) else {
            return Ok(());
        };
        let contents = runner.bundle_last_run(program, out, Some(sig.clone()), so_far)?;
        Bundle::write(dir, &contents)?;
        pb.suspend(|| println!("bundle: {} (about {sig})", dir.display()));
        self.written = Some((sig, contents));
        Ok(())
    }

    /// Rewrites the bundle with the repetition's final hit count of its signature.
    pub fn finish(self, rep: &Repetition) -> anyhow::Result<Option<PathBuf>> {
        let (Some(dir), Some((sig, contents))) = (self.dir, self.written) else {
            return Ok(None);
        };
        let contents = BundleContents {
            hits: rep.hit_count(&sig),
            ..contents
        };
        Bundle::write_replacing(&dir, &contents)?;
        Ok(Some(dir))
    }
}
