//! `shmemfuzz kernel build --src DIR [--rev REV] [--config FRAGMENT…]`: any kernel source
//! tree (a git checkout, or an unpacked tarball) built out of tree with
//! `kernels/configs/base.config` plus the given fragments, and registered under an id the
//! other commands accept (`--kernel tree-…`).
//!
//! - Without `--rev` the tree is built as it is, edits included.
//! - With `--rev` (a git repository) the revision is checked out in a worktree owned by
//!   shmemfuzz (`<cache>/build/worktrees/<repo>-<hash>`), never in the user's checkout;
//!   bisection builds every step there, so consecutive steps rebuild only what changed.
//!
//! One build directory per source tree and fragment set (`<cache>/build/tree-<name>-<hash of
//! the tree's path>-<hash of the fragments>`): rebuilds are incremental. `ccache` is used when
//! it is installed (`CC="ccache gcc"`). The reproducible-build stamps are fixed (not the commit
//! date), so two commits with the same tree give the same bzImage.
//!
//! The id is `tree-<commit 12>[-dirty]-<config hash 12>` (`tree-<path hash>-…` outside git).
//! The registry, `<cache>/build/registry/<id>.toml`, maps it to its build directory and the
//! sha256 of the image built; a build directory that has since been rebuilt for another
//! revision no longer matches, and the id says so instead of booting the wrong kernel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::Fragments;
use super::tree::{self, TreeBuild, TreeOutput, BASE_CONFIG};
use super::{git, make::BuildStamp, KbuildError, KbuildEvent};

/// What to build.
#[derive(Debug, Clone)]
pub struct SrcBuild {
    /// The source tree, or the repository when `rev` is given.
    pub src: PathBuf,
    /// A git revision to build (in a worktree) instead of the tree as it is.
    pub rev: Option<String>,
    /// Fragments merged in order (the caller puts `base.config` first).
    pub fragments: Vec<PathBuf>,
    pub jobs: u32,
    pub timeout: Duration,
}

/// A built and registered kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// `tree-<commit>-<config>`.
    pub id: String,
    /// The tree that was built (the worktree for `--rev` builds).
    pub source: PathBuf,
    /// The commit built, when the tree is a git checkout.
    pub commit: Option<String>,
    /// Tracked files differed from the commit.
    pub dirty: bool,
    pub config_hash: String,
    pub build_dir: PathBuf,
    pub release: String,
    pub bzimage_sha256: String,
}

/// A build's result: the registry entry and what the build did.
#[derive(Debug, Clone)]
pub struct SrcBuilt {
    pub registered: Registered,
    pub output: TreeOutput,
    pub build_secs: f64,
}

/// Hex sha256 of `s`, cut to `n` characters.
fn short_hash(s: &str, n: usize) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))[..n].to_string()
}

/// `<cache>/build/worktrees/<repo dir name>-<hash of its git dir>`.
pub fn worktree_dir(cache: &Path, repo: &Path) -> Result<PathBuf, KbuildError> {
    let common = git::common_dir(repo)?;
    let name = common
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "repo".into(), |n| n.to_string_lossy().into_owned());
    let key = short_hash(&common.to_string_lossy(), 12);
    Ok(cache.join("build/worktrees").join(format!("{name}-{key}")))
}

/// The build directory of a tree and a fragment set.
pub fn build_dir(cache: &Path, src: &Path, fragment_hash: &str) -> PathBuf {
    let name = src
        .file_name()
        .map_or_else(|| "src".into(), |n| n.to_string_lossy().into_owned());
    let key = short_hash(&src.to_string_lossy(), 12);
    cache
        .join("build")
        .join(format!("tree-{name}-{key}-{}", &fragment_hash[..12]))
}

/// `ccache gcc` when ccache is installed.
fn compiler() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .any(|d| d.join("ccache").is_file())
        .then(|| "ccache gcc".to_string())
}

/// The hash of the fragments (what names the build directory).
pub fn fragments_hash(fragments: &[PathBuf]) -> Result<String, KbuildError> {
    Ok(Fragments::load(fragments)?.hash(BASE_CONFIG))
}

/// Checks out (for `rev`) and builds, then registers the result under `cache`.
pub fn build_src(
    cache: &Path,
    spec: &SrcBuild,
    progress: &dyn Fn(KbuildEvent),
) -> Result<SrcBuilt, KbuildError> {
    let started = Instant::now();
    let src = spec
        .src
        .canonicalize()
        .map_err(|e| KbuildError::io(format!("cannot resolve {}", spec.src.display()), e))?;
    std::fs::create_dir_all(cache.join("build"))
        .map_err(|e| KbuildError::io(format!("cannot create {}", cache.display()), e))?;
    let cache = cache
        .canonicalize()
        .map_err(|e| KbuildError::io(format!("cannot resolve {}", cache.display()), e))?;
    let (tree_dir, commit, dirty) = match &spec.rev {
        Some(rev) => {
            let commit = git::commit(&src, rev)?;
            let wt = worktree_dir(&cache, &src)?;
            git::checkout_in_worktree(&src, &wt, &commit)?;
            (wt, Some(commit), false)
        }
        None if git::is_repo(&src) => {
            let (c, dirty) = git::head(&src)?;
            (src.clone(), Some(c), dirty)
        }
        None => (src.clone(), None, false),
    };
    let fragment_hash = fragments_hash(&spec.fragments)?;
    let tb = TreeBuild {
        src: tree_dir.clone(),
        build_dir: build_dir(&cache, &tree_dir, &fragment_hash),
        fragments: spec.fragments.clone(),
        jobs: spec.jobs,
        timeout: spec.timeout,
        stamp: BuildStamp::default(),
        inputs_key: None,
        cc: compiler(),
    };
    let output = tree::build_tree(&tb, progress)?;
    let bzimage_sha256 = sha256_of(&output.bzimage)?;
    let id = match &commit {
        Some(c) => format!(
            "tree-{}{}-{}",
            &c[..12],
            if dirty { "-dirty" } else { "" },
            &output.config_hash[..12]
        ),
        None => format!(
            "tree-{}-{}",
            short_hash(&src.to_string_lossy(), 12),
            &output.config_hash[..12]
        ),
    };
    let registered = Registered {
        id,
        source: tree_dir,
        commit,
        dirty,
        config_hash: output.config_hash.clone(),
        build_dir: tb.build_dir,
        release: output.release.clone(),
        bzimage_sha256,
    };
    register(&cache, &registered)?;
    Ok(SrcBuilt {
        registered,
        output,
        build_secs: started.elapsed().as_secs_f64(),
    })
}

