//! `shmemfuzz bisect --src DIR --good REV --bad REV --repro BUNDLE` (git revisions, built
//! from source) and `shmemfuzz bisect --debian FIRST..LAST --repro BUNDLE` (Debian kernel
//! packages). See docs/bisect.md.
//!
//! Exit status: 1 when a first bad revision (or a short list) was found, 0 when the bad end
//! does not reproduce (no regression in the range), 3 when stopped by `--max-steps` (run the
//! same command again to resume), 2 on errors and ranges that cannot be bisected.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use sha2::{Digest, Sha256};
use shmemfuzz::bisect::probe::{DebianKernels, GitKernels, Replayer};
use shmemfuzz::bisect::{
    bisect as run_bisection, debian_range, report_lines, step_line, BisectEvent, Key, Options,
    Outcome, Probe, Rev, State,
};
use shmemfuzz::bundle::Bundle;
use shmemfuzz::context::Context;
use shmemfuzz::kbuild::{default_jobs, fragments_hash, git};

use super::kernel_cmd::fragments;
use super::progress::{kbuild_events, spinner};

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The kernel git repository (git mode). Its checkout is not touched: revisions are
    /// built in a worktree of shmemfuzz's.
    #[arg(long, requires_all = ["good", "bad"], conflicts_with = "debian")]
    src: Option<PathBuf>,
    /// A revision that does not reproduce (git mode).
    #[arg(long, requires = "src")]
    good: Option<String>,
    /// A revision that reproduces (git mode).
    #[arg(long, requires = "src")]
    bad: Option<String>,
    /// Only commits touching this path (repeatable), e.g. mm/.
    #[arg(long = "path", requires = "src")]
    paths: Vec<String>,
    /// Config fragments after kernels/configs/base.config (git mode; repeatable).
    #[arg(long = "config", value_name = "FRAGMENT", requires = "src")]
    configs: Vec<PathBuf>,
    /// Debian kernel versions FIRST..LAST from the catalog, e.g. 6.1.0-53..6.1.0-56.
    #[arg(long, required_unless_present = "src")]
    debian: Option<String>,
    /// The reproducer: a bundle (from `run --bundle`, `repro` or `minimize`).
    #[arg(long)]
    repro: PathBuf,
    /// Replays per step: a step is bad if any replay shows the signature.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,
    /// Boot without the bundle's kernel arguments.
    #[arg(long)]
    no_append: bool,
    /// Where the state and the log go (default: a directory per bisection under the cache);
    /// the same command with the same work directory resumes.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Throw away a saved state of this work directory and start over.
    #[arg(long)]
    restart: bool,
    /// Test every revision instead of bisecting: a full picture of a short range (a Debian
    /// line has a handful of versions), and a regression that came and went shows.
    #[arg(long)]
    every: bool,
    /// Stop after this many steps (resumable).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_steps: Option<u32>,
    /// make -j (git mode; default: CPUs + 1).
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
}

