//! A bounded fuzzing campaign: long-lived libFuzzer workers, one VM each.
//!
//! libFuzzer's own `-fork`/`-jobs` modes restart jobs faster than a VM boots (job N gets
//! `min(300, N)` seconds), so each worker here is one libFuzzer process that boots its VM
//! once and fuzzes until the campaign's end, all sharing one corpus directory (libFuzzer
//! reloads what the others add). A worker that stops early is restarted: after a finding
//! (its target panicked, libFuzzer saved the input), or after its harness gave up (then at
//! most [`MAX_RESTARTS`] times). Each worker incarnation writes its own stats file; the
//! campaign sums them for progress and the summary, and findings are triaged by signature
//! into `<out>/bundles/<signature>` by the targets themselves.
//!
//! Layout of `<out>`: `bundles/` (one per signature), `crashes/` (libFuzzer's artifacts,
//! `w<worker>-crash-<sha1>`), `logs/w<worker>-<n>.log`, `stats/w<worker>-<n>.json` (totals)
//! and `stats/w<worker>-<n>.jsonl` (the history, [`super::history`]), `stats/campaign.json`
//! ([`CampaignMeta`]). `stats/` describes the latest campaign: a campaign empties it first.
//!
//! **Interrupted** (Ctrl-C, SIGTERM: [`crate::os::interrupt`]), the campaign stops its workers
//! between two runs first: SIGUSR1, on which libFuzzer exits at the top of its loop, after
//! the last run's corpus entry is written whole. A worker that has not gone after
//! [`INTERRUPT_GRACE`] (a run or a boot in flight) gets SIGTERM, and SIGKILL
//! [`KILL_AFTER`] later. The campaign then removes the bundle work directories a killed
//! worker may have left (`bundles/.partial-bundle-*`; [`crate::findings::bundle::remove_partials`];
//! `stats/*.tmp`) and its workers' VM directories, and returns its status like a campaign that ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmemfuzz_core::program::gen::GEN_MAX_LEN;

use super::history::{HistoryWriter, Incarnation};
use super::known::KnownFindings;
use super::sigpattern::SignaturePattern;
use super::stats::WorkerStats;
use crate::findings::bundle::dir_name;
use crate::os::process::{Group, Signal};

/// Restarts of one worker after its harness gave up, before the worker is abandoned.
pub const MAX_RESTARTS: u32 = 3;
/// How long past the campaign's end a worker may take to stop before it is killed.
const GRACE: Duration = Duration::from_secs(30);
/// How long an interrupted campaign's workers get to finish their run and exit between runs.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(15);
/// How long after SIGTERM an interrupted campaign's worker is SIGKILLed.
pub const KILL_AFTER: Duration = Duration::from_secs(5);
/// Exit code of a target that gave up on its harness (`_exit(2)`, no crash artifact).
pub const HARNESS_EXIT: i32 = 2;

/// What to run.
#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// The `shmem_ops` libFuzzer binary ([`super::build::build_target`]).
    pub binary: PathBuf,
    pub kernel: Option<String>,
    pub append: Vec<String>,
    pub jobs: u32,
    pub duration: Duration,
    /// Where new inputs go (a plain libFuzzer corpus directory, created if missing).
    pub corpus: PathBuf,
    /// More corpus directories read at start (seeds), never written.
    pub seeds: Vec<PathBuf>,
    /// Findings, logs, stats.
    pub out: PathBuf,
    /// End the campaign at the first finding this pattern matches (`None`: run to the end).
    pub stop_on: Option<SignaturePattern>,
    /// Known findings ([`crate::fuzzing::known`]): counted, never a reason to stop or fail.
    pub known: Option<PathBuf>,
    /// Guest topology name (`flat` unless given).
    pub topology: Option<String>,
    /// vCPUs of each worker's guest.
    pub smp: u32,
}

/// What `stats/campaign.json` says about the campaign (for the report).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CampaignMeta {
    /// Wall clock at the start (ms since the epoch).
    pub start_ms: u64,
    /// The kernel as given (`None`: the catalog's default).
    pub kernel: Option<String>,
    pub append: Vec<String>,
    pub jobs: u32,
    pub duration_s: u64,
    pub corpus: PathBuf,
}

