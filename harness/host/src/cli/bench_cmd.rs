//! `shmemfuzz bench boot|exec|find|recover`: cold boot figures, executions per second beside
//! the C floor (with their ratios), the time from a cold start to the first zone finding,
//! and restore-from-snapshot beside cold boot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use shmemfuzz::bench::{self, median};
use shmemfuzz::fuzzing::sigpattern::SignaturePattern;
use shmemfuzz::kernels::context::Context;

use super::progress::{prepare_events, spinner};

pub fn boot(
    kernel: Option<&str>,
    runs: u32,
    smp: u32,
    append: &[String],
) -> anyhow::Result<ExitCode> {
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
        &bench::BootPlan {
            accel,
            smp,
            runs,
            append: append.to_vec(),
        },
        &dir,
        &|what, ms| pb.println(format!("  {what:<5} {ms:>6} ms")),
    )?;
    pb.finish_and_clear();
    println!("kernel          {} ({})", k.id, k.release);
    println!("accelerator     {accel}, -smp {smp}, {runs} runs each; ready includes loading drm and the mock driver");
    if !append.is_empty() {
        println!("kernel args     {}", append.join(" "));
    }
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
    println!(
        "  of which the guest's uptime     median {:>6} ms  {:?}",
        median(&figs.uptime_ms),
        figs.uptime_ms
    );
    println!("ratio ready/floor                 {:.2}", figs.ratio());
    Ok(ExitCode::SUCCESS)
}

