//! Self-built kernels: Debian's kernel source package (or any source tree), patched with the
//! planted regressions, configured from `kernels/configs/` fragments and built out of tree
//! into something the rest of the harness boots like a fetched Debian kernel
//! ([`FetchedKernel`]).
//!
//! [`build_debian_source`] does all of it for `linux-source-<series>`:
//! 1. `source.rs`: apt's candidate version (or a pinned one), downloaded with `apt-get
//!    download`, checked against apt's sha256, unpacked once into the source cache;
//! 2. `patches.rs`: the tree is brought to exactly the wanted patch series
//!    ([`PATCH_COMMAND`]), reverting and re-applying only what changed;
//! 3. `tree.rs` ([`build_tree`], reusable for any tree, e.g. a git checkout): `allnoconfig`
//!    plus the merged fragments, `olddefconfig`, a check that every fragment line survived,
//!    `make bzImage modules`, `modules_install` (depmod) into the build dir;
//! 4. `make.rs`: make's environment (reproducible [`BuildStamp`]), its output streamed as
//!    [`KbuildEvent::Output`] and kept in `build.log`, and the wall-time limit.
//!
//! 5. `srcbuild.rs` ([`build_src`]): any tree or git revision (in a worktree of its own),
//!    registered as `tree-<commit>-<config>` for `--kernel`; `git.rs`: the git commands.
//!
//! Cache layout, next to the Debian kernels (`<cache>` is the cache root the caller passes,
//! [`crate::cachedir::cache_root`], normally `<repo>/.cache`):
//! ```text
//! <cache>/src/linux-source-6.1_6.1.192-2/     the unpacked tree (+ .shmemfuzz-source marker,
//!                                             .shmemfuzz-patches/ = the applied series)
//! <cache>/src/linux-source-6.1_6.1.192-2.lock flock held while patching and building
//! <cache>/build/linux-source-6.1_6.1.192-2-<fragment hash>/   the O= build dir (tree.rs)
//! ```
//! The build dir depends on the source version and the fragments only, not on the patches:
//! editing a patch re-patches the same tree and rebuilds just the touched files. When nothing
//! changed (same source, patches, fragments, stamp) make is not run at all.
//!
//! Measured here (2 cores, `-j3`, other VMs running) for linux-source-6.1 6.1.192 with
//! `kernels/configs/base.config` and the planted-regression patch: from nothing (download
//! 139 MB, unpack, patch, configure, build, install) 272 s; again with no change 0.5 s (make
//! is not run); with make run anyway (what a git checkout gets) 7 s; after a patch changed
//! mm/shmem.c 12-19 s. bzImage 2.8 MB (Debian's is 8.2 MB), build dir 190 MB, source 1.5 GB.
//!
//! Bounds: waiting for the locks and every make step share the deadline
//! ([`SourceBuild::timeout`]); `apt-get download` relies on apt's own network timeouts.
//! This module never prints: progress goes to the caller as [`KbuildEvent`]s.
//!
//! [`modbuild`]: the mock GMA500 driver built against a kernel build dir, with the same make
//! runner.

mod config;
mod error;
pub mod git;
mod make;
pub mod modbuild;
mod patches;
mod source;
mod srcbuild;
mod tools;
mod tree;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::kernel::{FetchedKernel, SourceEntry};

pub use error::KbuildError;
pub use make::BuildStamp;
pub use patches::{PatchId, PATCH_COMMAND};
pub use source::DebianSource;
pub use srcbuild::{build_src, fragments_hash, lookup, registered, Registered, SrcBuild, SrcBuilt};
pub use tree::{build_tree, default_jobs, TreeBuild, TreeOutput, BASE_CONFIG, INSTALL_DIR};

