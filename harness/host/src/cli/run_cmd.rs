//! `shmemfuzz run PROGRAM [--kernel ID] [--trace FILE] [--repeat N]`: boot, run, print,
//! judge; with `--repeat`, run a racy program up to N times in one VM and count what it hits
//! (see `reproduce::repeat`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use shmemfuzz::bundle::{Bundle, BundleContents, HitCount};
use shmemfuzz::context::{Context, PreparedKernel};
use shmemfuzz::reproduce::{repeat, RepeatPlan};
use shmemfuzz::runner::Runner;
use shmemfuzz::session::{Session, SessionOptions};
use shmemfuzz::trace::Trace;
use shmemfuzz_core::oracle::Model;
use shmemfuzz_core::program::{self, Program};

use super::progress::{prepare_events, spinner};
use super::repeat_out::{self, FirstFindingBundle};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program file (see docs/program-format.md).
    program: PathBuf,
    /// Catalog id of the kernel (default: the catalog's default): a Debian build
    /// (`debian-6.1`, `debian-6.12`), a `[[source]]` entry built from Debian's linux-source
    /// with kernels/configs and kernels/regressions (`src-6.1`, `src-6.1-kasan`, `src-6.12`,
    /// `src-6.12-kasan`), or a `tree-…` id from `kernel build` (`kernel list` shows them all).
    #[arg(long)]
    kernel: Option<String>,
    /// Record the run as a bundle in this (new) directory: program, records, trace, console,
    /// kernel identity and VM settings; `shmemfuzz replay DIR` replays it.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Write the execution trace (JSON) here (replacing an older one; never the program).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Accept the test-only operations (`corrupt`, `sysrq`).
    #[arg(long)]
    allow_test_ops: bool,
    /// Seconds one operation may take before the guest is declared hung.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    op_timeout: u64,
    /// Keep the VM's files (console.log, images) here instead of a temporary directory.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Extra kernel command-line arguments (repeatable), e.g. a planted regression's switch
    /// `shmem.planted_no_replace=1` on `--kernel src-6.1`.
    #[arg(long)]
    append: Vec<String>,
    /// vCPUs for the guest.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    smp: u32,
    /// Run the program up to N times in one VM (a racy program needs many runs to hit its
    /// window): one line per run, then how many runs hit which signature and when the first
    /// did. Stops at the first finding unless --keep-going; --bundle records the first
    /// finding with the hit count.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// With --repeat: run all N runs, counting every signature (the guest is rebooted after a
    /// run whose kernel reported a bug, so each run starts from a sound kernel).
    #[arg(long, requires = "repeat")]
    keep_going: bool,
    /// The guest topology: `flat` (1 GiB DMA32 + 1 GiB Normal), `blocks` (128 MiB memory
    /// blocks that can be offlined), `numa` (node 1 entirely above 4 GiB), `hugetlb` (room
    /// for a 1 GiB page only in DMA32). See docs/zone-oracle.md.
    #[arg(long, value_enum, default_value = "flat")]
    topology: shmemfuzz::vm::Topology,
    /// Known findings (e.g. kernels/known/6.1.toml): shown as known, and a run whose
    /// findings are all known exits 0.
    #[arg(long)]
    known: Option<std::path::PathBuf>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let text = shmemfuzz::bounded::read_text(&args.program, shmemfuzz::bounded::PROGRAM_MAX)?;
    let program =
        program::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.program.display()))?;
    if program.has_test_only_ops() && !args.allow_test_ops {
        anyhow::bail!(
            "{} uses test-only operations (corrupt, sysrq): pass --allow-test-ops",
            args.program.display()
        );
    }
    if let Some(trace) = &args.trace {
        // Before booting: the trace never replaces the program (an older trace it may).
        shmemfuzz::outfile::check(trace, &[&args.program], true)?;
    }
    let ctx = Context::new()?;
    let pb = spinner("fetching the kernel");
    let prepared = ctx.prepare(args.kernel.as_deref(), &prepare_events(&pb))?;
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (dir, _tmp) = super::workdir(args.workdir.clone())?;
    let mut opts = SessionOptions::new(dir.clone(), accel);
    opts.op_timeout = Duration::from_secs(args.op_timeout);
    opts.smp = args.smp;
    opts.append = args.append.clone();
    opts.memory = args.topology.layout();
    let known = args
        .known
        .as_deref()
        .map(shmemfuzz::known::KnownFindings::load)
        .transpose()?
        .unwrap_or_default();
    if args.repeat > 1 || args.keep_going {
        pb.finish_and_clear();
        return run_repeated(&args, &program, prepared, opts);
    }
    let (kernel, module) = (prepared.kernel, prepared.mock_module);
    opts.modules = vec![module];
    pb.set_message(format!("booting {} under {accel}", kernel.release));
    let mut session = Session::boot(&kernel, &opts)?;
    pb.finish_and_clear();
    println!(
        "kernel {} ({}), ready in {} ms, zones: {}",
        kernel.id,
        session.info.release,
        session.info.ready_after_ms,
        zones(&session)
    );
    let outcome = run_printing(&mut session, &program)?;
    if let Some(path) = &args.trace {
        let trace = Trace::new(
            &kernel.id,
            &session.info,
            session.command_line(),
            &program,
            &outcome,
        );
        let json = serde_json::to_string_pretty(&trace)?;
        shmemfuzz::outfile::write_atomic(path, json.as_bytes())?;
    }
    let console = session.console_path().to_path_buf();
    let (info, qemu) = (session.info.clone(), session.command_line());
    session.shutdown();
    if let Some(dir) = &args.bundle {
        let contents =
            BundleContents::from_run(&program, &outcome, &kernel, &info, qemu, &console, &opts)?;
        Bundle::write(dir, &contents)?;
        println!(
            "bundle: {} (replay with `shmemfuzz replay {}`)",
            dir.display(),
            dir.display()
        );
    }
    if !outcome.coverage.is_empty() {
        let funcs: Vec<String> = outcome
            .coverage
            .iter()
            .map(|c| format!("{} {}", c.func, c.hits))
            .collect();
        println!(
            "kernel coverage ({} probed functions ran): {}",
            funcs.len(),
            funcs.join(", ")
        );
    }
    if let Some(pcs) = &outcome.kcov {
        let mm = kernel
            .config
            .parent()
            .and_then(|d| shmemfuzz::feedback::MmText::from_build_dir(d).ok());
        let in_mm = mm.map_or_else(
            || "mm/ unknown without the build tree".to_string(),
            |t| format!("{} in mm/", pcs.iter().filter(|p| t.contains(p.pc)).count()),
        );
        println!("KCOV: {} basic blocks ran ({in_mm})", pcs.len());
    }
    if !outcome.verdict.replaced.is_empty() {
        let r: Vec<String> = outcome
            .verdict
            .replaced
            .iter()
            .map(|(k, n)| format!("{n} after {k}"))
            .collect();
        println!("DMA32 pages back from swap at a new PFN: {}", r.join(", "));
    }
    if outcome.verdict.is_clean() {
        println!(
            "verdict: clean ({} ops, {} ms)",
            outcome.records.len(),
            outcome.wall_ms
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("verdict: {} finding(s)", outcome.verdict.findings.len());
    let (known_findings, unknown) = known.split(&outcome.verdict.findings);
    for f in &outcome.verdict.findings {
        let why = known
            .matching(&f.signature)
            .map(|k| format!("\n    known: {}", k.why))
            .unwrap_or_default();
        println!(
            "  [{}] {}\n    signature: {}{why}",
            f.kind.tag(),
            f.title,
            f.signature
        );
        for line in f.detail.lines().take(40) {
            println!("    | {line}");
        }
    }
    if args.workdir.is_some() {
        println!("console log: {}", console.display());
    }
    if unknown.is_empty() {
        println!(
            "all {} finding(s) are known ({}): exit 0",
            known_findings.len(),
            args.known
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string())
        );
        return Ok(ExitCode::SUCCESS);
    }
    Ok(ExitCode::from(1))
}

