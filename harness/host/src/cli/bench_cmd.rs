//! `shmemfuzz bench boot`: prints cold boot figures and their ratio.

use std::process::ExitCode;

use shmemfuzz::bench::{self, median};
use shmemfuzz::context::Context;

use super::progress::{prepare_events, spinner};

pub fn boot(kernel: Option<&str>, runs: u32, smp: u32) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    let pb = spinner("fetching the kernel");
    let prepared = ctx.prepare(kernel, &prepare_events(&pb))?;
    let k = prepared.kernel;
    let accel = ctx.accel(&k.bzimage)?;
    let (dir, _keep) = super::workdir(None)?;
    pb.set_message(format!(
        "booting {} ({accel}, -smp {smp}) {runs}x each way",
        k.release
    ));
    let figs = bench::boot(
        &k,
        std::slice::from_ref(&prepared.mock_module),
        accel,
        smp,
        runs,
        &dir,
        &|what, ms| pb.println(format!("  {what:<5} {ms:>6} ms")),
    )?;
    pb.finish_and_clear();
    println!("kernel          {} ({})", k.id, k.release);
    println!("accelerator     {accel}, -smp {smp}, {runs} runs each; ready includes loading drm and the mock driver");
    println!(
        "floor (init powers off at once)   median {:>6} ms  {:?}",
        median(&figs.floor_ms),
        figs.floor_ms
    );
    println!(
        "boot to agent ready               median {:>6} ms  {:?}",
        median(&figs.ready_ms),
        figs.ready_ms
    );
    println!("ratio ready/floor                 {:.2}", figs.ratio());
    Ok(ExitCode::SUCCESS)
}
