//! The data files shmemfuzz reads besides its own code — `kernels/catalog.toml`, the config
//! fragments (`kernels/configs/`), the planted regressions (`kernels/regressions/`), the
//! known-findings files (`kernels/known/`), the mock driver's sources (`kernels/gma500_mock/`)
//! and the example programs (`examples/`) — and where they come from.
//!
//! Every binary carries a copy ([`FILES`], a table `build.rs` writes at build time), so an
//! installed `shmemfuzz` (`cargo install --path harness/host`) works with no source tree. In
//! order, the data comes from ([`Origin::locate`]):
//! 1. `SHMEMFUZZ_ROOT`, a source tree named explicitly;
//! 2. the source tree the binary was built from, if it is still there and still a shmemfuzz
//!    checkout (what `cargo run` and the tests use: edits to the tree take effect at once);
//! 3. else the copy in the binary.
//!
//! A tree (1 or 2) is also where the defaults that write go (`fuzz/corpus/shmem_ops`,
//! `fuzz/findings`, the fuzz target's build, the cache in `<tree>/.cache`); a tree given by
//! `SHMEMFUZZ_ROOT` that holds no `kernels/catalog.toml` keeps that role and takes its data
//! from the copy. Without a tree those commands ask for their paths, and the cache defaults to
//! `$XDG_CACHE_HOME/shmemfuzz` or `~/.cache/shmemfuzz` ([`crate::kernels::cachedir::cache_root`]).
//!
//! What needs only contents reads the copy in memory ([`embedded`]: the catalog); what needs
//! files on disk (module builds copy a directory of sources, kernel builds take fragment and
//! patch paths, `--known` and `run` take paths) gets them from [`materialize`], which writes
//! the copy once into `<cache>/data/<content hash>/` and reuses it after checking every file
//! still holds what the binary carries (a file changed there is written again; a binary with
//! other data gets another directory).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The files the binary carries: (path relative to the source tree, contents), sorted by path.
pub static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/data_files.rs"));

/// The mock driver's uapi header, pasted into exported C (the benchmark's floor, `export-c`,
/// a finding bundle's `repro.c`).
pub const MOCK_UAPI_HEADER: &str =
    include_str!("../../../../kernels/gma500_mock/include/uapi/gma500_mock_drm.h");

/// Where a source tree is marked as shmemfuzz's: the data and the host crate's manifest.
const CHECKOUT_MARKERS: [&str; 2] = ["kernels/catalog.toml", "harness/host/Cargo.toml"];

/// Why the data could not be put on disk.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot write shmemfuzz's data files into {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the data (and the defaults that write) come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `SHMEMFUZZ_ROOT`.
    Env(PathBuf),
    /// A runtime directory beside the executable ([`crate::kernels::runtime`]: ClusterFuzzLite's
    /// `$OUT`), laid out like a checkout.
    Runtime(PathBuf),
    /// The source tree the binary was built from, still a shmemfuzz checkout.
    BuiltFrom(PathBuf),
    /// No source tree: the copy in the binary.
    Installed,
}

impl Origin {
    /// `SHMEMFUZZ_ROOT` if set, else a runtime directory beside the executable, else the tree
    /// the binary was built from if it is still a shmemfuzz checkout, else
    /// [`Origin::Installed`].
    pub fn locate() -> Origin {
        if let Some(d) = std::env::var_os("SHMEMFUZZ_ROOT").filter(|d| !d.is_empty()) {
            return Origin::Env(crate::kernels::context::normalize(Path::new(&d)));
        }
        if let Some(rt) = crate::kernels::runtime::current() {
            return Origin::Runtime(rt.data_root().to_path_buf());
        }
        let tree = built_from();
        if is_checkout(&tree) {
            Origin::BuiltFrom(tree)
        } else {
            Origin::Installed
        }
    }

    /// The source tree, if there is one.
    pub fn tree(&self) -> Option<&Path> {
        match self {
            Origin::Env(t) | Origin::Runtime(t) | Origin::BuiltFrom(t) => Some(t),
            Origin::Installed => None,
        }
    }

