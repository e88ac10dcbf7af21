//! `shmemfuzz minimize BUNDLE`: shrink a bundle's program to one that reproduces the same
//! signature (delta debugging over operations, then argument simplification), flaky-aware,
//! within a budget, and write the result as a new bundle.
//!
//! Interrupted (Ctrl-C, SIGTERM), it writes nothing: candidates cut short read as harness
//! errors, which end the minimizer at once, and the result is not recorded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use shmemfuzz::bundle::{Bundle, HitCount};
use shmemfuzz::context::Context;
use shmemfuzz::runner::Runner;
use shmemfuzz::session::SessionOptions;
use shmemfuzz_core::minimize::{self, Budget, Options, Outcome};

use super::progress::{prepare_events, spinner};
use super::replay_cmd::kernel_id_for;

/// How many runs the minimized program gets to reproduce before it is recorded, at least.
const RECORD_TRIES: u32 = 8;

#[derive(Debug, Args)]
pub struct MinimizeArgs {
    /// The bundle to minimize (it must carry a finding's signature).
    bundle: PathBuf,
    /// Where to write the minimized bundle (default: `<bundle>.min`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop after this many candidate evaluations.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1000000))]
    max_runs: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=2592000))]
    max_time: u64,
    /// The reproduction rate to plan for (default: the bundle's hits/runs); a candidate is
    /// rejected only after enough misses that a 5% chance remains it was unlucky.
    #[arg(long, value_parser = super::limits::rate)]
    hit_rate: Option<f64>,
}

pub fn minimize(args: MinimizeArgs) -> anyhow::Result<ExitCode> {
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.bundle.with_extension("min"));
    // Before the minimization, not after it: the result never goes into (or over) the input.
    shmemfuzz::outfile::check_not_input(&out_dir, &[&args.bundle])?;
    let bundle = Bundle::read(&args.bundle)?;
    let c = &bundle.contents;
    let Some(target) = c.signature.clone() else {
        anyhow::bail!(
            "{} records no finding: there is nothing to minimize toward",
            args.bundle.display()
        );
    };
    let hit_rate = args
        .hit_rate
        .unwrap_or(f64::from(c.hits.hits) / f64::from(c.hits.runs.max(1)));
    let ctx = Context::new()?;
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(
        Some(&kernel_id_for(&ctx, &c.kernel.id)),
        &prepare_events(&pb),
    )?;
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (dir, _tmp) = super::workdir(None)?;
    let mut opts = SessionOptions::new(dir, accel);
    c.apply_to(&mut opts);
    let mut runner = Runner::new(prepared, opts);
    let options = Options {
        hit_rate,
        swap_devices: c.swap_devices,
        ..Options::default()
    };
    let per_candidate = options.runs_needed();
    let budget = Budget {
        max_runs: Some(args.max_runs),
        max_time: Some(Duration::from_secs(args.max_time)),
        ..Budget::default()
    };
    let started = Instant::now();
    let mut oracle = |candidate: &shmemfuzz_core::program::Program| {
        minimize::reproduce_within(per_candidate, || match runner.run(candidate, &mut |_| {}) {
            Ok(out) => Outcome::judge(&target, &out.verdict.signatures()),
            Err(e) => Outcome::Error(shmemfuzz::error_chain(&e)),
        })
    };
    let result = minimize::minimize(&c.program, &options, &mut oracle, &budget, &mut |p| {
        pb.set_message(format!(
            "{:?}: {} of {} ops, {} runs, {:.0?}",
            p.phase, p.ops, p.input_ops, p.runs, p.elapsed
        ));
    });
    // Candidates cut short by an interruption looked like harness errors: the result is not
    // the minimum, and is not recorded.
    shmemfuzz::interrupt::check()?;
    pb.set_message("recording the minimized program");
    // One more run of the result, recorded as the new bundle. Candidates are accepted on
    // their first reproduction, so a flaky reduction can be accepted on a lucky run even
    // when the input reproduced every time: the recording gets more tries than a candidate.
    let record_tries = per_candidate.max(RECORD_TRIES);
    let mut recorded = None;
    let mut tries = 0;
    while tries < record_tries && recorded.is_none() {
        tries += 1;
        let out = runner.run(&result.program, &mut |_| {})?;
        if out.verdict.signatures().contains(&target.as_str()) {
            recorded = Some(out);
        }
    }
    pb.finish_and_clear();
    println!(
        "{} -> {} ops in {:.1?} ({} candidate evaluations, {} guest boots, {} restores), \
         stopped: {:?}",
        c.program.ops.len(),
        result.program.ops.len(),
        started.elapsed(),
        result.runs,
        runner.boots(),
        runner.restores(),
        result.stopped
    );
    if !result.other_signatures.is_empty() {
        println!(
            "other signatures seen on the way (not accepted): {}",
            result.other_signatures.join(", ")
        );
    }
    let Some(out) = recorded else {
        println!("{}", result.program);
        anyhow::bail!(
            "the minimized program (above) did not reproduce `{target}` in {tries} recording \
             runs; nothing written (retry, or pass --hit-rate below the bundle's to test \
             each candidate more often)"
        );
    };
    if tries > 1 {
        println!("recorded on try {tries} of {record_tries}: the minimized program is flaky");
    }
    let hits = HitCount {
        runs: c.hits.runs,
        hits: c.hits.hits,
    };
    let contents = runner.bundle_last_run(&result.program, &out, Some(target.clone()), hits)?;
    Bundle::write(&out_dir, &contents)?;
    println!("{}", result.program);
    println!("bundle: {}", out_dir.display());
    runner.shutdown();
    Ok(ExitCode::SUCCESS)
}
