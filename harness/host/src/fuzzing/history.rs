//! A campaign's statistics over time: each worker incarnation appends [`Sample`]s, one JSON
//! object a line, to `stats/w<worker>-<n>.jsonl` (beside its `w<worker>-<n>.json` totals), and
//! [`History::load`] merges them per worker and in total.
//!
//! Writing ([`HistoryWriter`]) is bounded: a sample is appended at most every
//! `max(5 s, age / 1000)` (so a day-long incarnation writes a few thousand lines, not tens of
//! thousands), and never past [`MAX_BYTES`]; a finding or the worker's end always gets one
//! (within the byte bound). Reading tolerates what a killed worker leaves: a truncated last
//! line (skipped and counted), samples out of order (sorted), and restarts (each incarnation's
//! counters start at zero again; a worker's figure is the sum over its incarnations, coverage
//! the union of what each reached).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::stats::WorkerStats;

/// Most bytes one incarnation's history file grows to.
pub const MAX_BYTES: u64 = 4 << 20;
/// Shortest time between two samples (ms).
const MIN_EVERY_MS: u64 = 5_000;
/// The window execution rates are averaged over (ms).
const RATE_WINDOW_MS: u64 = 60_000;

/// One line of a history file: a worker incarnation's counters at `t_ms`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// Wall clock (ms since the epoch).
    pub t_ms: u64,
    /// Programs run so far.
    pub runs: u64,
    /// Runs per second since the previous sample.
    pub execs_per_sec: f64,
    /// Inputs in the campaign's corpus directory (when the worker knows it).
    pub corpus: Option<u64>,
    /// Probed mm functions reached so far, and those first reached since the last sample.
    pub functions: u64,
    pub new_functions: Vec<String>,
    /// Distinct mm/ PCs (KCOV kernels).
    pub mm_pcs: u64,
    /// DMA32 pages back from swap at a new PFN, and in how many runs.
    pub replaced_pages: u64,
    pub replacing_runs: u64,
    /// Findings so far, and the signatures new since the last sample.
    pub findings: u64,
    pub new_findings: Vec<String>,
    /// Runs of known findings.
    pub known: u64,
    pub harness_failures: u64,
    pub boots: u32,
    pub restores: u32,
}

/// Appends one incarnation's samples to its history file.
#[derive(Debug)]
pub struct HistoryWriter {
    path: PathBuf,
    started_ms: u64,
    last: Option<(u64, u64)>,
    bytes: u64,
    functions: HashSet<String>,
    findings: usize,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl HistoryWriter {
    /// The history file beside a stats file (`w0-1.json` → `w0-1.jsonl`).
    pub fn beside(stats: &Path) -> HistoryWriter {
        HistoryWriter {
            path: stats.with_extension("jsonl"),
            started_ms: now_ms(),
            last: None,
            bytes: 0,
            functions: HashSet::new(),
            findings: 0,
        }
    }

    /// Appends a sample of `stats` if one is due (`force`: a finding, the end), at `now`;
    /// `corpus` is asked only then. Returns whether it wrote one.
    pub fn record(
        &mut self,
        stats: &WorkerStats,
        corpus: impl FnOnce() -> Option<u64>,
        now: u64,
        force: bool,
    ) -> std::io::Result<bool> {
        let every = MIN_EVERY_MS.max(now.saturating_sub(self.started_ms) / 1000);
        let due = self
            .last
            .is_none_or(|(t, _)| now.saturating_sub(t) >= every);
        if !(due || force) || self.bytes >= MAX_BYTES {
            return Ok(false);
        }
        let execs_per_sec = match self.last {
            Some((t, runs)) if now > t => {
                stats.runs.saturating_sub(runs) as f64 * 1000.0 / (now - t) as f64
            }
            _ => 0.0,
        };
        let new_functions: Vec<String> = stats
            .functions
            .iter()
            .filter(|f| !self.functions.contains(*f))
            .cloned()
            .collect();
        let sample = Sample {
            t_ms: now,
            runs: stats.runs,
            execs_per_sec,
            corpus: corpus(),
            functions: stats.functions.len() as u64,
            new_functions,
            mm_pcs: stats.mm_pcs,
            replaced_pages: stats.replaced_pages,
            replacing_runs: stats.replacing_runs,
            findings: stats.findings.len() as u64,
            new_findings: stats.findings[self.findings.min(stats.findings.len())..].to_vec(),
            known: stats.known.values().sum(),
            harness_failures: stats.harness_failures,
            boots: stats.boots,
            restores: stats.restores,
        };
        let mut line = serde_json::to_vec(&sample).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write of a whole line: a reader sees at most a truncated last line.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(&line)?;
        self.bytes += line.len() as u64;
        self.last = Some((now, stats.runs));
        self.functions.extend(sample.new_functions);
        self.findings = stats.findings.len();
        Ok(true)
    }
}

/// One incarnation's samples, sorted by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Incarnation {
    pub worker: u32,
    pub n: u32,
    pub samples: Vec<Sample>,
    /// Lines that did not parse (a truncated last line).
    pub skipped: usize,
}

impl Incarnation {
    /// Parses a history file's text.
    pub fn parse(worker: u32, n: u32, text: &str) -> Incarnation {
        let mut inc = Incarnation {
            worker,
            n,
            ..Incarnation::default()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Sample>(line) {
                Ok(s) => inc.samples.push(s),
                Err(_) => inc.skipped += 1,
            }
        }
        inc.samples.sort_by_key(|s| s.t_ms);
        inc
    }
}

/// `w3-12.jsonl` → `(3, 12)`.
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let (w, n) = name
        .strip_prefix('w')?
        .strip_suffix(".jsonl")?
        .split_once('-')?;
    Some((w.parse().ok()?, n.parse().ok()?))
}

