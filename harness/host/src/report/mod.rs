//! `shmemfuzz report DIR`: a campaign's output directory as static HTML — `DIR/report.html`
//! and one page per finding under `DIR/report/` — with plots as inline SVG, no server, no
//! script and no external assets.
//!
//! Read from `DIR`: `stats/*.jsonl` (the history, [`crate::fuzzing::history`]),
//! `stats/campaign.json` ([`CampaignMeta`]), `bundles/<signature>/` (and a minimized
//! `<signature>.min/` beside it). Every part that is missing is said to be, never an error:
//! the report of a campaign still running, or of a directory without a history, is a report.
//!
//! - [`plot`]: the charts; [`html`]: escaping and the page shell; [`finding`]: a finding's page.

pub mod finding;
pub mod html;
pub mod plot;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::bundle::dir_name;
use crate::fuzzing::campaign::CampaignMeta;
use crate::fuzzing::history::{now_ms, History, Point};
use html::{esc, mmss, row, table};
use plot::Series;

/// Which figure of a [`Point`] a chart plots.
type Figure = fn(&Point) -> f64;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0} is not a directory")]
    NotADir(PathBuf),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing the chart {0}")]
    Plot(String),
}

/// A finding as the report shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FindingRow {
    pub signature: String,
    /// `bundles/<dir>` when it exists.
    pub bundle: Option<PathBuf>,
    /// ms since the campaign's start.
    pub first_ms: Option<u64>,
    /// Worker incarnations that hit it.
    pub hits: u64,
    /// The bundle's kernel release (or id).
    pub kernel: Option<String>,
    /// The bundle's recorded runs and hits.
    pub recorded: Option<(u64, u64)>,
}

/// Everything the main page shows.
#[derive(Clone, Debug, Default)]
pub struct Campaign {
    pub dir: PathBuf,
    pub meta: Option<CampaignMeta>,
    pub history: History,
    pub findings: Vec<FindingRow>,
}

impl Campaign {
    /// Reads what there is under `dir`.
    pub fn load(dir: &Path) -> Campaign {
        let meta: Option<CampaignMeta> = std::fs::read(dir.join("stats/campaign.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut meta = meta;
        if let Some(m) = meta.as_mut().filter(|m| m.kernel.is_none()) {
            // The catalog's default: the workers' totals name the kernel they resolved.
            m.kernel = worker_kernel(&dir.join("stats"));
        }
        let history = History::load(&dir.join("stats"));
        let start = meta
            .as_ref()
            .map(|m| m.start_ms)
            .or(history.start_ms())
            .unwrap_or(0);
        let mut rows: BTreeMap<String, FindingRow> = BTreeMap::new();
        for (sig, seen) in &history.findings {
            rows.insert(
                sig.clone(),
                FindingRow {
                    signature: sig.clone(),
                    first_ms: Some(seen.first_ms.saturating_sub(start)),
                    hits: seen.hits,
                    ..FindingRow::default()
                },
            );
        }
        let bundles = dir.join("bundles");
        for entry in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with(".min") || !path.is_dir() {
                continue;
            }
            let manifest: serde_json::Value = std::fs::read(path.join("bundle.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let sig = manifest["signature"]
                .as_str()
                .map(String::from)
                .or_else(|| rows.keys().find(|s| dir_name(s) == name).cloned())
                .unwrap_or_else(|| name.clone());
            let r = rows.entry(sig.clone()).or_insert_with(|| FindingRow {
                signature: sig,
                ..FindingRow::default()
            });
            r.bundle = Some(path);
            r.kernel = manifest["kernel"]["release"]
                .as_str()
                .or(manifest["kernel"]["id"].as_str())
                .map(String::from);
            if let (Some(runs), Some(hits)) = (manifest["runs"].as_u64(), manifest["hits"].as_u64())
            {
                r.recorded = Some((runs, hits));
            }
        }
        Campaign {
            dir: dir.to_path_buf(),
            meta,
            history,
            findings: rows.into_values().collect(),
        }
    }

    fn start_ms(&self) -> u64 {
        self.meta
            .as_ref()
            .map(|m| m.start_ms)
            .or(self.history.start_ms())
            .unwrap_or(0)
    }

    /// Points of every worker and the total as chart series of `f`.
    fn series(&self, f: Figure) -> Vec<Series> {
        let start = self.start_ms();
        let line = |points: &[Point]| -> Vec<(f64, f64)> {
            points
                .iter()
                .map(|p| (p.t_ms.saturating_sub(start) as f64 / 60_000.0, f(p)))
                .collect()
        };
        let mut out: Vec<Series> = self
            .history
            .workers
            .iter()
            .map(|(w, points)| Series {
                name: format!("worker {w}"),
                points: line(points),
                total: false,
            })
            .collect();
        if out.len() > 1 || out.is_empty() {
            out.push(Series {
                name: "total".into(),
                points: line(&self.history.total),
                total: true,
            });
        }
        out
    }
}

/// Writes `dir/report.html` and `dir/report/<finding>.html`; returns the main page's path.
pub fn write(dir: &Path) -> Result<PathBuf, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::NotADir(dir.to_path_buf()));
    }
    let campaign = Campaign::load(dir);
    let pages = dir.join("report");
    for f in &campaign.findings {
        let page = finding::page(f);
        write_atomic(
            &pages.join(format!("{}.html", dir_name(&f.signature))),
            &page,
        )?;
    }
    let main = dir.join("report.html");
    write_atomic(&main, &main_page(&campaign)?)?;
    Ok(main)
}

/// Temporary file, then rename ([`crate::files::write_atomic`]): a browser reloading never
/// sees half a page.
fn write_atomic(path: &Path, text: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    crate::files::write_atomic(path, text.as_bytes()).map_err(err)
}

