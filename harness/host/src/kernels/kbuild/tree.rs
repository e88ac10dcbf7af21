//! Configuring and building any kernel source tree out of tree ([`build_tree`]): the part a
//! Debian source build and a build of a git checkout share.
//!
//! In the build directory:
//! ```text
//! .config                       allnoconfig + the merged fragments, then olddefconfig
//! shmemfuzz-fragment.config     the merged fragments (KCONFIG_ALLCONFIG reads it)
//! .shmemfuzz-fragment-hash      which fragments .config was made from
//! arch/x86/boot/bzImage         the image
//! install/lib/modules/<release> modules_install + depmod: modules.dep, modules.builtin
//! build.log                     every make command and its output, appended
//! .shmemfuzz-built              written last: the inputs and outputs of the last good build
//! .shmemfuzz.lock               flock held while building
//! ```
//! The build dir is also what out-of-tree modules build against:
//! `make -C <build dir> M=<module dir> modules`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{self, Fragments};
use super::make::{BuildStamp, Make};
use super::tools::{self, BUILD_TOOLS};
use super::{KbuildError, KbuildEvent};

/// The make target fragments are merged onto: everything off that the fragments do not ask
/// for. (`defconfig` + fragments builds a kernel three times the size.)
pub const BASE_CONFIG: &str = "allnoconfig";
const FRAGMENT_FILE: &str = "shmemfuzz-fragment.config";
const FRAGMENT_HASH: &str = ".shmemfuzz-fragment-hash";
const BUILT: &str = ".shmemfuzz-built";
const LOCK: &str = ".shmemfuzz.lock";
/// Where `modules_install` puts `lib/modules/<release>`.
pub const INSTALL_DIR: &str = "install";

/// One configure-and-build of a source tree.
#[derive(Debug, Clone)]
pub struct TreeBuild {
    /// The source tree (top-level `Makefile`); only read.
    pub src: PathBuf,
    /// The out-of-tree build directory (`make O=`); created if missing.
    pub build_dir: PathBuf,
    /// Config fragments merged onto [`BASE_CONFIG`], later ones winning.
    pub fragments: Vec<PathBuf>,
    /// `make -j`.
    pub jobs: u32,
    /// Wall-time limit for the whole build (waiting for the lock included).
    pub timeout: Duration,
    pub stamp: BuildStamp,
    /// A key for everything that decides the image besides the fragments (source version,
    /// patches, ...). When it is given and equals the last good build's, with its outputs
    /// present, make is not run at all. Leave it `None` for trees edited by hand (a git
    /// checkout): make then always runs and finds what changed.
    pub inputs_key: Option<String>,
    /// `make CC=…` (e.g. `ccache gcc`), on every make command so the config matches.
    pub cc: Option<String>,
}

/// What [`build_tree`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOutput {
    /// `make kernelrelease`, e.g. `6.1.192-shmemfuzz`.
    pub release: String,
    pub bzimage: PathBuf,
    /// `.../install/lib/modules/<release>` with modules.dep and modules.builtin.
    pub modules_dir: PathBuf,
    /// The resolved `.config`.
    pub config: PathBuf,
    /// sha256 of the resolved config's assignments (see [`config::config_hash`]).
    pub config_hash: String,
    /// False when the last good build was reused without running make.
    pub ran_make: bool,
}

/// The record of the last good build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Built {
    inputs_key: String,
    fragment_hash: String,
    /// `gcc --version`'s first line: a new compiler changes CONFIG_CC_VERSION_TEXT, so make
    /// must run.
    compiler: String,
    release: String,
    config_hash: String,
}

/// `make -j` default: one job more than CPUs, as kbuild's own docs suggest.
pub fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32 + 1)
}

/// Configures (if the fragments changed) and builds `bzImage` and `modules`, then installs
/// the modules; bounded by `b.timeout`.
pub fn build_tree(
    b: &TreeBuild,
    progress: &dyn Fn(KbuildEvent),
) -> Result<TreeOutput, KbuildError> {
    let deadline = Instant::now() + b.timeout;
    build_tree_until(b, deadline, progress)
}

