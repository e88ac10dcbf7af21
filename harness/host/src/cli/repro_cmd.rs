//! `shmemfuzz repro PATH…`: replay saved inputs — libFuzzer crash files (raw bytes, decoded
//! with `arbitrary` exactly as the fuzz target does), corpus directories, program files and
//! bundles — group what they find by signature, write one bundle per distinct finding, and
//! print a summary (signature, inputs, reproduction rate, example input).

use shmemfuzz::bounded;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use arbitrary::{Arbitrary, Unstructured};
use clap::Args;
use shmemfuzz::bundle::{Bundle, BundleContents, HitCount};
use shmemfuzz::context::Context;
use shmemfuzz::runner::Runner;
use shmemfuzz::session::SessionOptions;
use shmemfuzz_core::minimize::runs_needed;
use shmemfuzz_core::program::{self, Program};

use super::progress::{prepare_events, spinner};

#[derive(Debug, Args)]
pub struct ReproArgs {
    /// Crash files, corpus directories, program files (.prog) or bundle directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Kernel to reproduce on (default: the catalog's default).
    #[arg(long)]
    kernel: Option<String>,
    /// Kernel command-line arguments.
    #[arg(long)]
    append: Vec<String>,
    /// Runs per input (the reproduction rate is hits over runs). Default: 1, or for a bundle
    /// whose finding reproduced in only some runs, enough runs to see it again with 95%
    /// probability at its recorded hit rate (at most 64).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    runs: Option<u32>,
    /// Where to write one bundle per distinct finding.
    #[arg(long, default_value = "repro-out")]
    out: PathBuf,
    /// Accept the test-only operations (`corrupt`, `sysrq`).
    #[arg(long)]
    allow_test_ops: bool,
}

/// One input to replay, with where it came from.
struct Input {
    origin: PathBuf,
    program: Program,
    /// Runs it needs when --runs is not given.
    default_runs: u32,
}

/// Decodes `path` as a bundle, a program file or a libFuzzer input.
fn decode(path: &Path) -> anyhow::Result<Input> {
    let mut default_runs = 1;
    let program = if path.is_dir() {
        let c = Bundle::read(path)?.contents;
        if c.signature.is_some() {
            default_runs = runs_needed(c.hits.rate());
        }
        c.program
    } else if path.extension().is_some_and(|e| e == "prog") {
        let text = bounded::read_text(path, bounded::PROGRAM_MAX)?;
        program::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        let bytes = bounded::read(path, bounded::INPUT_MAX)?;
        Program::arbitrary(&mut Unstructured::new(&bytes))
            .map_err(|e| anyhow::anyhow!("{}: not a fuzzer input: {e}", path.display()))?
    };
    Ok(Input {
        origin: path.to_path_buf(),
        program,
        default_runs,
    })
}

/// Expands directories that are not bundles into their files, in name order.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() && !p.join("bundle.json").exists() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    !f.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

struct Group {
    inputs: Vec<PathBuf>,
    runs: u32,
    hits: u32,
    written: Option<(PathBuf, BundleContents)>,
}

pub fn repro(args: ReproArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = Vec::new();
    for path in expand(&args.paths)? {
        match decode(&path) {
            Ok(i) if i.program.has_test_only_ops() && !args.allow_test_ops => {
                eprintln!(
                    "skipping {}: test-only operations (pass --allow-test-ops)",
                    path.display()
                );
            }
            Ok(i) => inputs.push(i),
            Err(e) => eprintln!("skipping {e:#}"),
        }
    }
    if inputs.is_empty() {
        anyhow::bail!("no input could be decoded");
    }
    let ctx = Context::new()?;
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(args.kernel.as_deref(), &prepare_events(&pb))?;
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (dir, _tmp) = super::workdir(None)?;
    let mut opts = SessionOptions::new(dir, accel);
    opts.append = args.append.clone();
    let mut runner = Runner::new(prepared, opts);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut clean = 0usize;
    for (n, input) in inputs.iter().enumerate() {
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        let runs = args.runs.unwrap_or(input.default_runs);
        for run in 1..=runs {
            pb.set_message(format!(
                "input {}/{} run {run}/{runs}: {}",
                n + 1,
                inputs.len(),
                input.origin.display()
            ));
            let out = runner.run(&input.program, &mut |_| {})?;
            for sig in out.verdict.signatures() {
                *seen.entry(sig.to_string()).or_insert(0) += 1;
                let g = groups.entry(sig.to_string()).or_insert(Group {
                    inputs: Vec::new(),
                    runs: 0,
                    hits: 0,
                    written: None,
                });
                if g.written.is_none() {
                    // The first occurrence of a signature becomes its bundle, written at once so
                    // an interrupted repro keeps what it found.
                    let contents = runner.bundle_last_run(
                        &input.program,
                        &out,
                        Some(sig.to_string()),
                        HitCount { runs: 1, hits: 1 },
                    )?;
                    let dest = args.out.join(shmemfuzz::bundle::dir_name(sig));
                    Bundle::write_replacing(&dest, &contents)?;
                    g.written = Some((dest, contents));
                }
            }
        }
        if seen.is_empty() {
            clean += 1;
        }
        for (sig, hits) in seen {
            if let Some(g) = groups.get_mut(&sig) {
                g.inputs.push(input.origin.clone());
                g.runs += runs;
                g.hits += hits;
            }
        }
    }
    pb.finish_and_clear();
    runner.shutdown();
    // Each bundle gets its group's hit rate, so replay and minimize plan their runs from it.
    for g in groups.values() {
        if let Some((dest, contents)) = &g.written {
            let hits = HitCount {
                runs: g.runs,
                hits: g.hits,
            };
            Bundle::write_replacing(
                dest,
                &BundleContents {
                    hits,
                    ..contents.clone()
                },
            )?;
        }
    }
    println!(
        "{} inputs, {} clean, {} distinct findings on {}",
        inputs.len(),
        clean,
        groups.len(),
        runner.kernel().kernel.id
    );
    println!(
        "{:<44} {:>6} {:>9}  example input / bundle",
        "signature", "inputs", "repro"
    );
    for (sig, g) in &groups {
        println!(
            "{sig:<44} {:>6} {:>4}/{:<4}  {}\n{:<44} {:>6} {:>9}  {}",
            g.inputs.len(),
            g.hits,
            g.runs,
            g.inputs
                .first()
                .map_or(String::new(), |p| p.display().to_string()),
            "",
            "",
            "",
            g.written
                .as_ref()
                .map_or(String::new(), |(p, _)| p.display().to_string())
        );
    }
    Ok(if groups.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
