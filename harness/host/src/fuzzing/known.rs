//! Known findings: signatures a kernel is known to produce today, with the reason, so that
//! campaigns and CI can keep fuzzing a kernel with a standing violation without stopping on it.
//! A known finding is still counted and shown (the campaign's summary, `run`'s verdict lines);
//! it only stops being a reason to fail.
//!
//! The file (`--known FILE`; shipped ones in `kernels/known/<line>.toml`):
//!
//! ```toml
//! [[finding]]
//! signature = "zone:*:soft-offline:*"   # `*` matches any run of characters
//! why = "soft_offline_page() migrates with alloc_migration_target(), which ignores the mask"
//! doc = "docs/findings/soft-offline.md"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shmemfuzz_core::oracle::Finding;

use super::sigpattern::glob_matches;

/// Why a known-findings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    #[error("reading the known-findings file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a known-findings file")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: entry {index} ({signature:?}) {problem}")]
    Entry {
        path: PathBuf,
        index: usize,
        signature: String,
        problem: &'static str,
    },
}

/// One known signature pattern and why it is known.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnownFinding {
    pub signature: String,
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    #[serde(default)]
    finding: Vec<KnownFinding>,
}

/// A set of known signature patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownFindings {
    pub entries: Vec<KnownFinding>,
}