/// [`crate::files::file_sha256`] as a [`KbuildError`].
fn sha256_of(path: &Path) -> Result<String, KbuildError> {
    crate::files::file_sha256(path)
        .map_err(|e| KbuildError::io(format!("cannot read {}", path.display()), e))
}

fn registry_file(cache: &Path, id: &str) -> PathBuf {
    cache.join("build/registry").join(format!("{id}.toml"))
}

fn register(cache: &Path, r: &Registered) -> Result<(), KbuildError> {
    let path = registry_file(cache, &r.id);
    let dir = cache.join("build/registry");
    std::fs::create_dir_all(&dir)
        .map_err(|e| KbuildError::io(format!("cannot create {}", dir.display()), e))?;
    let text = toml::to_string(r).map_err(|e| {
        KbuildError::io("cannot encode the registry entry", std::io::Error::other(e))
    })?;
    std::fs::write(&path, text)
        .map_err(|e| KbuildError::io(format!("cannot write {}", path.display()), e))
}

/// Every registered kernel (for `kernel list`), by id; unreadable entries are left out.
pub fn registered(cache: &Path) -> Vec<Registered> {
    let mut out: Vec<Registered> = std::fs::read_dir(cache.join("build/registry"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| toml::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The registered kernel `id`, if there is one: `Ok(None)` when the id is unknown, an error
/// when its build directory now holds another image.
pub fn lookup(cache: &Path, id: &str) -> Result<Option<Registered>, KbuildError> {
    if !id.starts_with("tree-") || id.contains('/') {
        return Ok(None);
    }
    let path = registry_file(cache, id);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let r: Registered = toml::from_str(&text).map_err(|e| {
        KbuildError::io(
            format!("cannot parse {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    let image = r.build_dir.join("arch/x86/boot/bzImage");
    let now = sha256_of(&image).unwrap_or_default();
    if now != r.bzimage_sha256 {
        let rev = r
            .commit
            .as_deref()
            .map(|c| format!(" --rev {c}"))
            .unwrap_or_default();
        return Err(KbuildError::MissingFile {
            path: image,
            what: format!(
                "another build in the same directory (the image of {id} is gone): rebuild it \
                 with `shmemfuzz kernel build --src {}{rev}`",
                r.source.display()
            ),
        });
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_kernels_are_found_until_their_image_changes() {
        let d = tempfile::tempdir().expect("tempdir");
        let bd = d.path().join("bd");
        std::fs::create_dir_all(bd.join("arch/x86/boot")).expect("mkdir");
        std::fs::write(bd.join("arch/x86/boot/bzImage"), "image 1").expect("write");
        let r = Registered {
            id: "tree-0123456789ab-cfgcfgcfgcfg".into(),
            source: d.path().join("src"),
            commit: Some("0123456789abcdef".into()),
            dirty: false,
            config_hash: "cfg".into(),
            build_dir: bd.clone(),
            release: "6.1.0".into(),
            bzimage_sha256: sha256_of(&bd.join("arch/x86/boot/bzImage")).expect("hash"),
        };
        register(d.path(), &r).expect("register");
        assert_eq!(lookup(d.path(), &r.id).expect("lookup"), Some(r.clone()));
        assert_eq!(registered(d.path()), std::slice::from_ref(&r));
        assert_eq!(lookup(d.path(), "tree-unknown").expect("lookup"), None);
        assert_eq!(lookup(d.path(), "debian-6.1").expect("lookup"), None);
        std::fs::write(bd.join("arch/x86/boot/bzImage"), "image 2").expect("write");
        let e = lookup(d.path(), &r.id).expect_err("stale");
        assert!(e.to_string().contains("--rev 0123456789abcdef"), "{e}");
    }

    #[test]
    fn build_dirs_differ_by_tree_and_fragments() {
        let c = Path::new("/c");
        let a = build_dir(c, Path::new("/x/linux"), &"a".repeat(64));
        assert!(a.starts_with("/c/build") && a.to_string_lossy().contains("tree-linux-"));
        assert_ne!(a, build_dir(c, Path::new("/y/linux"), &"a".repeat(64)));
        assert_ne!(a, build_dir(c, Path::new("/x/linux"), &"b".repeat(64)));
    }
}
