//! Keeping a source tree patched with exactly the wanted series, in order.
//!
//! The tree remembers what it carries in `.shmemfuzz-patches/`: a copy of each applied patch
//! and `series.toml` (name and sha256, in order). A build that wants another series reverts
//! the applied patches after the longest common prefix (newest first, from the stored
//! copies, so an edited patch file can still be taken out) and applies the rest. Files the
//! patches do not touch keep their timestamps, so an out-of-tree build dir stays valid and
//! only the patched files rebuild.
//!
//! The tool is `patch -p1 --fuzz=0` (every context line must match: a planted regression
//! must land exactly where it was written), each patch dry-run first so a failing one
//! leaves nothing behind. It works on trees that are not git checkouts (Debian's
//! `linux-source-*`) as well as on checkouts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tools::{self, PATCH_TOOL};
use super::{KbuildError, KbuildEvent};

/// The tool and flags patches are applied with (recorded in reports).
pub const PATCH_COMMAND: &str = "patch -p1 --fuzz=0";
/// Directory inside the tree holding the applied series.
const STATE_DIR: &str = ".shmemfuzz-patches";
const SERIES: &str = "series.toml";

/// One patch of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchId {
    /// File name (`0001-shmem-planted-no-replace.patch`).
    pub name: String,
    /// sha256 of its content.
    pub sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Series {
    applied: Vec<PatchId>,
}

/// A patch to apply: its identity and text.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub id: PatchId,
    pub path: PathBuf,
    pub text: Vec<u8>,
}

/// Reads the patch files (in the given order).
pub(crate) fn read_series(paths: &[PathBuf]) -> Result<Vec<Wanted>, KbuildError> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read(p)
                .map_err(|e| KbuildError::io(format!("cannot read patch {}", p.display()), e))?;
            let name = p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
            Ok(Wanted {
                id: PatchId {
                    name,
                    sha256: hex::encode(Sha256::digest(&text)),
                },
                path: p.clone(),
                text,
            })
        })
        .collect()
}

/// How many leading patches `applied` and `wanted` have in common.
pub(crate) fn common_prefix(applied: &[PatchId], wanted: &[PatchId]) -> usize {
    applied
        .iter()
        .zip(wanted)
        .take_while(|(a, w)| a == w)
        .count()
}

/// The series applied to `tree` (empty for a tree never patched here).
pub(crate) fn applied(tree: &Path) -> Vec<PatchId> {
    std::fs::read_to_string(tree.join(STATE_DIR).join(SERIES))
        .ok()
        .and_then(|t| toml::from_str::<Series>(&t).ok())
        .map(|s| s.applied)
        .unwrap_or_default()
}

/// Makes `tree` carry exactly `wanted`, in order. Returns the applied series.
pub(crate) fn sync(
    tree: &Path,
    wanted: &[Wanted],
    progress: &dyn Fn(KbuildEvent),
) -> Result<Vec<PatchId>, KbuildError> {
    let state = tree.join(STATE_DIR);
    let mut current = applied(tree);
    let ids: Vec<PatchId> = wanted.iter().map(|w| w.id.clone()).collect();
    let keep = common_prefix(&current, &ids);
    if keep == current.len() && keep == ids.len() {
        return Ok(current);
    }
    tools::find(PATCH_TOOL)?;
    std::fs::create_dir_all(&state)
        .map_err(|e| KbuildError::io(format!("cannot create {}", state.display()), e))?;
    while current.len() > keep {
        let last = current.last().cloned().expect("longer than keep");
        progress(KbuildEvent::Patching {
            patch: last.name.clone(),
            revert: true,
        });
        let copy = state.join(stored_name(current.len() - 1, &last));
        patch(tree, &copy, true, true)
            .and_then(|()| patch(tree, &copy, true, false))
            .map_err(|e| KbuildError::TreeDirty {
                patch: last.name.clone(),
                tree: tree.to_path_buf(),
                output: tool_output(e),
            })?;
        let _ = std::fs::remove_file(&copy);
        current.pop();
        write_series(&state, &current)?;
    }
    for (i, w) in wanted.iter().enumerate().skip(keep) {
        progress(KbuildEvent::Patching {
            patch: w.id.name.clone(),
            revert: false,
        });
        let copy = state.join(stored_name(i, &w.id));
        std::fs::write(&copy, &w.text)
            .map_err(|e| KbuildError::io(format!("cannot write {}", copy.display()), e))?;
        if let Err(e) = patch(tree, &copy, false, true) {
            let _ = std::fs::remove_file(&copy);
            return Err(KbuildError::PatchFailed {
                patch: w.path.clone(),
                tree: tree.to_path_buf(),
                command: PATCH_COMMAND.to_string(),
                output: tool_output(e),
            });
        }
        patch(tree, &copy, false, false).map_err(|e| KbuildError::TreeDirty {
            patch: w.id.name.clone(),
            tree: tree.to_path_buf(),
            output: tool_output(e),
        })?;
        current.push(w.id.clone());
        write_series(&state, &current)?;
    }
    Ok(current)
}

/// Runs [`PATCH_COMMAND`] on `file` in `tree`: reverse (`-R`) or forward (`--forward`:
/// an already applied patch is an error, not a question), for real or as a dry run.
fn patch(tree: &Path, file: &Path, reverse: bool, dry_run: bool) -> Result<(), KbuildError> {
    let file = file.to_string_lossy();
    let mut args = vec!["-p1", "--fuzz=0", "--batch", "--no-backup-if-mismatch"];
    args.push(if reverse { "-R" } else { "--forward" });
    if dry_run {
        args.push("--dry-run");
    }
    args.extend(["-i", file.as_ref()]);
    tools::run(PATCH_TOOL, &args, Some(tree)).map(drop)
}