    /// The tree the data files are read from, if they are read from a tree (one that holds
    /// `kernels/catalog.toml`); `None`: from the copy in the binary.
    pub fn data_tree(&self) -> Option<&Path> {
        self.tree()
            .filter(|t| t.join(CHECKOUT_MARKERS[0]).is_file())
    }

    /// One line for people: where the data comes from.
    pub fn describe(&self) -> String {
        let copy = format!("the copy built into shmemfuzz (data {})", version());
        match (self, self.data_tree()) {
            (Origin::Env(t), Some(_)) => format!("{} (SHMEMFUZZ_ROOT)", t.display()),
            (Origin::Env(t), None) => format!("{copy}; SHMEMFUZZ_ROOT {} has none", t.display()),
            (Origin::Runtime(t), Some(_)) => {
                format!("{} (the runtime beside the executable)", t.display())
            }
            (Origin::Runtime(t), None) => format!("{copy}; the runtime {} has none", t.display()),
            (Origin::BuiltFrom(t), _) => {
                format!("{} (the source tree it was built from)", t.display())
            }
            (Origin::Installed, _) => copy,
        }
    }
}

/// The source tree this binary was built from (it may have moved or gone since).
pub fn built_from() -> PathBuf {
    crate::kernels::context::normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Whether `dir` is a shmemfuzz source tree.
pub fn is_checkout(dir: &Path) -> bool {
    CHECKOUT_MARKERS.iter().all(|m| dir.join(m).is_file())
}

/// The contents the binary carries for `rel` (e.g. `kernels/known/6.1.toml`).
pub fn embedded(rel: &str) -> Option<&'static [u8]> {
    FILES
        .binary_search_by(|(p, _)| (*p).cmp(rel))
        .ok()
        .map(|i| FILES[i].1)
}

/// The first 16 hex digits of the SHA-256 of the carried files (names and contents): the name
/// of their directory under `<cache>/data/`.
pub fn version() -> String {
    content_hash(FILES)
}

fn content_hash(files: &[(&str, &[u8])]) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// `files` on disk as `<data_root>/<content hash>/<path>`: reused when every file there holds
/// its contents, else written (into a `.partial-*` directory renamed into place, so another
/// process sees all of it or nothing). Returns the directory.
pub fn materialize(files: &[(&str, &[u8])], data_root: &Path) -> Result<PathBuf, DataError> {
    let dest = data_root.join(content_hash(files));
    if holds(&dest, files) {
        tracing::debug!(dir = %dest.display(), "data files on disk, reused");
        return Ok(dest);
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Write { path, source }
    };
    std::fs::create_dir_all(data_root).map_err(write_err(data_root))?;
    let partial = || {
        crate::kernels::cachedir::work_dir(data_root).map_err(|(_, e)| DataError::Write {
            path: data_root.to_path_buf(),
            source: e,
        })
    };
    let work = partial()?;
    for (rel, bytes) in files {
        let to = work.path().join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        std::fs::write(&to, bytes).map_err(write_err(&to))?;
    }
    if dest.exists() {
        // A copy that no longer holds what it should: moved aside whole, then removed.
        tracing::debug!(dir = %dest.display(), "data files on disk changed, written again");
        let stale = partial()?;
        let _ = std::fs::rename(&dest, stale.path().join("old"));
    }
    let work = work.keep();
    if let Err(e) = std::fs::rename(&work, &dest) {
        // Another process published the same data first: use it if it is whole.
        let _ = std::fs::remove_dir_all(&work);
        if !holds(&dest, files) {
            return Err(DataError::Write {
                path: dest,
                source: e,
            });
        }
    }
    tracing::debug!(dir = %dest.display(), "data files written");
    Ok(dest)
}

