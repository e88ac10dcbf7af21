//! `shmemfuzz fuzz`: a bounded fuzzing campaign on one kernel (the main job).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use shmemfuzz::fuzzing::build::build_target;
use shmemfuzz::fuzzing::campaign::{self, CampaignOptions, CampaignStatus};
use shmemfuzz::fuzzing::history::History;
use shmemfuzz::kernels::context::Context;

use super::progress::{prepare_events, spinner};

/// How often the campaign's report.html is rewritten.
const REPORT_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Kernel: a catalog id (`debian-6.1`, `debian-6.12`, `src-6.1`, `src-6.1-kasan`,
    /// `src-6.12`, `src-6.12-kasan`; `kernel list` shows them all) or a `tree-…` id (default:
    /// the catalog's default).
    #[arg(long)]
    kernel: Option<String>,
    /// Extra kernel arguments (repeatable), e.g. `--append shmem.planted_no_replace=1`.
    #[arg(long)]
    append: Vec<String>,
    /// Workers, one VM each (one per CPU core is the most that helps under TCG).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: u32,
    /// How long to fuzz, e.g. `90s`, `10m`, `2h`.
    #[arg(long, default_value = "10m", value_parser = super::limits::duration)]
    duration: Duration,
    /// The corpus directory new inputs go to (default: fuzz/corpus/shmem_ops, the one
    /// `cargo fuzz run shmem_ops` uses, which holds the seeds).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// More corpus directories to read at start, never written (repeatable).
    #[arg(long)]
    seeds: Vec<PathBuf>,
    /// Where findings (bundles, crash files), logs, stats and report.html go (default:
    /// fuzz/findings).
    #[arg(long)]
    out: Option<PathBuf>,
    /// End at the first finding.
    #[arg(long)]
    stop_on_finding: bool,
    /// A prebuilt `shmem_ops` libFuzzer binary instead of building one.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Known findings (e.g. kernels/known/6.1.toml): counted and shown in the summary, never
    /// a reason to stop or to exit 1. See docs/fuzzing.md.
    #[arg(long)]
    known: Option<PathBuf>,
    /// The guest topology every worker boots (docs/zone-oracle.md).
    #[arg(long, value_enum, default_value = "flat")]
    topology: shmemfuzz::guest::vm::Topology,
    /// vCPUs of each worker's guest: races need 2 (docs/races.md); workers × vCPUs should not
    /// exceed the host's cores under TCG.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    smp: u32,
}

/// The `shmem_ops` binary: given, or to be built in a source tree.
enum Target<'a> {
    Given(PathBuf),
    BuildIn(&'a std::path::Path),
}

