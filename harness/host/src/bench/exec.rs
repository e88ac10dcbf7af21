//! The execution benchmark: programs per second through the harness, beside a static C loop
//! doing the same syscalls in the same guest (the floor).
//!
//! The floor is the program exported with `export-c` (the same syscalls, data checks and
//! zone checks as the agent's executor, minus the protocol, per-operation page observation
//! and teardown), compiled static with gcc, copied into the initramfs and run N times in a
//! row by the agent ([`Session::exec`]). The harness side is N `Session::run` calls timed on
//! the host, each judged by the oracle, i.e. what one libFuzzer execution costs. Rounds
//! alternate harness and floor so drifting machine load hits both alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long compiling the C floor may take.
const CC_LIMIT: Duration = Duration::from_secs(300);

use shmemfuzz_core::export_c::{export, ExportOptions};
use shmemfuzz_core::program::Program;

use crate::kernels::context::PreparedKernel;
use crate::session::{Session, SessionError, SessionOptions};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecBenchError {
    #[error("exporting the program to C")]
    Export(#[from] shmemfuzz_core::export_c::ExportError),
    #[error("compiling the C floor with {cc}: {why} (install gcc and libc6-dev)")]
    Compile { cc: String, why: String },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the program is not clean on this kernel ({0}): the benchmark wants a clean run")]
    NotClean(String),
    #[error("the C floor failed {failed} of {runs} runs: {first}")]
    Floor {
        failed: u32,
        runs: u32,
        first: String,
    },
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// One round's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Round {
    pub harness_secs: f64,
    pub floor_secs: f64,
}

/// All rounds of `runs` executions each way.
#[derive(Clone, Debug, Default)]
pub struct ExecFigures {
    pub runs: u32,
    pub rounds: Vec<Round>,
    /// Where one harness execution's time goes, averaged (phase, ms): the agent's phases
    /// (setup, the program with its observations, teardown steps, coverage), the
    /// operations' own time within the program, and the host's share.
    pub breakdown: Vec<(String, f64)>,
}

impl ExecFigures {
    fn rate(&self, secs: impl Fn(&Round) -> f64) -> f64 {
        let total: f64 = self.rounds.iter().map(secs).sum();
        f64::from(self.runs) * self.rounds.len() as f64 / total.max(1e-9)
    }
    pub fn harness_per_sec(&self) -> f64 {
        self.rate(|r| r.harness_secs)
    }
    pub fn floor_per_sec(&self) -> f64 {
        self.rate(|r| r.floor_secs)
    }
    pub fn ratio(&self) -> f64 {
        self.harness_per_sec() / self.floor_per_sec().max(1e-9)
    }
}

/// Compiles `program`'s C export statically into `dir/floor`.
fn compile_floor(
    program: &Program,
    swap: &[String],
    dir: &Path,
) -> Result<PathBuf, ExecBenchError> {
    let opts = ExportOptions {
        inline_uapi: Some(crate::kernels::data::MOCK_UAPI_HEADER.to_string()),
        swap_devices: swap.to_vec(),
        source: Some("shmemfuzz bench exec".into()),
        ..ExportOptions::default()
    };
    let c = export(program, &opts)?;
    let src = dir.join("floor.c");
    std::fs::write(&src, c).map_err(|e| ExecBenchError::Io(src.clone(), e))?;
    let bin = dir.join("floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let mut cmd = Command::new(&cc);
    cmd.args(["-static", "-O2", "-o"]).arg(&bin).arg(&src);
    let out = crate::os::process::output(cmd, CC_LIMIT).map_err(|e| ExecBenchError::Compile {
        cc: cc.clone(),
        why: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ExecBenchError::Compile {
            cc,
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(bin)
}

/// Boots `kernel` once and measures `rounds` rounds of `runs` executions each way.
pub fn run(
    kernel: &PreparedKernel,
    program: &Program,
    mut opts: SessionOptions,
    rounds: u32,
    runs: u32,
    progress: &dyn Fn(&str, f64),
) -> Result<ExecFigures, ExecBenchError> {
    let swap: Vec<String> = (0..opts.swap_devices)
        .map(|i| format!("/dev/vd{}", (b'a' + i) as char))
        .collect();
    let floor = compile_floor(program, &swap, &opts.workdir)?;
    opts.modules = vec![kernel.mock_module.clone()];
    opts.executables = vec![floor];
    let mut session = Session::boot(&kernel.kernel, &opts)?;
    let result = measure(&mut session, program, rounds, runs, progress);
    session.shutdown();
    result
}

fn measure(
    session: &mut Session,
    program: &Program,
    rounds: u32,
    runs: u32,
    progress: &dyn Fn(&str, f64),
) -> Result<ExecFigures, ExecBenchError> {
    // One run of each first: both warm (page cache, probes installed), both checked.
    let first = session.run(program, &mut |_| {})?;
    if let Some(f) = first.verdict.findings.first() {
        return Err(ExecBenchError::NotClean(format!(
            "{}: {}",
            f.signature, f.title
        )));
    }
    check_floor(session.exec("/opt/floor", 1)?, 1)?;
    let mut figs = ExecFigures {
        runs,
        rounds: Vec::new(),
        breakdown: Vec::new(),
    };
    let mut phases: Vec<(String, f64)> = Vec::new();
    let mut add = |name: &str, ms: f64| match phases.iter_mut().find(|(n, _)| n == name) {
        Some((_, total)) => *total += ms,
        None => phases.push((name.to_string(), ms)),
    };
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..runs {
            let t = Instant::now();
            let out = session.run(program, &mut |_| {})?;
            let wall = t.elapsed().as_secs_f64() * 1e3;
            if let Some(f) = out.verdict.findings.first() {
                return Err(ExecBenchError::NotClean(format!(
                    "{}: {}",
                    f.signature, f.title
                )));
            }
            let accounted = super::add_agent_phases(out.teardown.as_ref(), &mut add);
            add("host: protocol, judging, console", wall - accounted);
        }
        let harness_secs = start.elapsed().as_secs_f64();
        progress("harness", f64::from(runs) / harness_secs);
        let start = Instant::now();
        check_floor(session.exec("/opt/floor", runs)?, runs)?;
        let floor_secs = start.elapsed().as_secs_f64();
        progress("floor", f64::from(runs) / floor_secs);
        figs.rounds.push(Round {
            harness_secs,
            floor_secs,
        });
    }
    let n = f64::from(runs * rounds).max(1.0);
    figs.breakdown = phases
        .into_iter()
        .map(|(name, ms)| (name, ms / n))
        .collect();
    Ok(figs)
}

fn check_floor(out: crate::session::ExecOutcome, runs: u32) -> Result<(), ExecBenchError> {
    if out.ok == runs {
        return Ok(());
    }
    Err(ExecBenchError::Floor {
        failed: runs - out.ok,
        runs,
        first: out.failures.first().cloned().unwrap_or_default(),
    })
}