pub(crate) fn build_tree_until(
    b: &TreeBuild,
    deadline: Instant,
    progress: &dyn Fn(KbuildEvent),
) -> Result<TreeOutput, KbuildError> {
    tools::require_all(BUILD_TOOLS)?;
    if !b.src.join("Makefile").is_file() {
        return Err(KbuildError::MissingFile {
            path: b.src.join("Makefile"),
            what: "looking for a kernel source tree".into(),
        });
    }
    std::fs::create_dir_all(&b.build_dir)
        .map_err(|e| KbuildError::io(format!("cannot create {}", b.build_dir.display()), e))?;
    let _lock = lock(&b.build_dir.join(LOCK), deadline, b.timeout, progress)?;
    let fragments = Fragments::load(&b.fragments)?;
    let fragment_hash = fragments.hash(BASE_CONFIG);
    let dir = &b.build_dir;
    let built_path = dir.join(BUILT);
    let compiler = tools::compiler_version()?;

    if let (Some(key), Some(last)) = (&b.inputs_key, read_built(&built_path)) {
        let out = outputs(dir, &last.release, last.config_hash.clone(), false);
        if last.inputs_key == *key
            && last.fragment_hash == fragment_hash
            && last.compiler == compiler
            && out.bzimage.is_file()
            && out.modules_dir.join("modules.dep").is_file()
        {
            progress(KbuildEvent::UpToDate);
            return Ok(out);
        }
    }
    remove_if_present(&built_path)?;

    let make = Make {
        src: &b.src,
        build_dir: dir,
        stamp: &b.stamp,
        deadline,
        limit: b.timeout,
        cc: b.cc.as_deref(),
    };
    let config_path = dir.join(".config");
    let configured = std::fs::read_to_string(dir.join(FRAGMENT_HASH)).ok();
    if configured.as_deref() != Some(fragment_hash.as_str()) || !config_path.is_file() {
        progress(KbuildEvent::Configuring {
            build_dir: dir.clone(),
        });
        let frag_file = dir.join(FRAGMENT_FILE);
        std::fs::write(&frag_file, fragments.text())
            .map_err(|e| KbuildError::io(format!("cannot write {}", frag_file.display()), e))?;
        remove_if_present(&dir.join(FRAGMENT_HASH))?;
        let allconfig = format!("KCONFIG_ALLCONFIG={}", frag_file.display());
        make.run(&[allconfig, BASE_CONFIG.into()], progress)?;
    }
    // Always: a patch may have added Kconfig symbols, which need their defaults before make
    // (its own syncconfig would ask for them on stdin). Unchanged, it rebuilds nothing.
    make.run(&["olddefconfig".into()], progress)?;
    let resolved = read_config(&config_path)?;
    let mismatches = fragments.mismatches(&resolved);
    if !mismatches.is_empty() {
        return Err(KbuildError::ConfigMismatch {
            mismatches,
            build_dir: dir.clone(),
        });
    }
    std::fs::write(dir.join(FRAGMENT_HASH), &fragment_hash)
        .map_err(|e| KbuildError::io(format!("cannot write in {}", dir.display()), e))?;

    let jobs = format!("-j{}", b.jobs.max(1));
    make.run(&[jobs, "bzImage".into(), "modules".into()], progress)?;
    let release_file = dir.join("include/config/kernel.release");
    let release = std::fs::read_to_string(&release_file)
        .map_err(|_| KbuildError::MissingFile {
            path: release_file.clone(),
            what: "make bzImage".into(),
        })?
        .trim()
        .to_string();
    let config_text = std::fs::read_to_string(&config_path)
        .map_err(|e| KbuildError::io(format!("cannot read {}", config_path.display()), e))?;
    let out = outputs(dir, &release, config::config_hash(&config_text), true);
    if !out.bzimage.is_file() {
        return Err(KbuildError::MissingFile {
            path: out.bzimage,
            what: "make bzImage".into(),
        });
    }
    // A fresh install: modules_install adds files but never removes stale ones.
    if out.modules_dir.exists() {
        std::fs::remove_dir_all(&out.modules_dir).map_err(|e| {
            KbuildError::io(format!("cannot remove {}", out.modules_dir.display()), e)
        })?;
    }
    let depmod = tools::find(("depmod", "kmod"))?;
    make.run(
        &[
            "modules_install".into(),
            format!("INSTALL_MOD_PATH={}", dir.join(INSTALL_DIR).display()),
            format!("DEPMOD={}", depmod.display()),
        ],
        progress,
    )?;
    if !out.modules_dir.join("modules.dep").is_file() {
        return Err(KbuildError::MissingFile {
            path: out.modules_dir.join("modules.dep"),
            what: "make modules_install (depmod did not run)".into(),
        });
    }
    if let Some(key) = &b.inputs_key {
        let built = Built {
            inputs_key: key.clone(),
            fragment_hash,
            compiler,
            release,
            config_hash: out.config_hash.clone(),
        };
        let text = toml::to_string(&built).map_err(|e| {
            KbuildError::io("cannot encode the build record", std::io::Error::other(e))
        })?;
        std::fs::write(&built_path, text)
            .map_err(|e| KbuildError::io(format!("cannot write {}", built_path.display()), e))?;
    }
    Ok(out)
}