/// The main page's HTML.
pub fn main_page(c: &Campaign) -> Result<String, ReportError> {
    let mut b = String::new();
    let h = &c.history;
    let _ = write!(
        b,
        "<h1>shmemfuzz campaign: {}</h1>\n<p>",
        esc(&c.dir.display().to_string())
    );
    if let Some(m) = &c.meta {
        let _ = write!(
            b,
            "kernel <b>{}</b>{} · {} worker(s) · {} planned · started {} UTC<br>",
            esc(m.kernel.as_deref().unwrap_or("the catalog's default")),
            if m.append.is_empty() {
                String::new()
            } else {
                format!(" [{}]", esc(&m.append.join(" ")))
            },
            m.jobs,
            esc(
                &humantime::format_duration(std::time::Duration::from_secs(m.duration_s))
                    .to_string()
            ),
            esc(&rfc3339(m.start_ms)),
        );
    }
    let _ = write!(b, "report written {} UTC</p>", esc(&rfc3339(now_ms())));
    let last = h.total.last().cloned().unwrap_or_default();
    let span = last.t_ms.saturating_sub(c.start_ms());
    let totals = [
        ("executions", last.runs.to_string()),
        ("sampled time", mmss(span)),
        (
            "executions/s (whole campaign)",
            format!("{:.2}", last.runs as f64 * 1000.0 / span.max(1) as f64),
        ),
        ("corpus", last.corpus.to_string()),
        (
            "mm functions reached",
            h.functions.len().max(last.functions as usize).to_string(),
        ),
        ("mm/ PCs (KCOV)", last.mm_pcs.to_string()),
        (
            "DMA32 pages back from swap at a new PFN",
            last.replaced_pages.to_string(),
        ),
        ("findings (distinct)", c.findings.len().to_string()),
        ("harness failures", last.harness_failures.to_string()),
        (
            "boots / restores",
            format!("{} / {}", last.boots, last.restores),
        ),
        (
            "worker incarnations",
            h.incarnations
                .iter()
                .map(|(w, n)| format!("w{w}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let rows: String = totals
        .iter()
        .map(|(k, v)| row(&[esc(k), format!("<span class=\"mono\">{}</span>", esc(v))]))
        .collect();
    let _ = write!(b, "<h2>Totals</h2>{}", table(&["", "value"], &rows));
    if h.skipped > 0 {
        let _ = write!(
            b,
            "<p>{} unreadable history line(s) skipped (a worker killed mid-write).</p>",
            h.skipped
        );
    }
    b.push_str("<h2>Over time</h2><div class=\"plots\">");
    let charts: [(&str, &str, Figure); 5] = [
        ("executions per second", "runs/s (1-min window)", |p| {
            p.execs_per_sec
        }),
        ("mm functions reached", "functions", |p| p.functions as f64),
        ("corpus", "inputs", |p| p.corpus as f64),
        ("replaced pages", "DMA32 pages at a new PFN", |p| {
            p.replaced_pages as f64
        }),
        ("mm/ PCs (KCOV)", "PCs", |p| p.mm_pcs as f64),
    ];
    for (title, y, f) in charts {
        if title.starts_with("mm/") && last.mm_pcs == 0 {
            b.push_str(&html::absent(
                "mm/ PCs (this kernel has no KCOV: none counted)",
            ));
            continue;
        }
        let _ = write!(
            b,
            "<figure>{}</figure>",
            plot::chart(title, y, &c.series(f))?
        );
    }
    b.push_str("</div>");
    b.push_str("<h2>Findings</h2>");
    if c.findings.is_empty() {
        b.push_str("<p>No findings.</p>");
    } else {
        let runs = last.runs.max(1) as f64;
        let rows: String = c
            .findings
            .iter()
            .map(|f| {
                row(&[
                    format!(
                        "<a href=\"report/{}.html\" class=\"mono\">{}</a>",
                        esc(&dir_name(&f.signature)),
                        esc(&f.signature)
                    ),
                    f.first_ms.map_or_else(|| "?".into(), mmss),
                    f.hits.to_string(),
                    format!("{:.2}", f.hits as f64 * 1000.0 / runs),
                    f.recorded
                        .map_or_else(|| "?".into(), |(r, h)| format!("{h}/{r}")),
                    esc(f.kernel.as_deref().unwrap_or("?")),
                ])
            })
            .collect();
        b.push_str(&table(
            &[
                "signature",
                "first seen (min:s)",
                "hits",
                "per 1000 executions",
                "bundle reproduced",
                "kernel",
            ],
            &rows,
        ));
    }
    let _ = write!(b, "<h2>mm functions reached ({})</h2>", h.functions.len());
    if h.functions.is_empty() {
        b.push_str(&html::absent("function coverage in the history"));
    } else {
        let start = c.start_ms();
        let mut by_time: Vec<(&String, &u64)> = h.functions.iter().collect();
        by_time.sort_by_key(|(name, t)| (**t, *name));
        let rows: String = by_time
            .iter()
            .map(|(name, t)| {
                row(&[
                    format!("<span class=\"mono\">{}</span>", esc(name)),
                    mmss(t.saturating_sub(start)),
                ])
            })
            .collect();
        b.push_str(&table(&["function", "first reached (min:s)"], &rows));
    }
    Ok(html::page("shmemfuzz campaign report", &b))
}

/// The kernel a worker's totals (`stats/w<N>-<k>.json`) name.
fn worker_kernel(stats: &Path) -> Option<String> {
    std::fs::read_dir(stats)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| crate::fuzzing::stats::WorkerStats::read(&e.path()))
        .map(|s| s.kernel)
        .find(|k| !k.is_empty())
}

/// `ms` since the epoch as RFC 3339 (seconds).
fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

#[cfg(test)]
mod tests;
