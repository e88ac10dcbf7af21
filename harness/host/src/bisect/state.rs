//! The bisection's work directory: `state.json`, rewritten atomically after every step, and
//! `bisect.log`, appended to. Running the same command again with the same work directory
//! resumes from `state.json`.
//!
//! ```text
//! state.json  {"format": "shmemfuzz-bisect", "version": 1,
//!              "key": {mode, source, good, bad, paths, repro_sha256, runs, config},
//!              "revs": [{"rev": <commit or version>, "label": <subject>}, ...] oldest first,
//!              "steps": [{"index", "verdict": {...}, "image_sha256", "tally",
//!                         "reused_from", "build_secs", "replay_secs"}, ...] in test order,
//!              "outcome": null or the final Outcome}
//! bisect.log  one line per event, for people
//! ```
//! `key` says which bisection this is: a state file whose key differs is refused rather than
//! mixed into another bisection's answer. The file's own types, its version and what is
//! checked on read are in [`crate::ondisk::bisect`]; the types here are the runtime ones.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::plan::Outcome;
use super::verdict::Verdict;
use super::BisectError;
use crate::ondisk::bisect::{STATE_FORMAT, STATE_VERSION};
use crate::ondisk::OnDiskError;
use crate::reproduce::Tally;

pub const STATE_FILE: &str = "state.json";
pub const LOG_FILE: &str = "bisect.log";

/// What makes two bisections the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// `git` or `debian`.
    pub mode: String,
    /// The repository (canonical path) or the Debian line.
    pub source: String,
    pub good: String,
    pub bad: String,
    pub paths: Vec<String>,
    /// sha256 of the reproducer's program text and signature.
    pub repro_sha256: String,
    pub runs: u32,
    /// The config fragments' hash (git mode; empty for Debian kernels), followed by
    /// ` every` when every revision is tested.
    pub config: String,
}

/// One revision of the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rev {
    /// Full commit id, or the catalog id of a Debian kernel.
    pub rev: String,
    /// Commit subject or kernel description.
    pub label: String,
}

/// One tested revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Index into `revs`.
    pub index: usize,
    pub verdict: Verdict,
    /// sha256 of the bzImage tested (none when it did not build).
    pub image_sha256: Option<String>,
    /// The replays (none when it did not build or boot, or the verdict was reused).
    pub tally: Option<Tally>,
    /// The revision whose identical image's verdict this one reused.
    pub reused_from: Option<String>,
    pub build_secs: f64,
    pub replay_secs: f64,
}

/// What `state.json` holds, in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct StateFile {
    pub format: String,
    pub version: u32,
    pub key: Key,
    pub revs: Vec<Rev>,
    pub steps: Vec<Step>,
    pub outcome: Option<Outcome>,
}

pub(crate) use crate::ondisk::bisect::{decode, encode};

/// A bisection's persisted state, tied to its work directory.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    file: StateFile,
    /// Steps that were in the file when it was opened.
    pub resumed_steps: usize,
}