/// Whether every file of `files` is in `dir` with its contents.
fn holds(dir: &Path, files: &[(&str, &[u8])]) -> bool {
    dir.is_dir()
        && files
            .iter()
            .all(|(rel, bytes)| std::fs::read(dir.join(rel)).is_ok_and(|b| b == *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files git tracks or would track (not ignored) under `kernels/` and `examples/`.
    fn tracked() -> Vec<String> {
        let root = built_from();
        let out = std::process::Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                "kernels",
                "examples",
            ])
            .current_dir(&root)
            .output()
            .expect("git runs (the unit tests run in a checkout)");
        assert!(out.status.success(), "git ls-files in {}", root.display());
        let mut files: Vec<String> = String::from_utf8(out.stdout)
            .expect("UTF-8 names")
            .split('\0')
            .filter(|f| !f.is_empty() && root.join(f).is_file())
            .map(str::to_string)
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_embedded_files_are_the_tracked_files() {
        let names: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            names,
            tracked(),
            "build.rs selects what git tracks, no more"
        );
        for (rel, bytes) in FILES {
            let on_disk = std::fs::read(built_from().join(rel)).expect("read");
            assert!(
                on_disk == *bytes,
                "{rel}: the binary's copy differs from the tree's"
            );
        }
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "sorted, for embedded()"
        );
        assert_eq!(
            embedded("kernels/catalog.toml"),
            Some(crate::kernels::kernel::BUILTIN_CATALOG.as_bytes())
        );
        assert!(embedded("kernels/known/6.1.toml").is_some());
        assert!(embedded("kernels/nothing").is_none());
    }

    #[test]
    fn the_test_tree_is_a_checkout_and_others_are_not() {
        assert!(is_checkout(&built_from()));
        let t = tempfile::tempdir().expect("tempdir");
        assert!(!is_checkout(t.path()));
        std::fs::create_dir_all(t.path().join("kernels")).expect("mkdir");
        std::fs::write(t.path().join("kernels/catalog.toml"), "").expect("write");
        assert!(!is_checkout(t.path()), "a catalog alone is not a checkout");
    }

    fn mtime(p: &Path) -> std::time::SystemTime {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    #[test]
    fn materialized_once_reused_and_rewritten_when_changed() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("data");
        let v1: &[(&str, &[u8])] = &[("a/x.txt", b"one"), ("b.txt", b"two")];
        let dir = materialize(v1, &root).expect("written");
        assert_eq!(dir, root.join(content_hash(v1)));
        assert_eq!(std::fs::read(dir.join("a/x.txt")).expect("read"), b"one");
        // Reused: nothing is written again.
        let before = mtime(&dir.join("b.txt"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(materialize(v1, &root).expect("reused"), dir);
        assert_eq!(mtime(&dir.join("b.txt")), before);
        // A file changed or removed on disk: the directory is written again.
        std::fs::write(dir.join("a/x.txt"), "edited").expect("write");
        std::fs::remove_file(dir.join("b.txt")).expect("rm");
        assert_eq!(materialize(v1, &root).expect("rewritten"), dir);
        assert_eq!(std::fs::read(dir.join("a/x.txt")).expect("read"), b"one");
        assert_eq!(std::fs::read(dir.join("b.txt")).expect("read"), b"two");
        // Other contents (a newer binary): another directory; the first one stays.
        let v2: &[(&str, &[u8])] = &[("a/x.txt", b"one!"), ("b.txt", b"two")];
        let dir2 = materialize(v2, &root).expect("written");
        assert_ne!(dir2, dir);
        assert_eq!(std::fs::read(dir2.join("a/x.txt")).expect("read"), b"one!");
        assert!(holds(&dir, v1));
        // No work directory is left behind.
        let mut left: Vec<String> = std::fs::read_dir(&root)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![content_hash(v1), content_hash(v2)];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn the_real_data_materializes_into_a_usable_tree() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = materialize(FILES, t.path()).expect("written");
        assert!(dir.ends_with(version()));
        let catalog = crate::kernels::kernel::Catalog::load(&dir.join("kernels/catalog.toml"))
            .expect("the catalog loads");
        for s in &catalog.sources {
            let spec =
                crate::kernels::kbuild::SourceBuild::from_repo(&dir, s).expect("patches listed");
            assert!(spec.fragments.iter().all(|f| f.is_file()), "{spec:?}");
            assert!(!spec.patches.is_empty(), "{}", s.id);
        }
        assert!(
            crate::kernels::kbuild::modbuild::source_files(&dir.join("kernels/gma500_mock"))
                .expect("the mock driver's sources")
                .len()
                > 4
        );
        assert!(dir.join("examples/pageout-roundtrip.prog").is_file());
    }
}