/// Progress of a build, for a spinner or a log; the module itself never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KbuildEvent {
    /// The source package is already unpacked in the cache.
    SourceCached { dir: PathBuf, version: String },
    /// Downloading the source package (`name=version`).
    Downloading { package: String },
    /// Checking the download's sha256.
    Verifying,
    /// Unpacking the .deb and its tarball (about 10 s).
    Unpacking,
    /// The source tree is unpacked and published.
    SourceReady { dir: PathBuf },
    /// Another build holds a lock this one needs.
    WaitingForLock { path: PathBuf },
    /// Applying (or, `revert`, taking out) a patch.
    Patching { patch: String, revert: bool },
    /// Making `.config` from the fragments.
    Configuring { build_dir: PathBuf },
    /// A make step starts (`-j3 bzImage modules`, `modules_install ...`).
    Make { targets: String },
    /// One line of make's output (`  CC      mm/shmem.o`).
    Output { line: String },
    /// Nothing changed since the last good build: make was not run.
    UpToDate,
    /// Built (or found up to date) in `secs`.
    Done { secs: u64 },
}

/// What to build from a Debian source package.
#[derive(Debug, Clone)]
pub struct SourceBuild {
    /// What built kernels are called: `<name>-<hash>`; `src-<series>` unless set.
    pub name: String,
    /// Kernel line: `6.1` → package `linux-source-6.1`.
    pub series: String,
    /// Debian version of the package; `None` takes apt's candidate (the newest).
    pub version: Option<String>,
    /// Config fragments, merged in order onto [`BASE_CONFIG`].
    pub fragments: Vec<PathBuf>,
    /// Patches applied in order with [`PATCH_COMMAND`].
    pub patches: Vec<PathBuf>,
    /// `make -j`; `None` = CPUs + 1.
    pub jobs: Option<u32>,
    /// Wall-time limit of the whole call (download, unpack, build).
    pub timeout: Duration,
}

impl SourceBuild {
    /// Default limit: a fresh build takes minutes on 2 cores; an hour covers a loaded machine.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

