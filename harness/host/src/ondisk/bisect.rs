//! A bisection's `state.json`, version 1: [`StateV1`], the on-disk twin of
//! `bisect::state::StateFile` and the types it holds (key, revisions, steps with their
//! verdicts and tallies, the outcome).
//!
//! Checked on read ([`decode`]), besides the shape (`deny_unknown_fields` everywhere):
//! - `format` is `shmemfuzz-bisect` and `version` at most [`STATE_VERSION`] (a newer one is
//!   refused before the rest is parsed; `version` is required, as every state file ever
//!   written has one);
//! - a step's `index` is below the number of revisions;
//! - a step's verdict carries exactly its fields (`reason` for `build-failed` and `no-boot`,
//!   `signatures` for `unrelated`, nothing for `good` and `bad`);
//! - a tally has `hits ≤ runs`, `clean ≤ runs` and `hits + clean ≤ runs`;
//! - `build_secs` and `replay_secs` are finite and not negative;
//! - every revision the outcome names is one of `revs`.

use serde::{Deserialize, Serialize};

use super::OnDiskError;
use crate::bisect::plan::Outcome;
use crate::bisect::state::{Key, Rev, StateFile, Step};
use crate::bisect::verdict::Verdict;
use crate::reproduce::Tally;

/// `state.json`'s `format`.
pub const STATE_FORMAT: &str = "shmemfuzz-bisect";
/// The state version this harness writes and the newest it reads.
pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateV1 {
    pub format: String,
    pub version: u32,
    pub key: KeyV1,
    /// Oldest first.
    pub revs: Vec<RevV1>,
    /// In test order.
    pub steps: Vec<StepV1>,
    pub outcome: Option<OutcomeV1>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyV1 {
    pub mode: String,
    pub source: String,
    pub good: String,
    pub bad: String,
    pub paths: Vec<String>,
    pub repro_sha256: String,
    pub runs: u32,
    pub config: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevV1 {
    pub rev: String,
    pub label: String,
}

/// One tested revision; its verdict is spread over `verdict`, `reason` and `signatures`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepV1 {
    /// Into `revs`.
    pub index: usize,
    /// `good`, `bad`, `build-failed`, `no-boot` or `unrelated`.
    pub verdict: String,
    /// For `build-failed` and `no-boot` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `unrelated` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<String>>,
    pub image_sha256: Option<String>,
    pub tally: Option<TallyV1>,
    pub reused_from: Option<String>,
    pub build_secs: f64,
    pub replay_secs: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TallyV1 {
    pub runs: u32,
    pub hits: u32,
    pub clean: u32,
    pub unrelated: Vec<String>,
}

/// A verdict inside the outcome (`end-skipped`): `{"verdict": "no-boot", "reason": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case", deny_unknown_fields)]
pub enum VerdictV1 {
    Good,
    Bad,
    BuildFailed { reason: String },
    NoBoot { reason: String },
    Unrelated { signatures: Vec<String> },
}

/// `{"outcome": "first-bad", "rev": ...}`, ...
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OutcomeV1 {
    FirstBad { rev: String },
    OneOf { revs: Vec<String> },
    BadEndGood { rev: String },
    GoodEndBad { rev: String },
    EndSkipped { rev: String, verdict: VerdictV1 },
}

impl From<&Verdict> for VerdictV1 {
    fn from(v: &Verdict) -> Self {
        match v.clone() {
            Verdict::Good => VerdictV1::Good,
            Verdict::Bad => VerdictV1::Bad,
            Verdict::BuildFailed { reason } => VerdictV1::BuildFailed { reason },
            Verdict::NoBoot { reason } => VerdictV1::NoBoot { reason },
            Verdict::Unrelated { signatures } => VerdictV1::Unrelated { signatures },
        }
    }
}

impl From<VerdictV1> for Verdict {
    fn from(v: VerdictV1) -> Self {
        match v {
            VerdictV1::Good => Verdict::Good,
            VerdictV1::Bad => Verdict::Bad,
            VerdictV1::BuildFailed { reason } => Verdict::BuildFailed { reason },
            VerdictV1::NoBoot { reason } => Verdict::NoBoot { reason },
            VerdictV1::Unrelated { signatures } => Verdict::Unrelated { signatures },
        }
    }
}

impl From<&StateFile> for StateV1 {
    fn from(f: &StateFile) -> Self {
        StateV1 {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            key: KeyV1 {
                mode: f.key.mode.clone(),
                source: f.key.source.clone(),
                good: f.key.good.clone(),
                bad: f.key.bad.clone(),
                paths: f.key.paths.clone(),
                repro_sha256: f.key.repro_sha256.clone(),
                runs: f.key.runs,
                config: f.key.config.clone(),
            },
            revs: f
                .revs
                .iter()
                .map(|r| RevV1 {
                    rev: r.rev.clone(),
                    label: r.label.clone(),
                })
                .collect(),
            steps: f.steps.iter().map(StepV1::from).collect(),
            outcome: f.outcome.as_ref().map(|o| match o.clone() {
                Outcome::FirstBad { rev } => OutcomeV1::FirstBad { rev },
                Outcome::OneOf { revs } => OutcomeV1::OneOf { revs },
                Outcome::BadEndGood { rev } => OutcomeV1::BadEndGood { rev },
                Outcome::GoodEndBad { rev } => OutcomeV1::GoodEndBad { rev },
                Outcome::EndSkipped { rev, verdict } => OutcomeV1::EndSkipped {
                    rev,
                    verdict: VerdictV1::from(&verdict),
                },
            }),
        }
    }
}

impl From<&Step> for StepV1 {
    fn from(s: &Step) -> Self {
        let (verdict, reason, signatures) = match s.verdict.clone() {
            Verdict::Good => ("good", None, None),
            Verdict::Bad => ("bad", None, None),
            Verdict::BuildFailed { reason } => ("build-failed", Some(reason), None),
            Verdict::NoBoot { reason } => ("no-boot", Some(reason), None),
            Verdict::Unrelated { signatures } => ("unrelated", None, Some(signatures)),
        };
        StepV1 {
            index: s.index,
            verdict: verdict.into(),
            reason,
            signatures,
            image_sha256: s.image_sha256.clone(),
            tally: s.tally.as_ref().map(|t| TallyV1 {
                runs: t.runs,
                hits: t.hits,
                clean: t.clean,
                unrelated: t.unrelated.clone(),
            }),
            reused_from: s.reused_from.clone(),
            build_secs: s.build_secs,
            replay_secs: s.replay_secs,
        }
    }
}

impl StepV1 {
    fn check(self, i: usize, n_revs: usize) -> Result<Step, OnDiskError> {
        let at = format!("step {i} (revision {})", self.index);
        let bad = |why: String| Err(OnDiskError::out_of_range(at.clone(), why));
        if self.index >= n_revs {
            return bad(format!("index {} but {n_revs} revisions", self.index));
        }
        let verdict = match (self.verdict.as_str(), self.reason, self.signatures) {
            ("good", None, None) => Verdict::Good,
            ("bad", None, None) => Verdict::Bad,
            ("build-failed", Some(reason), None) => Verdict::BuildFailed { reason },
            ("no-boot", Some(reason), None) => Verdict::NoBoot { reason },
            ("unrelated", None, Some(signatures)) => Verdict::Unrelated { signatures },
            (v, r, s) => {
                return bad(format!(
                    "verdict `{v}` with{} a reason and with{} signatures (good and bad have \
                     neither, build-failed and no-boot a reason, unrelated signatures)",
                    if r.is_some() { "" } else { "out" },
                    if s.is_some() { "" } else { "out" },
                ))
            }
        };
        if let Some(t) = &self.tally {
            if t.hits > t.runs
                || t.clean > t.runs
                || u64::from(t.hits) + u64::from(t.clean) > u64::from(t.runs)
            {
                return bad(format!(
                    "tally of {} hits and {} clean in {} runs (hits + clean ≤ runs)",
                    t.hits, t.clean, t.runs
                ));
            }
        }
        for (name, secs) in [
            ("build_secs", self.build_secs),
            ("replay_secs", self.replay_secs),
        ] {
            if !secs.is_finite() || secs < 0.0 {
                return bad(format!("{name} is {secs}, not a duration"));
            }
        }
        Ok(Step {
            index: self.index,
            verdict,
            image_sha256: self.image_sha256,
            tally: self.tally.map(|t| Tally {
                runs: t.runs,
                hits: t.hits,
                clean: t.clean,
                unrelated: t.unrelated,
            }),
            reused_from: self.reused_from,
            build_secs: self.build_secs,
            replay_secs: self.replay_secs,
        })
    }
}

impl TryFrom<StateV1> for StateFile {
    type Error = OnDiskError;

    fn try_from(s: StateV1) -> Result<Self, OnDiskError> {
        let revs: Vec<Rev> = s
            .revs
            .into_iter()
            .map(|r| Rev {
                rev: r.rev,
                label: r.label,
            })
            .collect();
        let steps = s
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| step.check(i, revs.len()))
            .collect::<Result<_, _>>()?;
        let outcome = s.outcome.map(|o| match o {
            OutcomeV1::FirstBad { rev } => Outcome::FirstBad { rev },
            OutcomeV1::OneOf { revs } => Outcome::OneOf { revs },
            OutcomeV1::BadEndGood { rev } => Outcome::BadEndGood { rev },
            OutcomeV1::GoodEndBad { rev } => Outcome::GoodEndBad { rev },
            OutcomeV1::EndSkipped { rev, verdict } => Outcome::EndSkipped {
                rev,
                verdict: verdict.into(),
            },
        });
        let named: Vec<&String> = match &outcome {
            Some(Outcome::OneOf { revs }) => revs.iter().collect(),
            Some(
                Outcome::FirstBad { rev }
                | Outcome::BadEndGood { rev }
                | Outcome::GoodEndBad { rev }
                | Outcome::EndSkipped { rev, .. },
            ) => vec![rev],
            None => vec![],
        };
        if let Some(r) = named.iter().find(|r| !revs.iter().any(|x| &&x.rev == *r)) {
            return Err(OnDiskError::out_of_range(
                "outcome",
                format!("names revision `{r}`, which is not among the revisions"),
            ));
        }
        Ok(StateFile {
            format: s.format,
            version: s.version,
            key: Key {
                mode: s.key.mode,
                source: s.key.source,
                good: s.key.good,
                bad: s.key.bad,
                paths: s.key.paths,
                repro_sha256: s.key.repro_sha256,
                runs: s.key.runs,
                config: s.key.config,
            },
            revs,
            steps,
            outcome,
        })
    }
}

/// `state.json`'s text for `file`.
pub fn encode(file: &StateFile) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&StateV1::from(file))
}

/// Just enough of any version's `state.json` to tell which it is.
#[derive(Deserialize)]
struct Header {
    format: serde_json::Value,
    version: serde_json::Value,
}

/// Reads `state.json`'s text: the format and version first, then the rest, checked.
pub fn decode(text: &str) -> Result<StateFile, OnDiskError> {
    let h: Header = serde_json::from_str(text)?;
    if h.format != STATE_FORMAT {
        return Err(OnDiskError::WrongFormat {
            expected: STATE_FORMAT,
            found: h.format.to_string(),
        });
    }
    let version = h.version.as_u64().ok_or_else(|| {
        OnDiskError::out_of_range("version", format!("{} is not a version number", h.version))
    })?;
    OnDiskError::check_version("bisection state", version, STATE_VERSION)?;
    let state: StateV1 = serde_json::from_str(text)?;
    StateFile::try_from(state)
}
