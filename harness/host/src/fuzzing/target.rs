//! One fuzzer process: a VM booted at the first input and reused for every input after it.
//!
//! Configured by environment variables ([`Env`]), so `cargo fuzz run shmem_ops` and the
//! campaign's workers run the same code:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SHMEMFUZZ_KERNEL` | catalog id, `src-6.1`, … | the catalog's default |
//! | `SHMEMFUZZ_APPEND` | extra kernel arguments, space-separated | none |
//! | `SHMEMFUZZ_STATS` | where to write [`WorkerStats`] (and its history, `.jsonl` beside it: [`super::history`]) | not written |
//! | `SHMEMFUZZ_CORPUS` | the corpus directory whose size the history records | not recorded |
//! | `SHMEMFUZZ_BUNDLES` | where each new finding's bundle goes (`<dir>/<signature>`) | not written |
//! | `SHMEMFUZZ_WORKDIR` | the VM's working directory | a temporary directory (below) |
//! | `SHMEMFUZZ_KNOWN` | a known-findings file ([`crate::fuzzing::known`]): counted, not failed on | none |
//! | `SHMEMFUZZ_TOPOLOGY` | the guest topology (`flat`, `blocks`, `numa`, `hugetlb`) | `flat` |
//! | `SHMEMFUZZ_SMP` | vCPUs of the guest | 1 |
//!
//! Without `SHMEMFUZZ_WORKDIR` (a bare `cargo fuzz run`; campaigns always set it, inside a
//! directory the campaign removes), the VM's directory is `$TMPDIR/shmemfuzz-fuzz-<pid>-*`.
//! libFuzzer ends by `exit` or, on a signal, `_exit`, neither of which drops the target, so
//! that directory outlives its process; the next target started removes those whose process
//! is gone ([`remove_stale_workdirs`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use shmemfuzz_core::program::Program;

use super::history::{now_ms, HistoryWriter};
use super::stats::WorkerStats;
use crate::findings::bundle::{dir_name, Bundle, HitCount};
use crate::fuzzing::feedback::{Feedback, MmText};
use crate::fuzzing::known::KnownFindings;
use crate::kernels::context::{Context, ContextError};
use crate::session::runner::Runner;
use crate::session::SessionOptions;

/// The start of a bare target's VM directory name, before its process ID.
const WORKDIR_PREFIX: &str = "shmemfuzz-fuzz-";

/// Removes the `shmemfuzz-fuzz-<pid>-*` directories in `tmp` whose process no longer exists
/// (see the module doc); returns how many. A directory of a live process, or one whose name
/// holds no process ID, is kept.
pub fn remove_stale_workdirs(tmp: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORKDIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let gone = !Path::new(&format!("/proc/{pid}")).exists();
        if gone && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// How often the stats file is rewritten.
const STATS_EVERY: Duration = Duration::from_secs(3);
/// Harness failures in a row after which the worker gives up (the kernel or the machine is
/// not usable; going on would only reject inputs).
const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// The target's configuration, from the environment.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub kernel: Option<String>,
    pub append: Vec<String>,
    pub stats: Option<PathBuf>,
    pub corpus: Option<PathBuf>,
    pub bundles: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    pub known: Option<PathBuf>,
    pub topology: Option<String>,
    pub smp: Option<String>,
}