/// Merged figures at one time (a worker's or the campaign's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    pub t_ms: u64,
    pub runs: u64,
    /// Runs per second over the last minute (or since the first point).
    pub execs_per_sec: f64,
    pub corpus: u64,
    pub functions: u64,
    pub mm_pcs: u64,
    pub replaced_pages: u64,
    pub findings: u64,
    pub harness_failures: u64,
    pub boots: u64,
    pub restores: u64,
}

/// A signature's first sighting and how many incarnations hit it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub first_ms: u64,
    pub hits: u64,
}

/// A campaign's history, merged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Per worker, over all its incarnations.
    pub workers: BTreeMap<u32, Vec<Point>>,
    pub total: Vec<Point>,
    /// Incarnations per worker.
    pub incarnations: BTreeMap<u32, u32>,
    /// Each mm function reached, when first (ms since the epoch).
    pub functions: BTreeMap<String, u64>,
    pub findings: BTreeMap<String, Sighting>,
    /// Lines that did not parse, over all files.
    pub skipped: usize,
}

impl History {
    /// Reads every `w<worker>-<n>.jsonl` under `stats_dir` (none: an empty history).
    pub fn load(stats_dir: &Path) -> History {
        let mut incs = Vec::new();
        for entry in std::fs::read_dir(stats_dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some((w, n)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            if let Ok(text) = std::fs::read(entry.path()) {
                incs.push(Incarnation::parse(w, n, &String::from_utf8_lossy(&text)));
            }
        }
        History::merge(&incs)
    }

    /// Merges incarnations (any order).
    pub fn merge(incs: &[Incarnation]) -> History {
        let mut h = History {
            skipped: incs.iter().map(|i| i.skipped).sum(),
            ..History::default()
        };
        let mut workers: BTreeMap<u32, Vec<&Incarnation>> = BTreeMap::new();
        for inc in incs {
            workers.entry(inc.worker).or_default().push(inc);
            for s in &inc.samples {
                for f in &s.new_functions {
                    let t = h.functions.entry(f.clone()).or_insert(s.t_ms);
                    *t = (*t).min(s.t_ms);
                }
            }
            let mut seen = BTreeSet::new();
            for s in &inc.samples {
                for sig in &s.new_findings {
                    let e = h.findings.entry(sig.clone()).or_insert(Sighting {
                        first_ms: s.t_ms,
                        hits: 0,
                    });
                    e.first_ms = e.first_ms.min(s.t_ms);
                    if seen.insert(sig.clone()) {
                        e.hits += 1;
                    }
                }
            }
        }
        for (w, list) in &workers {
            h.incarnations.insert(*w, list.len() as u32);
            h.workers.insert(*w, series(list));
        }
        h.total = series(&incs.iter().collect::<Vec<_>>());
        h
    }

    /// The earliest sample's time.
    pub fn start_ms(&self) -> Option<u64> {
        self.total.first().map(|p| p.t_ms)
    }
}

/// One series from incarnations that ran side by side or one after the other: at each
/// sample's time, counters summed over each incarnation's latest sample, coverage the union
/// of functions reached (at least the largest count) and the most mm/ PCs.
fn series(incs: &[&Incarnation]) -> Vec<Point> {
    let mut events: Vec<(u64, usize, usize)> = incs
        .iter()
        .enumerate()
        .flat_map(|(i, inc)| (0..inc.samples.len()).map(move |j| (inc.samples[j].t_ms, i, j)))
        .collect();
    events.sort();
    let mut latest: Vec<Option<&Sample>> = vec![None; incs.len()];
    let mut functions: BTreeSet<&str> = BTreeSet::new();
    let mut points: Vec<Point> = Vec::new();
    for (t, i, j) in events {
        let s = &incs[i].samples[j];
        latest[i] = Some(s);
        functions.extend(s.new_functions.iter().map(String::as_str));
        let now: Vec<&Sample> = latest.iter().flatten().copied().collect();
        let sum = |f: fn(&Sample) -> u64| now.iter().map(|s| f(s)).sum::<u64>();
        let max = |f: fn(&Sample) -> u64| now.iter().map(|s| f(s)).max().unwrap_or(0);
        let p = Point {
            t_ms: t,
            runs: sum(|s| s.runs),
            execs_per_sec: 0.0,
            corpus: max(|s| s.corpus.unwrap_or(0)),
            functions: (functions.len() as u64).max(max(|s| s.functions)),
            mm_pcs: max(|s| s.mm_pcs),
            replaced_pages: sum(|s| s.replaced_pages),
            findings: sum(|s| s.findings),
            harness_failures: sum(|s| s.harness_failures),
            boots: sum(|s| u64::from(s.boots)),
            restores: sum(|s| u64::from(s.restores)),
        };
        match points.last_mut() {
            Some(last) if last.t_ms == t => *last = p,
            _ => points.push(p),
        }
    }
    // Rates over a trailing window: per-sample rates of side-by-side workers do not add up.
    let mut from = 0;
    for k in 0..points.len() {
        while points[k].t_ms - points[from].t_ms > RATE_WINDOW_MS {
            from += 1;
        }
        let dt = points[k].t_ms - points[from].t_ms;
        // Over a few seconds a rate says more about sampling than about the workers.
        if dt < MIN_EVERY_MS * 2 {
            points[k].execs_per_sec = if k > 0 {
                points[k - 1].execs_per_sec
            } else {
                0.0
            };
        } else {
            points[k].execs_per_sec =
                points[k].runs.saturating_sub(points[from].runs) as f64 * 1000.0 / dt as f64;
        }
    }
    points
}

#[cfg(test)]
mod tests;