fn outputs(dir: &Path, release: &str, config_hash: String, ran_make: bool) -> TreeOutput {
    TreeOutput {
        release: release.to_string(),
        bzimage: dir.join("arch/x86/boot/bzImage"),
        modules_dir: dir.join(INSTALL_DIR).join("lib/modules").join(release),
        config: dir.join(".config"),
        config_hash,
        ran_make,
    }
}

fn read_built(path: &Path) -> Option<Built> {
    toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_config(path: &Path) -> Result<BTreeMap<String, String>, KbuildError> {
    std::fs::read_to_string(path)
        .map(|t| config::parse_config(&t))
        .map_err(|e| KbuildError::io(format!("cannot read {}", path.display()), e))
}

fn remove_if_present(path: &Path) -> Result<(), KbuildError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KbuildError::io(
            format!("cannot remove {}", path.display()),
            e,
        )),
        _ => Ok(()),
    }
}

/// Takes an exclusive flock on `path` (created if missing), waiting until `deadline`.
pub(crate) fn lock(
    path: &Path,
    deadline: Instant,
    limit: Duration,
    progress: &dyn Fn(KbuildEvent),
) -> Result<nix::fcntl::Flock<File>, KbuildError> {
    use nix::fcntl::{Flock, FlockArg};
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| KbuildError::io(format!("cannot open lock {}", path.display()), e))?;
    let mut told = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                if !told {
                    progress(KbuildEvent::WaitingForLock {
                        path: path.to_path_buf(),
                    });
                    told = true;
                }
                file = f;
                std::thread::sleep(Duration::from_millis(500));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(KbuildError::Timeout {
                    command: format!("waiting for {} (another build holds it)", path.display()),
                    secs: limit.as_secs(),
                    log: path.to_path_buf(),
                })
            }
            Err((_, errno)) => {
                return Err(KbuildError::io(
                    format!("cannot lock {}", path.display()),
                    errno.into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_with_a_clear_error() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("x.lock");
        let limit = Duration::from_millis(600);
        let _held = lock(&p, Instant::now() + limit, limit, &|_| {}).expect("first");
        let waited = std::cell::Cell::new(false);
        let err = lock(&p, Instant::now() + limit, limit, &|e| {
            waited.set(matches!(e, KbuildEvent::WaitingForLock { .. }))
        })
        .expect_err("second");
        assert!(waited.get());
        assert!(err.to_string().contains("another build holds it"), "{err}");
    }

    #[test]
    fn a_missing_tree_is_named() {
        let d = tempfile::tempdir().expect("tempdir");
        let b = TreeBuild {
            src: d.path().join("nope"),
            build_dir: d.path().join("out"),
            fragments: vec![],
            jobs: 1,
            timeout: Duration::from_secs(5),
            stamp: BuildStamp::default(),
            inputs_key: None,
            cc: None,
        };
        match build_tree(&b, &|_| {}) {
            Err(KbuildError::MissingFile { path, .. }) => assert!(path.ends_with("nope/Makefile")),
            Err(KbuildError::ToolMissing { .. }) => {} // a host without a toolchain
            other => panic!("{other:?}"),
        }
    }
}