impl State {
    /// Opens the state in `dir` (created if missing): resumes when `state.json` is there
    /// with the same key, starts afresh (with `revs`) when it is not, or when `restart`.
    pub fn open(dir: &Path, key: Key, revs: Vec<Rev>, restart: bool) -> Result<Self, BisectError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BisectError::io(format!("cannot create {}", dir.display()), e))?;
        let path = dir.join(STATE_FILE);
        let fresh = StateFile {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            key,
            revs,
            steps: Vec::new(),
            outcome: None,
        };
        // Bounded like every file shmemfuzz reads back: a regular file of at most JSON_MAX.
        let file = match crate::bounded::read_text(&path, crate::bounded::JSON_MAX) {
            Ok(text) if !restart => {
                let old = decode(&text).map_err(|e| BisectError::State {
                    path: path.clone(),
                    message: match e {
                        OnDiskError::TooNew { .. } => format!("{e} (or pass --restart)"),
                        _ => format!(
                            "not a bisection state file this shmemfuzz reads ({e}); remove it \
                             or pass --restart"
                        ),
                    },
                })?;
                let what = mismatch(&old.key, &fresh.key)
                    .or_else(|| (old.revs != fresh.revs).then(|| "the list of revisions".into()));
                if let Some(what) = what {
                    return Err(BisectError::StateMismatch { path, what });
                }
                old
            }
            Ok(_) => fresh,
            Err(e) if e.is_not_found() => fresh,
            Err(e) => {
                return Err(BisectError::State {
                    path,
                    message: format!("{e}; remove it or pass --restart"),
                })
            }
        };
        let resumed_steps = file.steps.len();
        let state = State {
            dir: dir.to_path_buf(),
            file,
            resumed_steps,
        };
        state.save()?;
        Ok(state)
    }

    pub fn revs(&self) -> &[Rev] {
        &self.file.revs
    }

    pub fn steps(&self) -> &[Step] {
        &self.file.steps
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        self.file.outcome.as_ref()
    }

    /// The verdicts so far, by index.
    pub fn verdicts(&self) -> BTreeMap<usize, Verdict> {
        self.file
            .steps
            .iter()
            .map(|s| (s.index, s.verdict.clone()))
            .collect()
    }

    /// An earlier step that tested the same image (and got a verdict from replays).
    pub fn same_image(&self, sha: &str) -> Option<&Step> {
        self.file
            .steps
            .iter()
            .find(|s| s.image_sha256.as_deref() == Some(sha) && s.tally.is_some())
    }

    /// Records a step and saves.
    pub fn push(&mut self, step: Step) -> Result<(), BisectError> {
        self.file.steps.push(step);
        self.save()
    }

    /// Records the end and saves.
    pub fn finish(&mut self, outcome: Outcome) -> Result<(), BisectError> {
        self.file.outcome = Some(outcome);
        self.save()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a line to `bisect.log` (best effort: the log is for people).
    pub fn log(&self, line: &str) {
        let path = self.dir.join(LOG_FILE);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Writes `state.json` atomically (a temporary file renamed over it).
    fn save(&self) -> Result<(), BisectError> {
        let path = self.dir.join(STATE_FILE);
        let text = encode(&self.file).map_err(|e| BisectError::State {
            path: path.clone(),
            message: format!("cannot encode: {e}"),
        })?;
        crate::files::write_atomic(&path, text.as_bytes())
            .map_err(|e| BisectError::io(format!("cannot write {}", path.display()), e))
    }
}

/// The first field in which two keys differ.
fn mismatch(old: &Key, new: &Key) -> Option<String> {
    let fields = [
        ("mode", old.mode != new.mode),
        ("source", old.source != new.source),
        ("--good", old.good != new.good),
        ("--bad", old.bad != new.bad),
        ("the paths", old.paths != new.paths),
        ("the reproducer", old.repro_sha256 != new.repro_sha256),
        ("--runs", old.runs != new.runs),
        ("the config fragments", old.config != new.config),
    ];
    fields
        .iter()
        .find(|(_, d)| *d)
        .map(|(w, _)| (*w).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key() -> Key {
        Key {
            mode: "git".into(),
            source: "/repo".into(),
            good: "v1".into(),
            bad: "v2".into(),
            paths: vec![],
            repro_sha256: "ab".into(),
            runs: 3,
            config: "cfg".into(),
        }
    }

    fn revs() -> Vec<Rev> {
        ["a", "b", "c"]
            .iter()
            .map(|r| Rev {
                rev: r.to_string(),
                label: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_saved_state_resumes_and_another_bisection_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut s = State::open(d.path(), key(), revs(), false).expect("open");
        assert_eq!(s.resumed_steps, 0);
        s.push(Step {
            index: 2,
            verdict: Verdict::Bad,
            image_sha256: Some("img".into()),
            tally: Some(Tally {
                runs: 3,
                hits: 2,
                clean: 1,
                unrelated: vec![],
            }),
            reused_from: None,
            build_secs: 1.0,
            replay_secs: 2.0,
        })
        .expect("push");
        drop(s);
        let s = State::open(d.path(), key(), revs(), false).expect("reopen");
        assert_eq!(s.resumed_steps, 1);
        assert_eq!(s.verdicts().get(&2), Some(&Verdict::Bad));
        assert!(s.same_image("img").is_some());
        let other = Key { runs: 5, ..key() };
        let e = State::open(d.path(), other.clone(), revs(), false).expect_err("mismatch");
        assert!(e.to_string().contains("--runs differs"), "{e}");
        let s = State::open(d.path(), other, revs(), true).expect("restart");
        assert_eq!(s.resumed_steps, 0);
    }

    #[test]
    fn a_state_file_that_is_not_a_regular_file_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join(STATE_FILE)).expect("mkdir");
        let e = State::open(d.path(), key(), revs(), false).expect_err("a directory");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_corrupt_state_file_is_named() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join(STATE_FILE), "{").expect("write");
        let e = State::open(d.path(), key(), revs(), false).expect_err("corrupt");
        assert!(e.to_string().contains("--restart"), "{e}");
    }
}
