//! `shmemfuzz replay BUNDLE|PROGRAM [--kernel ID] [--repeat N]`: replay a recording on the
//! same or another kernel, diff every operation against it, and count how many runs reproduce
//! the recorded signature. A flaky bundle is repeated as often as its hit rate says it takes
//! to see the finding again (95%), stopping at the first finding (see `reproduce::repeat`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use shmemfuzz::bounded;
use shmemfuzz::bundle::{Bundle, BundleContents};
use shmemfuzz::context::Context;
use shmemfuzz::reproduce::{repeat, RepeatPlan, Repetition};
use shmemfuzz::runner::Runner;
use shmemfuzz::session::SessionOptions;
use shmemfuzz_core::minimize::runs_needed;
use shmemfuzz_core::program::{self, Program};

use super::progress::{prepare_events, spinner};
use super::repeat_out;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A bundle directory (from `run --bundle`, `repro` or `minimize`) or a program file.
    input: PathBuf,
    /// Kernel to replay on (default: the recording's kernel; a program defaults to the
    /// catalog's default).
    #[arg(long)]
    kernel: Option<String>,
    /// Replay on this kernel image instead (a bzImage from a build tree of yours; see
    /// --kernel-tree).
    #[arg(long, conflicts_with = "kernel")]
    kernel_image: Option<PathBuf>,
    /// The build directory of --kernel-image (default: the tree the image was built in):
    /// its .config, release and installed modules, and the mock driver is built against it.
    #[arg(long, conflicts_with = "kernel")]
    kernel_tree: Option<PathBuf>,
    /// Kernel command-line arguments (default: the recording's).
    #[arg(long)]
    append: Option<Vec<String>>,
    /// Boot without the recording's kernel arguments (e.g. to replay a planted-regression
    /// bundle on the same image with the switch off).
    #[arg(long, conflicts_with = "append")]
    no_append: bool,
    /// Run it up to N times (on the same guest while it survives), stopping at the first
    /// finding unless --keep-going. Default: 1, or for a bundle whose finding reproduced in
    /// only some runs, enough runs to see it again with 95% probability at its recorded hit
    /// rate (at most 64).
    #[arg(long, visible_alias = "runs", value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// Run all N runs, counting every signature (the guest is rebooted after a run whose
    /// kernel reported a bug).
    #[arg(long)]
    keep_going: bool,
    /// Accept the test-only operations (`corrupt`, `sysrq`).
    #[arg(long)]
    allow_test_ops: bool,
    /// Divergences printed per run.
    #[arg(long, default_value_t = 10)]
    show: usize,
}

/// The catalog or source-kernel id a recorded kernel id was built from.
pub(super) fn kernel_id_for(ctx: &Context, recorded: &str) -> String {
    ctx.catalog
        .source_of_built(recorded)
        .map_or_else(|| recorded.to_string(), |k| k.id.clone())
}

pub(super) fn load(input: &Path) -> anyhow::Result<(Program, Option<Bundle>)> {
    if input.is_dir() {
        let b = Bundle::read(input)?;
        return Ok((b.contents.program.clone(), Some(b)));
    }
    let text = bounded::read_text(input, bounded::PROGRAM_MAX)?;
    let p = program::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    Ok((p, None))
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (program, bundle) = load(&args.input)?;
    if program.has_test_only_ops() && !args.allow_test_ops {
        anyhow::bail!(
            "{} uses test-only operations (corrupt, sysrq): pass --allow-test-ops",
            args.input.display()
        );
    }
    let recorded = bundle.as_ref().map(|b| &b.contents);
    let ctx = Context::new()?;
    let kernel_id = args
        .kernel
        .clone()
        .or_else(|| recorded.map(|c| kernel_id_for(&ctx, &c.kernel.id)));
    let pb = spinner("preparing the kernel");
    let prepared = if args.kernel_image.is_some() || args.kernel_tree.is_some() {
        pb.set_message("building the mock GMA500 driver against the tree");
        ctx.prepare_tree(args.kernel_image.as_deref(), args.kernel_tree.as_deref())?
    } else {
        ctx.prepare(kernel_id.as_deref(), &prepare_events(&pb))?
    };
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (dir, _tmp) = super::workdir(None)?;
    let mut opts = SessionOptions::new(dir, accel);
    if let Some(c) = recorded {
        c.apply_to(&mut opts);
    }
    if let Some(append) = &args.append {
        opts.append = append.clone();
    }
    if args.no_append {
        opts.append.clear();
    }
    let target = recorded.and_then(|c| c.signature.clone());
    let kernel_name = prepared.kernel.id.clone();
    let plan = RepeatPlan {
        runs: args.repeat.unwrap_or_else(|| default_repeat(recorded)),
        keep_going: args.keep_going,
    };
    if let (None, Some(c)) = (args.repeat, recorded.filter(|_| plan.runs > 1)) {
        println!(
            "the recording's finding showed in {}/{} runs: repeating up to {} times",
            c.hits.hits, c.hits.runs, plan.runs
        );
    }
    let mut runner = Runner::new(prepared, opts);
    pb.set_message(format!("run 1/{} on {kernel_name}", plan.runs));
    let rep = repeat(&mut runner, &program, plan, &mut |runner, run, out| {
        pb.suspend(|| {
            repeat_out::print_run(run, plan, out, false);
            if let (Some(c), Some(last)) = (recorded, runner.last_guest()) {
                let divergences = c.diff(&out.records, &last.info.zones);
                match divergences.len() {
                    0 => {
                        println!("  same results, data and page states/zones as the recording")
                    }
                    n => {
                        println!("  {n} divergence(s) from the recording; first:");
                        for d in divergences.iter().take(args.show) {
                            println!("    {d}");
                        }
                    }
                }
            }
        });
        if run < plan.runs {
            pb.set_message(format!("run {}/{} on {kernel_name}", run + 1, plan.runs));
        }
    })?;
    pb.finish_and_clear();
    runner.shutdown();
    repeat_out::print_summary(&rep, plan, &kernel_name);
    let hits = target.as_deref().map_or(0, |t| rep.hit_count(t).hits);
    match &target {
        Some(t) => println!(
            "reproduced `{t}` in {hits}/{} runs on {kernel_name}",
            rep.runs
        ),
        None => println!(
            "{} run(s) on {kernel_name}; the recording had no finding",
            rep.runs
        ),
    }
    if hits == 0 && !rep.by_signature.is_empty() {
        println!("{} other finding(s): exit 1", rep.by_signature.len());
    }
    Ok(ExitCode::from(exit_status(&rep)))
}

/// 1 when any run had a finding (the recorded one or another; as `run` does), else 0.
fn exit_status(rep: &Repetition) -> u8 {
    u8::from(!rep.by_signature.is_empty())
}

/// Runs a replay needs by default: one, or for a flaky recorded finding enough to see it again
/// with 95% probability at the bundle's hit rate (`minimize::runs_needed`).
fn default_repeat(recorded: Option<&BundleContents>) -> u32 {
    match recorded {
        Some(c) if c.signature.is_some() => runs_needed(c.hits.rate()),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_replay_with_any_finding_exits_1_like_run() {
        let mut rep = Repetition::default();
        rep.count(&[], Duration::ZERO);
        assert_eq!(exit_status(&rep), 0, "clean");
        // A program (no recorded signature) whose run has a finding.
        rep.count(&[("zone:memfd:touch:Normal", "zone")], Duration::ZERO);
        assert_eq!(exit_status(&rep), 1, "a finding");
    }
}