pub fn exec(
    kernel: Option<&str>,
    program: Option<PathBuf>,
    rounds: u32,
    runs: u32,
    smp: u32,
    append: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    let path = match program {
        Some(p) => p,
        None => ctx.data_dir()?.join("examples/bench-reference.prog"),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let prog = shmemfuzz_core::program::parse(&text)
        .map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(kernel, &prepare_events(&pb))?;
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (dir, _keep) = super::workdir(None)?;
    pb.set_message(format!(
        "{} rounds of {runs} executions each way on {}",
        rounds, prepared.kernel.release
    ));
    let mut opts = shmemfuzz::session::SessionOptions::new(dir, accel);
    opts.smp = smp;
    opts.append.extend(append.iter().cloned());
    let figs = shmemfuzz::bench::exec::run(&prepared, &prog, opts, rounds, runs, &|what, rate| {
        pb.println(format!("  {what:<8} {rate:>6.2} executions/s"))
    })?;
    pb.finish_and_clear();
    println!(
        "kernel          {} ({})",
        prepared.kernel.id, prepared.kernel.release
    );
    println!(
        "program         {} ({} operations); {accel}, -smp {smp}; {rounds} rounds x {runs} runs each way",
        path.display(),
        prog.ops.len()
    );
    if !append.is_empty() {
        println!("kernel args     {}", append.join(" "));
    }
    println!(
        "harness (run + oracle, as one fuzzer execution)  {:>7.2} executions/s",
        figs.harness_per_sec()
    );
    println!(
        "floor (static C export, same syscalls and checks) {:>6.2} executions/s",
        figs.floor_per_sec()
    );
    println!(
        "ratio harness/floor                               {:>6.2}",
        figs.ratio()
    );
    println!("one harness execution, on average:");
    for (phase, ms) in &figs.breakdown {
        println!("  {phase:<44} {ms:>8.1} ms");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `bench find` measures.
pub struct FindPlan {
    pub runs: u32,
    pub limit: std::time::Duration,
    pub seeds: Option<PathBuf>,
    pub corpus: String,
    pub signature: SignaturePattern,
    pub smp: u32,
}

pub fn find(kernel: &str, append: Vec<String>, plan: FindPlan) -> anyhow::Result<ExitCode> {
    let FindPlan {
        runs,
        limit,
        seeds,
        corpus,
        signature,
        smp,
    } = plan;
    use shmemfuzz::fuzzing::campaign::CampaignOptions;
    use shmemfuzz::fuzzing::findbench::{median_secs, time_to_first, FindRun};
    let ctx = Context::new()?;
    let tree = ctx.tree(
        "building the fuzz target and the seeds (fuzz/corpus/shmem_ops)",
        "run `bench find` from a shmemfuzz checkout",
    )?;
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(Some(kernel), &prepare_events(&pb))?;
    pb.finish_and_clear();
    let binary = shmemfuzz::fuzzing::build::build_target(tree)?;
    let seeds = seeds.unwrap_or_else(|| tree.join("fuzz/corpus/shmem_ops"));
    let template = CampaignOptions {
        binary,
        // The id as given: a built kernel's resolved id (src-6.1-<hash>) is not an id
        // the workers' Context::prepare knows.
        kernel: Some(kernel.to_string()),
        append: append.clone(),
        jobs: 1,
        duration: limit,
        corpus: PathBuf::new(),
        seeds: Vec::new(),
        out: PathBuf::new(),
        stop_on: Some(signature.clone()),
        known: None,
        topology: None,
        smp,
    };
    let modes: Vec<bool> = match corpus.as_str() {
        "empty" => vec![false],
        "seeded" => vec![true],
        _ => vec![false, true],
    };
    let mut all: Vec<FindRun> = Vec::new();
    for seeded in modes.iter().copied() {
        for i in 1..=runs {
            let pb = spinner(format!(
                "{} corpus, campaign {i}/{runs} (limit {})",
                if seeded { "seed" } else { "empty" },
                humantime::format_duration(limit)
            ));
            let r = time_to_first(&template, seeded.then(|| seeds.clone()), limit, &signature)?;
            pb.finish_and_clear();
            println!(
                "  {} corpus, run {i}: {} ({} executions{})",
                if seeded { "seed " } else { "empty" },
                r.secs.map_or_else(
                    || format!("no `{signature}` finding within the limit"),
                    |s| format!("first `{signature}` finding after {s:.0} s")
                ),
                r.execs,
                r.signature.as_ref().map_or(String::new(), |s| format!(
                    ", {} {s}{}",
                    if r.secs.is_some() {
                        "it is"
                    } else {
                        "first finding"
                    },
                    r.title.as_ref().map_or(String::new(), |t| format!(": {t}"))
                ))
            );
            for (sig, secs) in r.found.iter().filter(|(s, _)| !signature.matches(s)) {
                println!(
                    "      also found (not matching, did not stop it): {sig} after {secs:.0} s"
                );
            }
            all.push(r);
        }
    }
    println!(
        "kernel {} [{}], one worker, TCG; time from campaign start (VM boot included)",
        prepared.kernel.id,
        append.join(" ")
    );
    for seeded in modes {
        let runs: Vec<&FindRun> = all.iter().filter(|r| r.seeded == seeded).collect();
        println!(
            "median time to the first `{signature}` finding, {} corpus: {:.0} s ({} of {} runs found one)",
            if seeded { "seed" } else { "empty" },
            median_secs(&runs, limit),
            runs.iter().filter(|r| r.secs.is_some()).count(),
            runs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench recover`: cold boot vs restore from a snapshot, per kernel, in one run.
pub fn recover(kernels: &[String], runs: u32, smp: u32) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    let check_path = ctx.data_dir()?.join("examples/pageout-roundtrip.prog");
    let check = shmemfuzz_core::program::parse(
        &std::fs::read_to_string(&check_path)
            .with_context(|| format!("reading {}", check_path.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{}:{e}", check_path.display()))?;
    // `sysrq c` panics the kernel: the run ends in a kernel report, as a finding does.
    let crash = shmemfuzz_core::program::parse("memfd m0 size=4K\nsysrq c\n")
        .map_err(|e| anyhow::anyhow!("the crash program: {e}"))?;
    let (dir, _keep) = super::workdir(None)?;
    let mut rows = Vec::new();
    let mut accels = Vec::new();
    for spec in kernels {
        let (id, append) = match spec.split_once(':') {
            Some((id, args)) => (id, args.split(',').map(str::to_string).collect()),
            None => (spec.as_str(), Vec::new()),
        };
        let pb = spinner(format!("preparing {id}"));
        let prepared = ctx.prepare(Some(id), &prepare_events(&pb))?;
        let accel = ctx.accel(&prepared.kernel.bzimage)?;
        accels.push(accel.to_string());
        let mut opts = shmemfuzz::session::SessionOptions::new(dir.join(id), accel);
        opts.smp = smp;
        opts.append = append;
        opts.modules.push(prepared.mock_module.clone());
        pb.set_message(format!("{id}: {runs} cold boots, then {runs} restores"));
        let figs = bench::recover(
            &prepared.kernel,
            &opts,
            runs,
            &check,
            &crash,
            &|what, ms| pb.println(format!("  {id:<16} {what:<8} {ms:>6} ms")),
        )?;
        pb.finish_and_clear();
        rows.push((spec.clone(), figs));
    }
    accels.dedup();
    println!(
        "accelerator {}, -smp {smp}; {runs} cold boots and {runs} restores per kernel; \
         each restore follows a run the kernel panicked in",
        accels.join("/")
    );
    println!(
        "{:<32} {:>12} {:>14} {:>14} {:>9}",
        "kernel", "cold boot ms", "save ms (MB)", "restore ms", "restore/cold"
    );
    for (spec, f) in &rows {
        println!(
            "{:<32} {:>12} {:>14} {:>14} {:>9.3}",
            spec,
            median(&f.cold_ms),
            format!("{} ({})", f.save_ms, f.snapshot_bytes >> 20),
            median(&f.restore_ms),
            f.ratio()
        );
        println!(
            "{:<32} cold {:?}, restore {:?}",
            "", f.cold_ms, f.restore_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bench corpus`: a fixed corpus through one worker (or, with `generate`, writing one).
pub fn corpus(
    kernel: Option<&str>,
    dir: Option<PathBuf>,
    rounds: u32,
    generate: Option<usize>,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    use shmemfuzz::bench::corpus;
    let ctx = Context::new()?;
    let dir = match dir {
        Some(d) => d,
        None => ctx
            .tree(
                "the benchmark corpus (bench/corpus)",
                "give the corpus directory",
            )?
            .join("bench/corpus"),
    };
    if let Some(count) = generate {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let programs = corpus::generate(seed, count);
        for (i, p) in programs.iter().enumerate() {
            let path = dir.join(format!("{i:03}.prog"));
            let text = format!(
                "# bench corpus: program {i} of `shmemfuzz bench corpus --generate {count} --seed {seed}`\n{p}"
            );
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let kinds = corpus::kinds(&programs);
        println!(
            "{} programs in {}, {} operation kinds: {}",
            programs.len(),
            dir.display(),
            kinds.len(),
            kinds.into_iter().collect::<Vec<_>>().join(" ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let corpus = corpus::read_corpus(&dir)?;
    let pb = spinner("preparing the kernel");
    let prepared = ctx.prepare(kernel, &prepare_events(&pb))?;
    let accel = ctx.accel(&prepared.kernel.bzimage)?;
    let (work, _keep) = super::workdir(None)?;
    let release = prepared.kernel.release.clone();
    let id = prepared.kernel.id.clone();
    let mut runner = shmemfuzz::session::runner::Runner::new(
        prepared,
        shmemfuzz::session::SessionOptions::new(work, accel),
    );
    pb.set_message(format!("booting {release}"));
    let total = corpus.len() as u64 * u64::from(rounds);
    let figs = corpus::run_corpus(&mut runner, &corpus, rounds, &|n, name| {
        pb.set_message(format!("{n}/{total}: {name}"))
    })?;
    runner.shutdown();
    pb.finish_and_clear();
    println!("kernel          {id} ({release}); {accel}, -smp 1, one worker");
    println!(
        "corpus          {} ({} programs) x {rounds} round(s)",
        dir.display(),
        corpus.len()
    );
    println!(
        "executions/s    {:.2} ({} executions in {:.1} s; guests replaced: {} restores, {} boots)",
        figs.per_sec(),
        figs.executions,
        figs.secs,
        figs.restores,
        figs.boots
    );
    println!("one execution, on average:");
    let n = figs.executions.max(1) as f64;
    for (phase, ms) in &figs.phases {
        println!("  {phase:<56} {:>8.1} ms", ms / n);
    }
    if !figs.findings.is_empty() {
        println!("executions with findings ({}):", figs.findings.len());
        for (name, sig) in &figs.findings {
            println!("  {name}: {sig}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