/// `NNNN-<sha256 prefix>-<name>`: position and content both in the name.
fn stored_name(index: usize, id: &PatchId) -> String {
    format!("{index:04}-{}-{}", &id.sha256[..12], id.name)
}

fn write_series(state: &Path, applied: &[PatchId]) -> Result<(), KbuildError> {
    let text = toml::to_string(&Series {
        applied: applied.to_vec(),
    })
    .map_err(|e| KbuildError::io("cannot encode the patch series", std::io::Error::other(e)))?;
    let path = state.join(SERIES);
    crate::files::write_atomic(&path, text.as_bytes())
        .map_err(|e| KbuildError::io(format!("cannot write {}", path.display()), e))
}

fn tool_output(e: KbuildError) -> String {
    match e {
        KbuildError::ToolFailed { output, .. } => output,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, sha: &str) -> PatchId {
        PatchId {
            name: name.into(),
            sha256: sha.into(),
        }
    }

    #[test]
    fn common_prefix_compares_name_and_content() {
        let a = [id("1", "aa"), id("2", "bb")];
        assert_eq!(common_prefix(&a, &a), 2);
        assert_eq!(common_prefix(&a, &[id("1", "aa")]), 1);
        assert_eq!(common_prefix(&a, &[id("1", "aa"), id("2", "cc")]), 1);
        assert_eq!(common_prefix(&a, &[id("x", "aa")]), 0);
        assert_eq!(common_prefix(&[], &a), 0);
    }

    const ORIG: &str = "one\ntwo\nthree\nfour\nfive\n";
    const P1: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";
    const P1_EDITED: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+Two\n three\n";
    const P2: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -3,3 +3,3 @@\n three\n-four\n+FOUR\n five\n";
    const BAD: &str = "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n zero\n-two\n+2\n";

    /// A temporary directory with `tree/f.txt` holding [`ORIG`].
    fn orig_tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(&tree).expect("mkdir");
        std::fs::write(tree.join("f.txt"), ORIG).expect("write");
        (tmp, tree)
    }

    fn patches(dir: &Path, list: &[(&str, &str)]) -> Vec<Wanted> {
        let paths: Vec<PathBuf> = list
            .iter()
            .map(|(name, text)| {
                let p = dir.join(name);
                std::fs::write(&p, text).expect("write patch");
                p
            })
            .collect();
        read_series(&paths).expect("read")
    }

    #[test]
    fn syncs_apply_revert_and_reapply_an_edited_patch() {
        tools::require(PATCH_TOOL);
        let tmp = tempfile::tempdir().expect("tempdir");
        let (tree, pdir) = (tmp.path().join("tree"), tmp.path().join("p"));
        std::fs::create_dir_all(&tree).expect("mkdir");
        std::fs::create_dir_all(&pdir).expect("mkdir");
        let f = tree.join("f.txt");
        std::fs::write(&f, ORIG).expect("write");
        let read = || std::fs::read_to_string(&f).expect("read");
        let quiet = |_: KbuildEvent| {};

        let both = patches(&pdir, &[("1.patch", P1), ("2.patch", P2)]);
        let got = sync(&tree, &both, &quiet).expect("apply");
        assert_eq!(got.len(), 2);
        assert_eq!(read(), "one\nTWO\nthree\nFOUR\nfive\n");
        // Same series again: nothing to do.
        assert_eq!(sync(&tree, &both, &quiet).expect("no-op"), got);

        // The first patch was edited in place: both come out, both go back in.
        let edited = patches(&pdir, &[("1.patch", P1_EDITED), ("2.patch", P2)]);
        sync(&tree, &edited, &quiet).expect("re-apply");
        assert_eq!(read(), "one\nTwo\nthree\nFOUR\nfive\n");

        // Fewer patches: the tail is reverted; none: the tree is pristine.
        sync(&tree, &edited[..1], &quiet).expect("drop one");
        assert_eq!(read(), "one\nTwo\nthree\nfour\nfive\n");
        sync(&tree, &[], &quiet).expect("drop all");
        assert_eq!(read(), ORIG);
        assert!(applied(&tree).is_empty());
    }

    #[test]
    fn a_patch_that_does_not_apply_changes_nothing() {
        tools::require(PATCH_TOOL);
        let (tmp, tree) = orig_tree();
        let list = patches(tmp.path(), &[("1.patch", P1), ("bad.patch", BAD)]);
        let err = sync(&tree, &list, &|_| {}).expect_err("bad patch");
        assert!(
            matches!(&err, KbuildError::PatchFailed { patch, .. } if patch.ends_with("bad.patch")),
            "{err}"
        );
        assert!(err.to_string().contains("refresh the patch"), "{err}");
        // The good one stays applied and recorded; the bad one left no trace.
        assert_eq!(applied(&tree), vec![list[0].id.clone()]);
        let text = std::fs::read_to_string(tree.join("f.txt")).expect("read");
        assert_eq!(text, "one\nTWO\nthree\nfour\nfive\n");
    }

    #[test]
    fn a_tree_changed_by_hand_is_reported() {
        tools::require(PATCH_TOOL);
        let (tmp, tree) = orig_tree();
        let list = patches(tmp.path(), &[("1.patch", P1)]);
        sync(&tree, &list, &|_| {}).expect("apply");
        std::fs::write(tree.join("f.txt"), "rewritten\n").expect("write");
        let err = sync(&tree, &[], &|_| {}).expect_err("cannot revert");
        assert!(matches!(err, KbuildError::TreeDirty { .. }), "{err}");
        assert!(err.to_string().contains("delete"), "{err}");
    }
}