/// `--repeat N`: the runs on one [`Runner`] (rebooted when a guest dies), a line each.
fn run_repeated(
    args: &RunArgs,
    program: &Program,
    prepared: PreparedKernel,
    opts: SessionOptions,
) -> anyhow::Result<ExitCode> {
    let kernel_name = prepared.kernel.id.clone();
    let plan = RepeatPlan {
        runs: args.repeat,
        keep_going: args.keep_going,
    };
    let mut runner = Runner::new(prepared, opts);
    let pb = spinner(format!("run 1/{} on {kernel_name}", plan.runs));
    let mut bundle = FirstFindingBundle::new(args.bundle.as_deref());
    let mut bundle_error = None;
    let rep = repeat(&mut runner, program, plan, &mut |runner, run, out| {
        pb.suspend(|| repeat_out::print_run(run, plan, out, true));
        let so_far = HitCount { runs: run, hits: 1 };
        if let Err(e) = bundle.after_run(runner, program, out, so_far, &pb) {
            bundle_error.get_or_insert(e);
        }
        pb.set_message(format!("run {}/{} on {kernel_name}", run + 1, plan.runs));
    })?;
    pb.finish_and_clear();
    runner.shutdown();
    if let Some(e) = bundle_error {
        return Err(e.context("recording the first finding"));
    }
    repeat_out::print_summary(&rep, plan, &kernel_name);
    if let Some(dir) = bundle.finish(&rep)? {
        println!(
            "bundle: {} (replay with `shmemfuzz replay {}`)",
            dir.display(),
            dir.display()
        );
        if rep.stopped_early {
            println!(
                "  its hit rate, 1 in {} run(s), comes from stopping at the first hit and \
                 overstates a rare race: --keep-going measures it for replay and minimize",
                rep.runs
            );
        }
    }
    if args.workdir.is_some() && !rep.by_signature.is_empty() {
        println!(
            "console logs: {}/boot*/console.log",
            args.workdir.as_deref().unwrap_or(Path::new(".")).display()
        );
    }
    Ok(if rep.by_signature.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn zones(s: &Session) -> String {
    let z: Vec<String> = s
        .info
        .zones
        .iter()
        .filter(|z| z.present > 0)
        .map(|z| format!("{} {} MiB", z.name, z.present * 4 / 1024))
        .collect();
    z.join(", ")
}

fn run_printing(
    session: &mut Session,
    program: &Program,
) -> anyhow::Result<shmemfuzz::session::RunOutcome> {
    let mut model = Model::new(
        (0..session.info.swap_devices.len())
            .map(|i| i == 0)
            .collect(),
    );
    let mut print = |rec: &shmemfuzz_core::protocol::OpRecord| {
        let Some(op) = program.ops.get(rec.index as usize) else {
            return;
        };
        let expect = model.apply(op);
        model.observe(op, &rec.result);
        let mark = if expect.allows(&rec.result) && rec.data.as_ref().is_none_or(|d| d.is_clean()) {
            " "
        } else {
            "!"
        };
        let data = match &rec.data {
            Some(d) if d.is_clean() => format!(", {} bytes match", d.read_len),
            Some(d) => format!(", {} bytes DIFFER", d.mismatched_bytes),
            None => String::new(),
        };
        println!(
            "{mark}{:>4} {:<48} {}{data} ({} us, swap {} KiB)",
            rec.index,
            op.to_string(),
            rec.result,
            rec.micros,
            rec.swap_used_kib
        );
    };
    Ok(session.run(program, &mut print)?)
}