impl KnownFindings {
    pub fn load(path: &Path) -> Result<KnownFindings, KnownError> {
        let text = std::fs::read_to_string(path).map_err(|source| KnownError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<KnownFindings, KnownError> {
        let file: KnownFile = toml::from_str(text).map_err(|source| KnownError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        for (index, e) in file.finding.iter().enumerate() {
            let problem = if e.signature.trim().is_empty() || e.signature.chars().all(|c| c == '*')
            {
                Some("matches everything: name the finding")
            } else if e.why.trim().is_empty() {
                Some("says not why it is known (`why = ...`)")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(KnownError::Entry {
                    path: path.to_path_buf(),
                    index,
                    signature: e.signature.clone(),
                    problem,
                });
            }
        }
        Ok(KnownFindings {
            entries: file.finding,
        })
    }

    /// These entries and one per signature of `found` (matched whole), known because an
    /// earlier incarnation of the campaign found it: what a campaign's later workers get.
    pub fn with_found<'a>(&self, found: impl IntoIterator<Item = &'a String>) -> KnownFindings {
        let mut entries = self.entries.clone();
        entries.extend(found.into_iter().map(|sig| {
            KnownFinding {
                signature: sig.clone(),
                why: "found earlier in this campaign (its bundle is in the campaign's bundles/)"
                    .to_string(),
                doc: None,
            }
        }));
        KnownFindings { entries }
    }

    /// The file text [`KnownFindings::parse`] reads back.
    pub fn to_toml(&self) -> String {
        toml::to_string(&KnownFile {
            finding: self.entries.clone(),
        })
        .expect("strings only")
    }

    /// The entry that makes `signature` known, if any.
    pub fn matching(&self, signature: &str) -> Option<&KnownFinding> {
        self.entries
            .iter()
            .find(|e| glob_matches(&e.signature, signature))
    }

    /// Splits one run's findings into (known, unknown), keeping their order. In a run whose
    /// known findings include a kernel report, what a BUG leaves behind counts as known too:
    /// the task's death (`signal:*`), taint D and no other bit (`taint:D`), and the Shmem
    /// the dead task never released (`leak:shmem`). A swap leak, another taint or anything
    /// else stays unknown.
    pub fn split<'f>(&self, findings: &'f [Finding]) -> (Vec<&'f Finding>, Vec<&'f Finding>) {
        let known_report = findings
            .iter()
            .any(|f| f.signature.starts_with("kernel:") && self.matching(&f.signature).is_some());
        let consequence = |sig: &str| {
            known_report && (sig.starts_with("signal:") || sig == "taint:D" || sig == "leak:shmem")
        };
        findings
            .iter()
            .partition(|f| self.matching(&f.signature).is_some() || consequence(&f.signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_signatures_only() {
        assert!(glob_matches(
            "zone:*:soft-offline:*",
            "zone:memfd:soft-offline:Normal"
        ));
        assert!(glob_matches(
            "zone:*:soft-offline:*",
            "zone:gem:soft-offline:Movable"
        ));
        assert!(!glob_matches(
            "zone:*:soft-offline:*",
            "zone:memfd:collapse:Normal"
        ));
        assert!(!glob_matches(
            "zone:memfd:collapse",
            "zone:memfd:collapse:Normal"
        ));
        assert!(glob_matches(
            "kernel:KERNEL_BUG:drm_gem_get_pages",
            "kernel:KERNEL_BUG:drm_gem_get_pages"
        ));
        assert!(!glob_matches("a*a", "a"));
        assert!(glob_matches("a*a", "aa"));
        assert!(glob_matches("*:Normal", "zone:memfd:collapse:Normal"));
    }

    #[test]
    fn only_what_a_known_bug_leaves_behind_counts_with_it() {
        use shmemfuzz_core::oracle::FindingKind;
        let k = KnownFindings::parse(
            "[[finding]]\nsignature = \"kernel:KERNEL_BUG:drm_gem_get_pages\"\nwhy = \"x\"\n",
            Path::new("k.toml"),
        )
        .expect("parses");
        let f = |kind, sig: &str| Finding::new(kind, sig, String::new(), None, String::new());
        let run = [
            f(FindingKind::Kernel, "KERNEL_BUG:drm_gem_get_pages"),
            f(FindingKind::Signal, "SIGSEGV:pin"),
            f(FindingKind::Taint, "D"),
            f(FindingKind::Leak, "shmem"),
            f(FindingKind::Leak, "swap"),
            f(FindingKind::Taint, "DW"),
        ];
        let (known, unknown) = k.split(&run);
        let sigs = |v: Vec<&Finding>| v.iter().map(|f| f.signature.clone()).collect::<Vec<_>>();
        assert_eq!(sigs(unknown), ["leak:swap", "taint:DW"]);
        assert_eq!(known.len(), 4);
        // Without the known report, nothing of it is known.
        let (known, _) = k.split(&run[1..]);
        assert!(known.is_empty());
    }

    #[test]
    fn found_signatures_join_the_known_ones_and_round_trip() {
        let path = Path::new("k.toml");
        let shipped = KnownFindings::parse(
            "[[finding]]\nsignature = \"zone:*:collapse:*\"\nwhy = \"khugepaged\"\ndoc = \"d.md\"\n",
            path,
        )
        .expect("parses");
        let found = ["zone:memfd:touch:Normal".to_string()];
        let k = shipped.with_found(&found);
        assert!(k.matching("zone:memfd:touch:Normal").is_some());
        assert!(
            k.matching("zone:memfd:touch:Normal:large").is_none(),
            "whole signatures"
        );
        assert!(k.matching("zone:gem:collapse:Normal").is_some());
        assert_eq!(
            KnownFindings::parse(&k.to_toml(), path).expect("reads back"),
            k
        );
    }

    #[test]
    fn entries_must_name_a_finding_and_say_why() {
        let p = Path::new("k.toml");
        let ok = KnownFindings::parse(
            "[[finding]]\nsignature = \"zone:*:collapse:*\"\nwhy = \"khugepaged\"\n",
            p,
        )
        .expect("parses");
        assert_eq!(ok.entries.len(), 1);
        for bad in [
            "[[finding]]\nsignature = \"*\"\nwhy = \"x\"\n",
            "[[finding]]\nsignature = \"zone:*\"\nwhy = \" \"\n",
            "[[finding]]\nsignature = \"zone:*\"\nwhy = \"x\"\nextra = 1\n",
            "[[finding]]\nwhy = \"x\"\n",
        ] {
            assert!(KnownFindings::parse(bad, p).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_files_parse_and_name_their_docs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/known");
        let mut n = 0;
        for e in std::fs::read_dir(&root).expect("kernels/known exists") {
            let path = e.expect("entry").path();
            let known = KnownFindings::load(&path).expect("a shipped file parses");
            assert!(!known.entries.is_empty(), "{}", path.display());
            for k in &known.entries {
                if let Some(doc) = &k.doc {
                    let doc = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../..")
                        .join(doc);
                    assert!(doc.is_file(), "{} names {}", path.display(), doc.display());
                }
            }
            n += 1;
        }
        assert!(n >= 2, "6.1 and 6.12 files");
    }
}