pub fn bisect(args: BisectArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let ctx = Context::new()?;
    let bundle = Bundle::read(&args.repro)?.contents;
    let Some(signature) = bundle.signature.clone() else {
        anyhow::bail!(
            "{}: the bundle records no finding, so there is nothing to bisect: record one that \
             reproduces on the bad kernel (`shmemfuzz run PROG --kernel … --bundle B`)",
            args.repro.display()
        );
    };
    let mut h = Sha256::new();
    h.update(bundle.program.to_string().as_bytes());
    h.update(format!("\nsignature {signature}\n").as_bytes());
    if !args.no_append {
        h.update(format!("append {:?}\n", bundle.append).as_bytes());
    }
    let repro_sha256 = hex::encode(h.finalize());
    let recorded = (bundle.hits.runs, bundle.hits.hits);
    let fragments = fragments(&ctx, &args.configs);

    let (key, revs) = match (&args.src, &args.debian) {
        (Some(src), _) => {
            let src = src
                .canonicalize()
                .with_context(|| format!("kernel repository {}", src.display()))?;
            let (good, bad) = (
                args.good.clone().unwrap_or_default(),
                args.bad.clone().unwrap_or_default(),
            );
            let (g, b) = (git::commit(&src, &good)?, git::commit(&src, &bad)?);
            let mut revs = vec![Rev {
                rev: g.clone(),
                label: git::subject(&src, &g)?,
            }];
            revs.extend(
                git::range(&src, &g, &b, &args.paths)?
                    .into_iter()
                    .map(|(rev, label)| Rev { rev, label }),
            );
            if revs.last().map(|r| &r.rev) != Some(&b) {
                // The bad end itself does not touch the paths: still the bad end.
                revs.push(Rev {
                    rev: b.clone(),
                    label: git::subject(&src, &b)?,
                });
            }
            let key = Key {
                mode: "git".into(),
                source: src.display().to_string(),
                good: g,
                bad: b,
                paths: args.paths.clone(),
                repro_sha256,
                runs: args.runs,
                config: format!(
                    "{}{}",
                    fragments_hash(&fragments)?,
                    if args.every { " every" } else { "" }
                ),
            };
            (key, revs)
        }
        (None, Some(range)) => {
            let revs = debian_range(&ctx.catalog, range)?;
            let key = Key {
                mode: "debian".into(),
                source: "debian".into(),
                good: revs.first().map(|r| r.rev.clone()).unwrap_or_default(),
                bad: revs.last().map(|r| r.rev.clone()).unwrap_or_default(),
                paths: vec![],
                repro_sha256,
                runs: args.runs,
                config: if args.every {
                    "every".into()
                } else {
                    String::new()
                },
            };
            (key, revs)
        }
        (None, None) => anyhow::bail!("give --src with --good and --bad, or --debian FIRST..LAST"),
    };
    let workdir = args.workdir.clone().unwrap_or_else(|| {
        let id = hex::encode(Sha256::digest(format!("{key:?}").as_bytes()));
        ctx.cache_dir.join("bisect").join(&id[..12])
    });
    // Absolute: QEMU's sockets and make's paths live under it, and they run elsewhere.
    std::fs::create_dir_all(&workdir)
        .with_context(|| format!("creating the work directory {}", workdir.display()))?;
    let workdir = workdir.canonicalize()?;
    let mut state = State::open(&workdir, key.clone(), revs, args.restart)?;
    let n = state.revs().len();
    println!(
        "bisecting {} revisions ({} .. {}) for `{signature}` with {} replays a step",
        n,
        short(&key.good),
        short(&key.bad),
        args.runs
    );
    println!(
        "work directory {} (state.json, bisect.log)",
        workdir.display()
    );
    if state.resumed_steps > 0 {
        println!("resuming: {} step(s) already done", state.resumed_steps);
    }
    state.log(&format!(
        "== bisect {} {}..{} paths {:?}, reproducer {} (`{signature}`), {} runs a step, {} revisions{}",
        key.mode,
        key.good,
        key.bad,
        key.paths,
        args.repro.display(),
        args.runs,
        n,
        if state.resumed_steps > 0 { format!(", resuming after {} step(s)", state.resumed_steps) } else { String::new() }
    ));

    let pb = spinner("starting");
    let on_build = kbuild_events(&pb);
    let mut replayer = Replayer::new(bundle, &workdir);
    replayer.keep_append = !args.no_append;
    let mut git_probe;
    let mut deb_probe;
    let probe: &mut dyn Probe = match &args.src {
        Some(src) => {
            git_probe = GitKernels {
                ctx: &ctx,
                repo: src.canonicalize()?,
                fragments,
                jobs: args.jobs.unwrap_or_else(default_jobs),
                timeout: Duration::from_secs(3600),
                replayer,
                progress: &on_build,
            };
            &mut git_probe
        }
        None => {
            deb_probe = DebianKernels {
                ctx: &ctx,
                replayer,
            };
            &mut deb_probe
        }
    };
    let opts = Options {
        max_steps: args.max_steps.map(|m| m as usize),
        every: args.every,
        ..Options::new(args.runs, recorded)
    };
    let report = run_bisection(probe, &mut state, &opts, &mut |ev| match ev {
        BisectEvent::Testing {
            rev, label, step, ..
        } => {
            pb.suspend(|| println!("step {step}: {} {label}", short(rev)));
        }
        BisectEvent::Building { rev } => pb.set_message(format!("building {}", short(rev))),
        BisectEvent::Replaying { rev, runs } => {
            pb.set_message(format!("replaying {runs} times on {}", short(rev)));
        }
        BisectEvent::Stepped(s) => pb.suspend(|| println!("{}", step_line(s))),
    })?;
    pb.finish_and_clear();
    for line in report_lines(&state, &report) {
        println!("{line}");
    }
    let secs = started.elapsed().as_secs_f64();
    state.log(&format!(
        "wall time of this run {secs:.0} s ({} new step(s))",
        report.new_steps
    ));
    println!(
        "wall time {secs:.0} s, {} new step(s); log: {}",
        report.new_steps,
        workdir.join("bisect.log").display()
    );
    Ok(match &report.outcome {
        None => ExitCode::from(3),
        Some(Outcome::FirstBad { .. } | Outcome::OneOf { .. }) => ExitCode::from(1),
        Some(Outcome::BadEndGood { .. }) => ExitCode::SUCCESS,
        Some(Outcome::GoodEndBad { .. } | Outcome::EndSkipped { .. }) => ExitCode::from(2),
    })
}

/// A commit id cut to 12 characters; other names as they are.
fn short(rev: &str) -> &str {
    if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        &rev[..12]
    } else {
        rev
    }
}