/// Why a campaign could not run.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the fuzz target {0} does not exist: build it first (shmemfuzz fuzz builds it)")]
    NoBinary(PathBuf),
    #[error("no worker could run (a harness failure, not a finding):\n{0}")]
    NoWorker(String),
    #[error("reading the known findings to pass on to the workers")]
    Known(#[source] super::known::KnownError),
}

/// One signature's findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Campaign time of the first.
    pub first_at: Duration,
    /// Worker incarnations that hit it.
    pub hits: u32,
    /// Its bundle, when the target could write one.
    pub bundle: Option<PathBuf>,
}

/// Live figures, for progress lines, and the final summary.
#[derive(Clone, Debug, Default)]
pub struct CampaignStatus {
    pub elapsed: Duration,
    pub execs: u64,
    pub corpus: usize,
    pub functions: usize,
    pub mm_pcs: u64,
    pub replaced_pages: u64,
    /// The replaced pages by the zone tracker's key, over all workers.
    pub replaced_by_key: BTreeMap<String, u64>,
    pub boots: u32,
    pub restores: u32,
    pub harness_failures: u64,
    pub workers_running: u32,
    pub findings: BTreeMap<String, Found>,
    /// Known findings by signature: runs that had them.
    pub known: BTreeMap<String, u64>,
    /// Workers abandoned, with the last lines of their log.
    pub abandoned: Vec<String>,
}

impl CampaignStatus {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// `execs 1234 (5.1/s) · corpus 87 · kernel fns 24 · mm PCs 0 · replaced 512 · findings 1`
    pub fn line(&self) -> String {
        let mut s = format!(
            "execs {} ({:.1}/s) · corpus {} · kernel fns {}",
            self.execs,
            self.execs_per_sec(),
            self.corpus,
            self.functions
        );
        if self.mm_pcs > 0 {
            s.push_str(&format!(" · mm PCs {}", self.mm_pcs));
        }
        s.push_str(&format!(
            " · replaced pages {} · findings {}",
            self.replaced_pages,
            self.findings.len()
        ));
        if !self.known.is_empty() {
            s.push_str(&format!(" (+{} known)", self.known.values().sum::<u64>()));
        }
        s
    }
}

struct Worker {
    index: u32,
    incarnation: u32,
    child: Option<Group>,
    restarts: u32,
    /// Stats of finished incarnations, already counted.
    done: Vec<WorkerStats>,
}