    /// A build of `linux-source-<series>` with no fragments and no patches.
    pub fn new(series: &str) -> Self {
        SourceBuild {
            name: format!("src-{series}"),
            series: series.to_string(),
            version: None,
            fragments: Vec::new(),
            patches: Vec::new(),
            jobs: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The repository's build of `kernel`: its `kernels/configs/` fragments and every
    /// `kernels/regressions/<series>/*.patch` in name order ([`SourceEntry::patch_dir`]),
    /// under the source tree `root`.
    ///
    /// A patch's identity is its file name and content, not its directory, so moving the
    /// 6.1 series into `regressions/6.1/` left the src-6.1 build ids unchanged.
    pub fn from_repo(root: &Path, kernel: &SourceEntry) -> Result<Self, KbuildError> {
        let dir = root.join("kernels/regressions").join(kernel.patch_dir());
        let mut patches: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| KbuildError::io(format!("cannot list {}", dir.display()), e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "patch"))
            .collect();
        patches.sort();
        Ok(SourceBuild {
            name: kernel.id.clone(),
            fragments: kernel
                .fragments
                .iter()
                .map(|f| root.join("kernels/configs").join(f))
                .collect(),
            patches,
            ..SourceBuild::new(&kernel.series)
        })
    }
}

/// A kernel built from source, ready to boot.
#[derive(Debug, Clone)]
pub struct BuiltKernel {
    /// What the harness boots. `id` is `<name>-<hash>` (`src-6.1-…`), the hash covering the source
    /// package version, the patches (content, in order) and the resolved config.
    pub kernel: FetchedKernel,
    /// The `make O=` directory; out-of-tree modules build with `make -C <it> M=<dir>`.
    pub build_dir: PathBuf,
    /// The patched source tree.
    pub source_dir: PathBuf,
    /// The source package version built.
    pub source_version: String,
    /// The patches the tree carries, in order.
    pub patches: Vec<PatchId>,
    /// sha256 of the resolved `.config`'s assignments.
    pub config_hash: String,
    /// Wall time of this call.
    pub build_secs: u64,
    /// False when nothing changed and make was not run.
    pub ran_make: bool,
}

/// Fetches (or finds) `linux-source-<series>`, applies the patches, configures and builds it,
/// all bounded by `spec.timeout`. Serialised per source tree by a lock file.
pub fn build_debian_source(
    cache: &Path,
    spec: &SourceBuild,
    progress: &dyn Fn(KbuildEvent),
) -> Result<BuiltKernel, KbuildError> {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let (src_root, build_root) = (cache.join("src"), cache.join("build"));
    std::fs::create_dir_all(&src_root)
        .map_err(|e| KbuildError::io(format!("cannot create {}", src_root.display()), e))?;
    // Absolute paths: they end up in make's command lines and in the build dir's records.
    let src_root = src_root
        .canonicalize()
        .map_err(|e| KbuildError::io(format!("cannot resolve {}", src_root.display()), e))?;
    let package = source::package_name(&spec.series);
    let version = source::resolve_version(&package, spec.version.as_deref())?;
    let name = source::dir_name(&package, &version);
    let _lock = tree::lock(
        &src_root.join(format!("{name}.lock")),
        deadline,
        spec.timeout,
        progress,
    )?;
    let src = source::obtain(&src_root, &package, &version, progress)?;
    let wanted = patches::read_series(&spec.patches)?;
    let applied = patches::sync(&src.dir, &wanted, progress)?;

    let fragment_hash = config::Fragments::load(&spec.fragments)?.hash(BASE_CONFIG);
    let build_dir = build_root.join(format!("{name}-{}", &fragment_hash[..12]));
    let stamp = BuildStamp {
        timestamp: src.timestamp.clone(),
        ..BuildStamp::default()
    };
    let mut key = Sha256::new();
    key.update(format!("{package}={version}\n").as_bytes());
    for p in &applied {
        key.update(format!("patch {} {}\n", p.name, p.sha256).as_bytes());
    }
    for (k, v) in stamp.env() {
        key.update(format!("{k}={v}\n").as_bytes());
    }
    let tb = TreeBuild {
        src: src.dir.clone(),
        build_dir: build_dir.clone(),
        fragments: spec.fragments.clone(),
        jobs: spec.jobs.unwrap_or_else(default_jobs),
        timeout: spec.timeout,
        stamp,
        inputs_key: Some(hex::encode(key.finalize())),
        cc: None,
    };
    let out = tree::build_tree_until(&tb, deadline, progress)?;
    let id = kernel_id(&spec.name, &package, &version, &applied, &out.config_hash);
    let build_secs = started.elapsed().as_secs();
    progress(KbuildEvent::Done { secs: build_secs });
    Ok(BuiltKernel {
        kernel: FetchedKernel {
            id,
            release: out.release,
            bzimage: out.bzimage,
            modules_dir: out.modules_dir,
            config: out.config,
        },
        build_dir,
        source_dir: src.dir,
        source_version: version,
        patches: applied,
        config_hash: out.config_hash,
        build_secs,
        ran_make: out.ran_make,
    })
}

/// `<name>-<12 hex>` over the source package, the patches and the resolved config.
fn kernel_id(
    name: &str,
    package: &str,
    version: &str,
    patches: &[PatchId],
    config_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(format!("{package}={version}\nconfig {config_hash}\n").as_bytes());
    for p in patches {
        h.update(format!("patch {} {}\n", p.name, p.sha256).as_bytes());
    }
    format!("{name}-{}", &hex::encode(h.finalize())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_change_with_every_input() {
        let p = |sha: &str| PatchId {
            name: "0001-x.patch".into(),
            sha256: sha.into(),
        };
        let base = kernel_id(
            "src-6.1",
            "linux-source-6.1",
            "6.1.192-2",
            &[p("aa")],
            "cfg",
        );
        assert!(base.starts_with("src-6.1-") && base.len() == "src-6.1-".len() + 12);
        for other in [
            kernel_id(
                "src-6.1",
                "linux-source-6.1",
                "6.1.193-1",
                &[p("aa")],
                "cfg",
            ),
            kernel_id(
                "src-6.1",
                "linux-source-6.1",
                "6.1.192-2",
                &[p("bb")],
                "cfg",
            ),
            kernel_id("src-6.1", "linux-source-6.1", "6.1.192-2", &[], "cfg"),
            kernel_id(
                "src-6.1",
                "linux-source-6.1",
                "6.1.192-2",
                &[p("aa")],
                "cfg2",
            ),
        ] {
            assert_ne!(base, other);
        }
    }

    /// The patch files `from_repo` picks for a source kernel: (file name, sha256).
    fn repo_series(id: &str) -> Vec<PatchId> {
        let root = crate::context::source_root();
        let catalog = crate::kernel::Catalog::builtin().expect("catalog");
        let spec = SourceBuild::from_repo(&root, catalog.source(id).expect("listed"))
            .expect("repo layout");
        patches::read_series(&spec.patches)
            .expect("read patches")
            .into_iter()
            .map(|w| {
                let dir = w.path.parent().expect("dir").file_name().expect("name");
                assert_eq!(Some(dir.to_string_lossy().as_ref()), id.split('-').nth(1));
                w.id
            })
            .collect()
    }

    #[test]
    fn each_line_carries_its_own_port_of_the_planted_switches() {
        let (v61, v612) = (repo_series("src-6.1"), repo_series("src-6.12"));
        assert_eq!(repo_series("src-6.1-kasan"), v61);
        assert_eq!(repo_series("src-6.12-kasan"), v612);
        let names = |s: &[PatchId]| s.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let both = [
            "0001-shmem-planted-no-replace.patch",
            "0002-shmem-planted-no-pin.patch",
        ];
        assert_eq!(names(&v61), both);
        assert_eq!(names(&v612), both);
        for (a, b) in v61.iter().zip(&v612) {
            assert_ne!(a.sha256, b.sha256, "{}: 6.12 has its own port", a.name);
        }
        // A patch's identity is its name and content, not its directory: moving the 6.1
        // series into regressions/6.1/ kept the src-6.1 build ids (and CI's cached builds).
        assert_eq!(
            v61[0].sha256,
            "1e2ad5eec4521dc2766041b27cac30156653518cc6a53a2321b8068f3454a825"
        );
        assert_eq!(
            v61[1].sha256,
            "3807d82287b975dac18087686aafb9085773fc7ac6cdf5c08cacfaa2adc8ca06"
        );
        // Both ports print the boot line tests look for, from shmem_init().
        let root = crate::context::source_root().join("kernels/regressions/6.12");
        for (file, line) in [
            (
                both[0],
                "shmem: planted regression: shmem.planted_no_replace=1",
            ),
            (both[1], "shmem: planted regression: shmem.planted_no_pin=1"),
        ] {
            let text = std::fs::read_to_string(root.join(file)).expect("read");
            assert!(text.contains(line), "{file}");
        }
    }

    #[test]
    fn a_series_without_its_directory_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let catalog = crate::kernel::Catalog::builtin().expect("catalog");
        let err = SourceBuild::from_repo(tmp.path(), catalog.source("src-6.12").expect("listed"))
            .expect_err("no kernels/regressions/6.12 there");
        assert!(err.to_string().contains("regressions/6.12"), "{err}");
    }

    #[test]
    fn the_repo_build_lists_fragments_and_patches_in_order() {
        let root = crate::context::source_root();
        let catalog = crate::kernel::Catalog::builtin().expect("catalog");
        let kasan = catalog.source("src-6.1-kasan").expect("listed");
        let spec = SourceBuild::from_repo(&root, kasan).expect("repo layout");
        assert_eq!(spec.name, "src-6.1-kasan");
        assert!(spec.fragments.iter().all(|f| f.is_file()), "{spec:?}");
        assert!(spec.fragments[0].ends_with("kernels/configs/base.config"));
        assert!(spec.fragments[0].is_file());
        let names: Vec<String> = spec
            .patches
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"0001-shmem-planted-no-replace.patch".to_string()));
        assert!(names.contains(&"0002-shmem-planted-no-pin.patch".to_string()));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // The fragment parses, and every patch names its file in a/ b/ form (-p1).
        config::Fragments::load(&spec.fragments).expect("the fragments parse");
        for p in &spec.patches {
            let text = std::fs::read_to_string(p).expect("read patch");
            assert!(
                text.contains("\n--- a/") && text.contains("\n+++ b/"),
                "{p:?}"
            );
        }
    }
}