pub fn fuzz(args: FuzzArgs) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    // The defaults that need a source tree, checked before minutes of kernel download.
    let corpus = match args.corpus {
        Some(c) => c,
        None => ctx
            .tree("the corpus (fuzz/corpus/shmem_ops)", "give --corpus DIR")?
            .join("fuzz/corpus/shmem_ops"),
    };
    let out = match args.out {
        Some(o) => o,
        None => ctx
            .tree("the findings directory (fuzz/findings)", "give --out DIR")?
            .join("fuzz/findings"),
    };
    let target = match args.binary {
        Some(b) => Target::Given(b),
        None => Target::BuildIn(ctx.tree(
            "building the fuzz target (fuzz/)",
            "build it in a checkout (`cargo fuzz build shmem_ops`) and pass --binary",
        )?),
    };
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(args.kernel.as_deref(), &prepare_events(&pb))?;
    pb.finish_and_clear();
    let binary = match target {
        Target::Given(b) => b,
        Target::BuildIn(tree) => {
            eprintln!("building the fuzz target (fuzz/, cached after the first build)");
            build_target(tree)?
        }
    };
    let opts = CampaignOptions {
        binary,
        // As given: a built kernel's resolved id (src-6.1-<hash>) is not one the workers'
        // Context::prepare knows.
        kernel: args.kernel.clone(),
        append: args.append,
        jobs: args.jobs,
        duration: args.duration,
        corpus,
        seeds: args.seeds,
        out,
        stop_on: args
            .stop_on_finding
            .then(shmemfuzz::fuzzing::sigpattern::SignaturePattern::any),
        known: match args.known {
            Some(k) => {
                // Refuse a bad file here, not in every worker.
                shmemfuzz::fuzzing::known::KnownFindings::load(&k)?;
                Some(std::path::absolute(&k).unwrap_or(k))
            }
            None => None,
        },
        topology: Some(format!("{:?}", args.topology).to_lowercase()),
        smp: args.smp,
    };
    let inputs = std::fs::read_dir(&opts.corpus).map_or(0, |d| d.count());
    eprintln!(
        "fuzzing {}{} with {} worker(s) for {}; corpus {} ({inputs} inputs); findings in {}",
        prepared.kernel.id,
        if opts.append.is_empty() {
            String::new()
        } else {
            format!(" [{}]", opts.append.join(" "))
        },
        opts.jobs,
        humantime::format_duration(opts.duration),
        opts.corpus.display(),
        opts.out.display()
    );
    let bar = ProgressBar::new(opts.duration.as_secs());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    // report.html in the output directory, rewritten every minute and at the end.
    let mut reported = Duration::ZERO;
    let status = campaign::run(&opts, &mut |s| {
        bar.set_position(s.elapsed.as_secs());
        bar.set_message(s.line());
        if s.elapsed >= reported + REPORT_EVERY {
            reported = s.elapsed;
            if let Err(e) = shmemfuzz::fuzzing::report::write(&opts.out) {
                bar.println(format!("report: {e}"));
            }
        }
    })
    .context("running the campaign")?;
    bar.finish_and_clear();
    match shmemfuzz::fuzzing::report::write(&opts.out) {
        Ok(page) => println!("report: {}", page.display()),
        Err(e) => eprintln!("report: {e}"),
    }
    print_summary(&status, &opts);
    Ok(if !status.findings.is_empty() {
        ExitCode::from(1)
    } else if status.execs == 0 || !status.abandoned.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &CampaignStatus, opts: &CampaignOptions) {
    println!(
        "{} executions in {} ({:.2}/s), {} boots, {} restores, {} harness failures",
        s.execs,
        humantime::format_duration(Duration::from_secs(s.elapsed.as_secs())),
        s.execs_per_sec(),
        s.boots,
        s.restores,
        s.harness_failures
    );
    println!(
        "kernel coverage: {} mm functions ran{}; {} DMA32 pages came back from swap at a new PFN",
        s.functions,
        if s.mm_pcs > 0 {
            format!(", {} mm/ PCs (KCOV)", s.mm_pcs)
        } else {
            String::new()
        },
        s.replaced_pages
    );
    if !s.replaced_by_key.is_empty() {
        let keys: Vec<String> = s
            .replaced_by_key
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "  by route (`:large` back in a large folio, `:split` back alone from one): {}",
            keys.join(", ")
        );
    }
    println!("corpus: {} inputs in {}", s.corpus, opts.corpus.display());
    // Per worker, from the history every incarnation appended (stats/w<worker>-<n>.jsonl).
    let history = History::load(&opts.out.join("stats"));
    for (w, points) in &history.workers {
        let Some(p) = points.last() else { continue };
        println!(
            "worker {w}: {} incarnation(s), {} executions, {} mm functions, {} replaced pages, \
             {} finding(s), {} harness failure(s), {} boots, {} restores",
            history.incarnations.get(w).copied().unwrap_or(0),
            p.runs,
            p.functions,
            p.replaced_pages,
            p.findings,
            p.harness_failures,
            p.boots,
            p.restores
        );
    }
    if history.skipped > 0 {
        println!(
            "history: {} unreadable line(s) skipped (a worker killed mid-write)",
            history.skipped
        );
    }
    for a in &s.abandoned {
        println!("harness failure (not a finding): {a}");
    }
    for (sig, runs) in &s.known {
        println!("known (not failed on): {sig} in {runs} run(s)");
    }
    if s.findings.is_empty() {
        println!("no findings");
        return;
    }
    println!(
        "{:<44} {:>5} {:>10}  bundle",
        "signature", "hits", "first at"
    );
    for (sig, f) in &s.findings {
        println!(
            "{sig:<44} {:>5} {:>9}s  {}",
            f.hits,
            f.first_at.as_secs(),
            f.bundle
                .as_ref()
                .map_or_else(|| "(not recorded)".into(), |b| b.display().to_string())
        );
    }
    println!(
        "crash files: {}; replay with `shmemfuzz replay <bundle>`, shrink with `shmemfuzz minimize <bundle>`",
        opts.out.join("crashes").display()
    );
}