impl Worker {
    fn stats_path(&self, out: &Path, n: u32) -> PathBuf {
        out.join(format!("stats/w{}-{n}.json", self.index))
    }
    fn log_path(&self, out: &Path) -> PathBuf {
        out.join(format!("logs/w{}-{}.log", self.index, self.incarnation))
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CampaignError + 'a {
    move |source| CampaignError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Runs the campaign to its end (or to an interruption: see the module doc); `progress` is
/// called about once a second.
pub fn run(
    opts: &CampaignOptions,
    progress: &mut dyn FnMut(&CampaignStatus),
) -> Result<CampaignStatus, CampaignError> {
    run_with(opts, progress, crate::os::interrupt::requested)
}

/// [`run`], with whether the process was interrupted asked of `interrupted` (tests supply
/// their own).
fn run_with(
    opts: &CampaignOptions,
    progress: &mut dyn FnMut(&CampaignStatus),
    interrupted_by: fn() -> Option<crate::os::interrupt::Interrupted>,
) -> Result<CampaignStatus, CampaignError> {
    if !opts.binary.is_file() {
        return Err(CampaignError::NoBinary(opts.binary.clone()));
    }
    for dir in ["bundles", "crashes", "logs", "stats"] {
        let d = opts.out.join(dir);
        std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
    }
    std::fs::create_dir_all(&opts.corpus).map_err(io("creating", &opts.corpus))?;
    let stats_dir = opts.out.join("stats");
    for entry in std::fs::read_dir(&stats_dir).map_err(io("reading", &stats_dir))? {
        let path = entry.map_err(io("reading", &stats_dir))?.path();
        if path.is_file() {
            std::fs::remove_file(&path).map_err(io("removing", &path))?;
        }
    }
    let meta = CampaignMeta {
        start_ms: super::history::now_ms(),
        kernel: opts.kernel.clone(),
        append: opts.append.clone(),
        jobs: opts.jobs,
        duration_s: opts.duration.as_secs(),
        corpus: opts.corpus.clone(),
    };
    let meta_path = stats_dir.join("campaign.json");
    let text = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other);
    text.and_then(|t| std::fs::write(&meta_path, t))
        .map_err(io("writing", &meta_path))?;
    // The workers' VM directories (swap images, initramfs) live here, owned by the campaign:
    // a worker ends by a signal and never removes its own, so the campaign removes them all
    // when it returns. (Same prefix length as the target's own `shmemfuzz-fuzz-`: socket
    // paths inside stay short.)
    let workdirs = tempfile::Builder::new()
        .prefix("shmemfuzz-c-")
        .tempdir()
        .map_err(io("creating a directory in", &std::env::temp_dir()))?;
    let start = Instant::now();
    let end = start + opts.duration;
    let mut workers: Vec<Worker> = (0..opts.jobs.max(1))
        .map(|index| Worker {
            index,
            incarnation: 0,
            child: None,
            restarts: 0,
            done: Vec::new(),
        })
        .collect();
    let mut abandoned: Vec<String> = Vec::new();
    let mut stopping = false;
    let mut interrupted = false;
    let mut term_sent: Option<Instant> = None;
    // The last stop signal an interrupted campaign sent (each is sent once: libFuzzer logs
    // every SIGUSR1 it gets).
    let mut stop_sent: Option<Signal> = None;
    loop {
        let now = Instant::now();
        if !interrupted && interrupted_by().is_some() {
            interrupted = true;
            stopping = true;
        }
        for w in workers.iter_mut() {
            if let Some(child) = w.child.as_ref() {
                let Ok(Some(exit)) = child.try_reap() else {
                    continue;
                };
                w.child = None;
                let stats_path = w.stats_path(&opts.out, w.incarnation);
                let stats = WorkerStats::read(&stats_path);
                if let Some(st) = &stats {
                    close_history(&stats_path, st, &opts.corpus);
                }
                let found = stats.as_ref().is_some_and(|s| !s.findings.is_empty());
                // Not one more incarnation once a finding ends the campaign.
                stopping |= stats
                    .as_ref()
                    .is_some_and(|s| s.findings.iter().any(|f| ends_campaign(opts, f)));
                w.done.extend(stats);
                // A worker that ends early without a finding — its harness gave up (status
                // 2), or libFuzzer stopped it (its own timeout, memory limit) — failed; a
                // finding or the campaign's end is no failure.
                let failed = !found && !exit.success() && !stopping && now < end;
                if failed || exit.code() == Some(HARNESS_EXIT) {
                    w.restarts += 1;
                    if w.restarts > MAX_RESTARTS {
                        abandoned.push(format!(
                            "worker {}: the harness failed {} times in a row ({exit}); last log lines:\n{}",
                            w.index,
                            w.restarts,
                            tail(&w.log_path(&opts.out), 8)
                        ));
                        w.restarts = u32::MAX;
                    }
                } else {
                    w.restarts = 0;
                }
                w.incarnation += 1;
            }
        }
        let left = end.saturating_duration_since(now);
        let due: Vec<usize> = (0..workers.len())
            .filter(|&i| {
                let w = &workers[i];
                w.child.is_none() && !stopping && w.restarts <= MAX_RESTARTS && left.as_secs() >= 10
            })
            .collect();
        if !due.is_empty() {
            // What earlier incarnations found is known to the next ones: counted, not found
            // (and rebooted for) again, so a campaign that goes on after a finding looks for
            // others. Written only when a worker starts.
            let found: std::collections::BTreeSet<&String> = workers
                .iter()
                .flat_map(|w| w.done.iter().flat_map(|s| s.findings.iter()))
                .collect();
            let so_far = (!found.is_empty())
                .then(|| known_so_far(opts, found))
                .transpose()?;
            let known = so_far.as_deref().or(opts.known.as_deref());
            for i in due {
                let child = spawn(opts, &workers[i], left, known, workdirs.path())?;
                workers[i].child = Some(child);
            }
        }
        let status = collect(opts, &workers, start, &abandoned);
        progress(&status);
        if status.findings.keys().any(|f| ends_campaign(opts, f)) {
            stopping = true;
        }
        let running = workers.iter().filter(|w| w.child.is_some()).count();
        if running == 0
            && (stopping || now >= end || workers.iter().all(|w| w.restarts > MAX_RESTARTS))
        {
            break;
        }
        // libFuzzer ends by itself at -max_total_time; a run in flight may take a while.
        if stopping || now >= end {
            let since = *term_sent.get_or_insert(now);
            let waited = now.duration_since(since);
            let signal = if interrupted {
                stop_signal(waited)
            } else if waited >= GRACE {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            let send = !interrupted || stop_sent != Some(signal);
            for c in workers.iter().filter_map(|w| w.child.as_ref()) {
                if send && (stopping || signal == Signal::SIGKILL) {
                    c.signal(signal);
                }
            }
            if interrupted {
                stop_sent = Some(signal);
            }
        }
        nap(interrupted, interrupted_by);
    }
    // Every worker is gone: nobody writes a bundle or a stats file any more.
    let partials = crate::findings::bundle::remove_partials(&opts.out.join("bundles"));
    if partials > 0 {
        tracing::info!("removed {partials} bundle(s) a stopped worker left half written");
    }
    for entry in std::fs::read_dir(&stats_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        // A stats file's temporary twin (`WorkerStats::write`) of a worker killed mid-write.
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(collect(opts, &workers, start, &abandoned))
}

/// The signal for an interrupted campaign's workers `waited` after the interruption: see the
/// module doc.
/// Whether the finding `signature` ends the campaign.
fn ends_campaign(opts: &CampaignOptions, signature: &str) -> bool {
    opts.stop_on.as_ref().is_some_and(|p| p.matches(signature))
}

fn stop_signal(waited: Duration) -> Signal {
    if waited >= INTERRUPT_GRACE + KILL_AFTER {
        Signal::SIGKILL
    } else if waited >= INTERRUPT_GRACE {
        Signal::SIGTERM
    } else {
        Signal::SIGUSR1
    }
}

/// The supervisor's pause between looks at its workers: a second, cut short by an
/// interruption; once interrupted, a tenth of a second (workers are waited for closely).
fn nap(interrupted: bool, interrupted_by: fn() -> Option<crate::os::interrupt::Interrupted>) {
    let step = crate::session::INTERRUPT_POLL;
    if interrupted {
        std::thread::sleep(step);
        return;
    }
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if now >= until || interrupted_by().is_some() {
            return;
        }
        std::thread::sleep(step.min(until - now));
    }
}

/// Writes the campaign's known findings and those `found` so far to `known-so-far.toml` in
/// its output directory, for the workers started from now on.
fn known_so_far(
    opts: &CampaignOptions,
    found: std::collections::BTreeSet<&String>,
) -> Result<PathBuf, CampaignError> {
    let shipped = match &opts.known {
        Some(k) => KnownFindings::load(k).map_err(CampaignError::Known)?,
        None => KnownFindings::default(),
    };
    let path = opts.out.join("known-so-far.toml");
    let text = shipped.with_found(found).to_toml();
    std::fs::write(&path, text).map_err(io("writing", &path))?;
    Ok(path)
}

fn spawn(
    opts: &CampaignOptions,
    w: &Worker,
    left: Duration,
    known: Option<&Path>,
    workdirs: &Path,
) -> Result<Group, CampaignError> {
    let workdir = workdirs.join(format!("w{}-{}", w.index, w.incarnation));
    std::fs::create_dir_all(&workdir).map_err(io("creating", &workdir))?;
    let log_path = w.log_path(&opts.out);
    let log = std::fs::File::create(&log_path).map_err(io("creating", &log_path))?;
    let log2 = log.try_clone().map_err(io("opening", &log_path))?;
    let mut cmd = Command::new(&opts.binary);
    cmd.arg(&opts.corpus)
        .args(&opts.seeds)
        .arg(format!(
            "-max_total_time={}",
            left.as_secs().saturating_sub(5)
        ))
        .arg(format!(
            "-artifact_prefix={}/",
            opts.out.join("crashes").display()
        ))
        .arg(format!("-max_len={GEN_MAX_LEN}"))
        // The harness bounds every operation itself; this only catches a stuck harness.
        .arg("-timeout=1200")
        .arg("-print_final_stats=1")
        // The first input boots the VM: not a slow input worth saving.
        .arg("-report_slow_units=100000")
        .env("SHMEMFUZZ_STATS", w.stats_path(&opts.out, w.incarnation))
        .env("SHMEMFUZZ_CORPUS", &opts.corpus)
        .env("SHMEMFUZZ_BUNDLES", opts.out.join("bundles"))
        .env("SHMEMFUZZ_APPEND", opts.append.join(" "))
        .env("SHMEMFUZZ_WORKDIR", &workdir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    if let Some(k) = &opts.kernel {
        cmd.env("SHMEMFUZZ_KERNEL", k);
    }
    if let Some(k) = known {
        cmd.env("SHMEMFUZZ_KNOWN", k);
    }
    if let Some(t) = &opts.topology {
        cmd.env("SHMEMFUZZ_TOPOLOGY", t);
    }
    cmd.env("SHMEMFUZZ_SMP", opts.smp.to_string());
    // The worker (and, through its own death signal, its QEMU) dies with us.
    Group::spawn(cmd, Signal::SIGTERM).map_err(io("starting", &opts.binary))
}

fn collect(
    opts: &CampaignOptions,
    workers: &[Worker],
    start: Instant,
    abandoned: &[String],
) -> CampaignStatus {
    let mut s = CampaignStatus {
        abandoned: abandoned.to_vec(),
        elapsed: start.elapsed(),
        corpus: std::fs::read_dir(&opts.corpus).map_or(0, |d| d.count()),
        workers_running: workers.iter().filter(|w| w.child.is_some()).count() as u32,
        ..CampaignStatus::default()
    };
    let mut functions = std::collections::BTreeSet::new();
    for w in workers {
        let live = w
            .child
            .as_ref()
            .and_then(|_| WorkerStats::read(&w.stats_path(&opts.out, w.incarnation)));
        for st in w.done.iter().chain(live.as_ref()) {
            s.execs += st.runs;
            s.boots += st.boots;
            s.restores += st.restores;
            s.harness_failures += st.harness_failures;
            s.replaced_pages += st.replaced_pages;
            for (key, pages) in &st.replaced_by_key {
                *s.replaced_by_key.entry(key.clone()).or_insert(0) += pages;
            }
            s.mm_pcs = s.mm_pcs.max(st.mm_pcs);
            functions.extend(st.functions.iter().cloned());
            for (sig, runs) in &st.known {
                *s.known.entry(sig.clone()).or_insert(0) += runs;
            }
            for sig in &st.findings {
                let bundle = opts.out.join("bundles").join(dir_name(sig));
                let f = s.findings.entry(sig.clone()).or_insert(Found {
                    first_at: s.elapsed,
                    hits: 0,
                    bundle: bundle.is_dir().then_some(bundle),
                });
                f.hits += 1;
                let at = Duration::from_millis(st.updated_ms)
                    .checked_sub(Duration::from_millis(unix_ms(start)))
                    .unwrap_or_default();
                f.first_at = f.first_at.min(at);
            }
        }
    }
    s.functions = functions.len();
    s
}

/// Appends the incarnation's final totals to its history when they are newer than its last
/// line (a worker stopped by a signal writes its totals more often than its history).
fn close_history(stats_path: &Path, st: &WorkerStats, corpus: &Path) {
    let path = stats_path.with_extension("jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let last = Incarnation::parse(0, 0, &text)
        .samples
        .last()
        .map(|s| (s.t_ms, s.runs));
    if last.is_some_and(|(t, runs)| t >= st.updated_ms || runs >= st.runs) {
        return;
    }
    let count = || Some(std::fs::read_dir(corpus).ok()?.count() as u64);
    let _ = HistoryWriter::beside(stats_path).record(st, count, st.updated_ms, true);
}

/// `start` as milliseconds since the epoch.
fn unix_ms(start: Instant) -> u64 {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now_unix.saturating_sub(start.elapsed()).as_millis() as u64
}

/// The last `n` lines of a file (of its last MiB; nothing when it is not a regular file).
fn tail(path: &Path, n: usize) -> String {
    let bytes = crate::files::bounded::read_tail(path, 1 << 20).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests;