impl Env {
    pub fn from_env() -> Env {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Env {
            kernel: var("SHMEMFUZZ_KERNEL"),
            append: var("SHMEMFUZZ_APPEND")
                .map(|a| a.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            stats: var("SHMEMFUZZ_STATS").map(PathBuf::from),
            corpus: var("SHMEMFUZZ_CORPUS").map(PathBuf::from),
            bundles: var("SHMEMFUZZ_BUNDLES").map(PathBuf::from),
            workdir: var("SHMEMFUZZ_WORKDIR").map(PathBuf::from),
            known: var("SHMEMFUZZ_KNOWN").map(PathBuf::from),
            topology: var("SHMEMFUZZ_TOPOLOGY"),
            smp: var("SHMEMFUZZ_SMP"),
        }
    }
}

/// Why the target could not start.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("preparing the kernel")]
    Kernel(#[from] ContextError),
    #[error("loading the kernel catalog")]
    Catalog(#[from] crate::kernels::kernel::KernelError),
    #[error("probing the accelerator")]
    Accel(#[from] crate::guest::vm::VmError),
    #[error("creating the VM's working directory")]
    Workdir(#[source] std::io::Error),
    #[error(transparent)]
    Known(#[from] crate::fuzzing::known::KnownError),
    #[error("SHMEMFUZZ_TOPOLOGY={0:?} is not a topology (flat, blocks, numa, hugetlb)")]
    Topology(String),
    #[error("SHMEMFUZZ_SMP={0:?} is not a vCPU count from 1 to 64")]
    Smp(String),
}

/// What one input did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It decoded to no operation (libFuzzer should not keep it).
    Empty,
    /// It ran and the oracle found nothing.
    Clean,
    /// The harness could not run it (not a finding; the VM is rebooted for the next input).
    /// `give_up` when that happened too often in a row to go on.
    HarnessFailure { message: String, give_up: bool },
    /// The kernel failed: `message` names the signature, shows the program and the commands.
    Finding { signature: String, message: String },
}

/// One fuzzer process's state.
#[derive(Debug)]
pub struct FuzzTarget {
    runner: Runner,
    feedback: Feedback,
    stats: WorkerStats,
    env: Env,
    kernel_id: String,
    _tempdir: Option<tempfile::TempDir>,
    stats_written: Option<Instant>,
    history: Option<HistoryWriter>,
    failures_in_a_row: u32,
    known: KnownFindings,
}

impl FuzzTarget {
    /// Prepares the kernel (fetch or build, mock driver) and the runner; the VM boots at the
    /// first input.
    pub fn start(env: Env) -> Result<FuzzTarget, TargetError> {
        let ctx = Context::new()?;
        let kernel = ctx.prepare(env.kernel.as_deref(), &|_| {})?;
        let accel = ctx.accel(&kernel.kernel.bzimage)?;
        let (workdir, tempdir) = match &env.workdir {
            Some(w) => (w.clone(), None),
            None => {
                remove_stale_workdirs(&std::env::temp_dir());
                let t = tempfile::Builder::new()
                    .prefix(&format!("{WORKDIR_PREFIX}{}-", std::process::id()))
                    .tempdir()
                    .map_err(TargetError::Workdir)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // KCOV PCs are kept to mm/ when the kernel's build tree is at hand (self-built).
        let mm_text = kernel
            .kernel
            .config
            .parent()
            .and_then(|dir| MmText::from_build_dir(dir).ok());
        let mut opts = SessionOptions::new(workdir, accel);
        opts.append = env.append.clone();
        if let Some(t) = &env.topology {
            use clap::ValueEnum;
            let topology = crate::guest::vm::Topology::from_str(t, true)
                .map_err(|_| TargetError::Topology(t.clone()))?;
            opts.memory = topology.layout();
        }
        if let Some(n) = &env.smp {
            opts.smp = n
                .parse()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| TargetError::Smp(n.clone()))?;
        }
        let known = match &env.known {
            Some(path) => KnownFindings::load(path)?,
            None => KnownFindings::default(),
        };
        let kernel_id = kernel.kernel.id.clone();
        Ok(FuzzTarget {
            runner: Runner::new(kernel, opts),
            feedback: Feedback::new(mm_text),
            stats: WorkerStats {
                kernel: kernel_id.clone(),
                ..WorkerStats::default()
            },
            history: env.stats.as_deref().map(HistoryWriter::beside),
            env,
            kernel_id,
            _tempdir: tempdir,
            stats_written: None,
            failures_in_a_row: 0,
            known,
        })
    }

    pub fn feedback(&self) -> &Feedback {
        &self.feedback
    }

    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Runs the program `data` decodes to, and writes the kernel's coverage of it into
    /// `counters` (at least [`crate::fuzzing::feedback::COUNTERS_LEN`] bytes).
    pub fn execute(&mut self, data: &[u8], counters: &mut [u8]) -> Verdict {
        let Ok(program) = Program::arbitrary_take_rest(Unstructured::new(data)) else {
            return Verdict::Empty;
        };
        if program.ops.is_empty() {
            self.stats.empty += 1;
            return Verdict::Empty;
        }
        let start = Instant::now();
        let result = self.runner.run(&program, &mut |_| {});
        self.stats.busy_ms += start.elapsed().as_millis() as u64;
        self.stats.boots = self.runner.boots();
        self.stats.restores = self.runner.restores();
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                self.stats.harness_failures += 1;
                self.failures_in_a_row += 1;
                self.write_stats(true);
                return Verdict::HarnessFailure {
                    message: crate::error_chain(&e),
                    give_up: self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW,
                };
            }
        };
        self.failures_in_a_row = 0;
        self.stats.runs += 1;
        self.feedback.fill(&program, &out, counters);
        self.stats.functions = self.feedback.functions.iter().cloned().collect();
        self.stats.mm_pcs = self.feedback.pcs.len() as u64;
        self.stats.replaced_pages = self.feedback.replaced_pages;
        self.stats.replacing_runs = self.feedback.replacing_runs;
        self.stats.replaced_by_key = self.feedback.replaced_by_key.clone();
        let (known, unknown) = self.known.split(&out.verdict.findings);
        for f in &known {
            *self.stats.known.entry(f.signature.clone()).or_insert(0) += 1;
        }
        let Some(finding) = unknown.first() else {
            self.write_stats(false);
            return Verdict::Clean;
        };
        let signature = finding.signature.clone();
        self.stats.findings.push(signature.clone());
        let bundle = self.env.bundles.as_ref().map(|dir| {
            let dest = dir.join(dir_name(&signature));
            if dest.join("bundle.json").is_file() {
                // One bundle per signature: the first found is kept.
                return (dest, Ok(()));
            }
            let written = self
                .runner
                .bundle_last_run(
                    &program,
                    &out,
                    Some(signature.clone()),
                    HitCount { runs: 1, hits: 1 },
                )
                .and_then(|c| Bundle::write_replacing(&dest, &c));
            (dest, written)
        });
        self.write_stats(true);
        let mut message = format!(
            "shmemfuzz finding: {signature}\n  {}\n  on {}{}\n\nprogram:\n{program}\n",
            finding.title,
            self.kernel_id,
            if self.env.append.is_empty() {
                String::new()
            } else {
                format!(" with `{}`", self.env.append.join(" "))
            }
        );
        let append = if self.env.append.is_empty() {
            String::new()
        } else {
            format!(" --append '{}'", self.env.append.join(" "))
        };
        match bundle {
            Some((dest, Ok(()))) => message.push_str(&format!(
                "recorded in {0}\n  shmemfuzz replay {0}\n  shmemfuzz minimize {0}\n  shmemfuzz export-c {0}\n",
                dest.display()
            )),
            Some((dest, Err(e))) => {
                message.push_str(&format!(
                    "(could not record {}: {})\n",
                    dest.display(),
                    crate::error_chain(&e)
                ))
            }
            None => {}
        }
        message.push_str(&format!(
            "reproduce the crash file libFuzzer writes below:\n  shmemfuzz repro <crash-file> --kernel {}{append} --out bundles\n  shmemfuzz minimize bundles/{}\n",
            self.kernel_id,
            dir_name(&signature)
        ));
        Verdict::Finding { signature, message }
    }

    fn write_stats(&mut self, now: bool) {
        let Some(path) = self.env.stats.clone() else {
            return;
        };
        if now
            || self
                .stats_written
                .is_none_or(|t| t.elapsed() >= STATS_EVERY)
        {
            // Stats are for progress lines: a failed write must not stop the fuzzer.
            let _ = self.stats.write(&path);
            self.stats_written = Some(Instant::now());
        }
        if let Some(h) = self.history.as_mut() {
            let corpus = self.env.corpus.as_deref();
            let count = || Some(std::fs::read_dir(corpus?).ok()?.count() as u64);
            let _ = h.record(&self.stats, count, now_ms(), now);
        }
    }

    /// Powers the VM off (libFuzzer calls no destructors at exit).
    pub fn shutdown(&mut self) {
        self.write_stats(true);
        self.runner.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_directories_of_processes_that_are_gone_are_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A process that existed and is gone (its number not reused within the test).
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let dead = child.id();
        child.wait().expect("reaped");
        let me = std::process::id();
        let names = [
            format!("shmemfuzz-fuzz-{dead}-aB3xYz"),
            format!("shmemfuzz-fuzz-{me}-aB3xYz"),
            "shmemfuzz-fuzz-aB3xYz".to_string(),
            format!("shmemfuzz-{dead}-aB3xYz"),
        ];
        for n in &names {
            std::fs::create_dir_all(tmp.path().join(n).join("guest0")).expect("mkdir");
        }
        assert_eq!(remove_stale_workdirs(tmp.path()), 1);
        assert!(
            !tmp.path().join(&names[0]).exists(),
            "the dead process's directory"
        );
        for kept in &names[1..] {
            assert!(tmp.path().join(kept).exists(), "{kept} was removed");
        }
    }
}
