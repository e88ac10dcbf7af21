//! Where things are and which defaults apply: the source tree and the data files
//! ([`crate::kernels::data`]: a checkout's or the copy built in), the catalog, the kernel cache, the
//! accelerator. Shared by the CLI, the benchmarks and the tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::kernels::data::{DataError, Origin};

use crate::guest::vm::{accel, Accel, VmError};
use crate::kernels::kbuild::modbuild::{build_mock_module, ModBuildError};
use crate::kernels::kbuild::{build_debian_source, KbuildError, KbuildEvent, SourceBuild};
use crate::kernels::kernel::{Catalog, FetchEvent, FetchedKernel, KernelCache, KernelError};

/// The source tree this binary was built from (`SHMEMFUZZ_ROOT` overrides it, and so does a
/// runtime directory beside the executable, [`crate::kernels::runtime`], when that is not
/// set), whether or not it is still there: what the tests, which run in a checkout, read their
/// files from. The commands go by [`Context::origin`] ([`Origin::locate`]).
pub fn source_root() -> PathBuf {
    Origin::locate()
        .tree()
        .map_or_else(crate::kernels::data::built_from, Path::to_path_buf)
}

/// `path` without `.` components and with each `..` applied to the component before it
/// (lexically: `/project/harness/host/../../fuzz` is `/project/fuzz`), as paths are printed
/// and joined. A `..` with nothing before it to remove (at the start of a relative path) stays.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// A kernel or its mock driver could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Module(#[from] ModBuildError),
    #[error(transparent)]
    Build(#[from] KbuildError),
    #[error("kernel tree {dir}: {problem}")]
    Tree { dir: PathBuf, problem: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "{what} defaults to a place in the shmemfuzz source tree, and this shmemfuzz has none \
         (installed; SHMEMFUZZ_ROOT is unset): {instead}"
    )]
    NoTree {
        what: &'static str,
        instead: &'static str,
    },
}

/// A kernel ready to boot with the mock GMA500 driver built for it.
#[derive(Clone, Debug)]
pub struct PreparedKernel {
    pub kernel: FetchedKernel,
    pub mock_module: PathBuf,
}

/// What preparing a kernel is doing, for progress display.
#[derive(Clone, Debug)]
pub enum PrepareEvent {
    Fetch(FetchEvent),
    Build(String),
    Module,
}

#[derive(Debug)]
pub struct Context {
    /// Where the data files and the defaults that write come from.
    pub origin: Origin,
    pub catalog: Catalog,
    /// The cache root ([`crate::kernels::cachedir::cache_root`]): kernels, kernel sources and builds,
    /// module builds, accelerator verdicts.
    pub cache_dir: PathBuf,
    /// The kernel cache, `kernels/` under [`Self::cache_dir`].
    pub cache: KernelCache,
    /// [`Self::data_dir`], once asked for.
    data_dir: OnceLock<PathBuf>,
}

impl Context {
    /// The catalog from the source tree's `kernels/catalog.toml`, or the copy built into the
    /// binary when the data comes from there ([`Origin::locate`]); the cache under
    /// `SHMEMFUZZ_CACHE`, `<tree>/.cache` or `~/.cache/shmemfuzz`
    /// ([`crate::kernels::cachedir::cache_root`]).
    pub fn new() -> Result<Self, KernelError> {
        let origin = Origin::locate();
        let catalog = match origin.data_tree() {
            Some(tree) => Catalog::load(&tree.join("kernels/catalog.toml"))?,
            None => Catalog::builtin()?,
        };
        let cache_dir =
            crate::kernels::cachedir::cache_root(origin.tree()).ok_or(KernelError::NoCacheDir)?;
        tracing::debug!(
            data = %origin.describe(),
            cache = %cache_dir.display(),
            "shmemfuzz's data and cache"
        );
        let cache = KernelCache::new(cache_dir.join("kernels"));
        Ok(Context {
            origin,
            catalog,
            cache_dir,
            cache,
            data_dir: OnceLock::new(),
        })
    }

    /// A directory holding the data files (`kernels/`, `examples/`): the source tree's, or
    /// the binary's copy written under `<cache>/data/` ([`crate::kernels::data::materialize`]).
    pub fn data_dir(&self) -> Result<PathBuf, DataError> {
        if let Some(dir) = self.data_dir.get() {
            return Ok(dir.clone());
        }
        let dir = match self.origin.data_tree() {
            Some(tree) => tree.to_path_buf(),
            None => crate::kernels::data::materialize(
                crate::kernels::data::FILES,
                &self.cache_dir.join("data"),
            )?,
        };
        Ok(self.data_dir.get_or_init(|| dir).clone())
    }

    /// The source tree for the defaults that write into it (`fuzz/corpus/shmem_ops`,
    /// `fuzz/findings`, the fuzz target's build); without one, an error saying `what` needs
    /// it and what to give `instead`.
    pub fn tree(&self, what: &'static str, instead: &'static str) -> Result<&Path, ContextError> {
        self.origin
            .tree()
            .ok_or(ContextError::NoTree { what, instead })
    }

    /// One line: where the data and the cache are.
    pub fn describe(&self) -> String {
        format!(
            "data: {}; cache: {}",
            self.origin.describe(),
            self.cache_dir.display()
        )
    }

    /// Fetches (or finds cached) the kernel `id`, or the catalog's default.
    pub fn kernel(
        &self,
        id: Option<&str>,
        progress: &dyn Fn(FetchEvent),
    ) -> Result<FetchedKernel, KernelError> {
        let entry = match id {
            Some(id) => self.catalog.get(id)?,
            None => self.catalog.default_entry(),
        };
        self.cache.fetch(entry, progress)
    }

    /// The mock GMA500 driver built for the catalog kernel `kernel` (its headers are fetched
    /// on first use; the `.ko` is cached per kernel).
    pub fn mock_module(
        &self,
        kernel: &FetchedKernel,
        progress: &dyn Fn(FetchEvent),
    ) -> Result<PathBuf, ContextError> {
        let entry = self.catalog.get(&kernel.id)?;
        let headers = self.cache.fetch_headers(entry, progress)?;
        self.mock_module_for_tree(&headers, &kernel.release)
    }

    /// The mock GMA500 driver built against a kernel build tree (or unpacked headers).
    pub fn mock_module_for_tree(
        &self,
        build_dir: &Path,
        release: &str,
    ) -> Result<PathBuf, ContextError> {
        let src = self.data_dir()?.join("kernels/gma500_mock");
        Ok(build_mock_module(
            &src,
            build_dir,
            &self.cache_dir,
            release,
        )?)
    }

    /// A catalog kernel (fetched), a `src-*` kernel (built) or a `tree-*` kernel (registered
    /// by `shmemfuzz kernel build`), with its mock driver.
    pub fn prepare(
        &self,
        id: Option<&str>,
        progress: &dyn Fn(PrepareEvent),
    ) -> Result<PreparedKernel, ContextError> {
        // A kernel built from Debian's source package (`[[source]]` in the catalog).
        if let Some(source_kernel) = id.and_then(|id| self.catalog.source(id)) {
            let spec = SourceBuild::from_repo(&self.data_dir()?, source_kernel)?;
            let built = build_debian_source(&self.cache_dir, &spec, &|e| {
                if !matches!(e, KbuildEvent::Output { .. }) {
                    progress(PrepareEvent::Build(format!("{e:?}")));
                }
            })?;
            progress(PrepareEvent::Module);
            let mock_module = self.mock_module_for_tree(&built.build_dir, &built.kernel.release)?;
            return Ok(PreparedKernel {
                kernel: built.kernel,
                mock_module,
            });
        }
        // A kernel registered by `shmemfuzz kernel build` (`tree-<commit>-<config>`).
        if let Some(r) = id
            .map(|id| crate::kernels::kbuild::lookup(&self.cache_dir, id))
            .transpose()?
            .flatten()
        {
            progress(PrepareEvent::Module);
            let mut k = self.prepare_tree(None, Some(&r.build_dir))?;
            k.kernel.id = r.id;
            return Ok(k);
        }
        let kernel = self.kernel(id, &|e| progress(PrepareEvent::Fetch(e)))?;
        progress(PrepareEvent::Module);
        let mock_module = self.mock_module(&kernel, &|e| progress(PrepareEvent::Fetch(e)))?;
        Ok(PreparedKernel {
            kernel,
            mock_module,
        })
    }

    /// A kernel image from a build tree of the user's: `tree` is a `make O=` directory (or a
    /// source tree built in place) with `.config`, `include/config/kernel.release` and the
    /// modules installed under `<tree>/install` (`make modules_install
    /// INSTALL_MOD_PATH=<tree>/install`, as `shmemfuzz` builds do). `image` defaults to
    /// `<tree>/arch/x86/boot/bzImage`; given alone, its tree is the directory it was built in.
    pub fn prepare_tree(
        &self,
        image: Option<&Path>,
        tree: Option<&Path>,
    ) -> Result<PreparedKernel, ContextError> {
        if let Some(img) = image.filter(|i| !i.is_file()) {
            return Err(ContextError::Tree {
                dir: img.parent().map(Path::to_path_buf).unwrap_or_default(),
                problem: format!("no kernel image at {}", img.display()),
            });
        }
        let tree = match (tree, image) {
            (Some(t), _) => t.to_path_buf(),
            (None, Some(img)) => img
                .ancestors()
                .nth(4)
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            (None, None) => PathBuf::from("."),
        };
        let problem = |problem: String| ContextError::Tree {
            dir: tree.clone(),
            problem,
        };
        // QEMU and make run elsewhere: every path handed on must be absolute.
        let tree = tree
            .canonicalize()
            .map_err(|e| problem(format!("cannot resolve it: {e}")))?;
        let image = image
            .map(|i| {
                i.canonicalize()
                    .map_err(|e| problem(format!("{}: {e}", i.display())))
            })
            .transpose()?;
        let image = image.as_deref();
        let release = std::fs::read_to_string(tree.join("include/config/kernel.release"))
            .map(|s| s.trim().to_string())
            .map_err(|e| problem(format!("no include/config/kernel.release ({e}): give the build directory with --kernel-tree")))?;
        let bzimage = image.map_or_else(|| tree.join("arch/x86/boot/bzImage"), Path::to_path_buf);
        if !bzimage.is_file() {
            return Err(problem(format!("no kernel image at {}", bzimage.display())));
        }
        let modules_dir = tree.join("install/lib/modules").join(&release);
        if !modules_dir.join("modules.dep").is_file() {
            return Err(problem(format!(
                "no {}/modules.dep: run `make O={} modules_install INSTALL_MOD_PATH={}/install`",
                modules_dir.display(),
                tree.display(),
                tree.display()
            )));
        }
        let kernel = FetchedKernel {
            id: format!("tree-{release}"),
            release: release.clone(),
            bzimage,
            modules_dir,
            config: tree.join(".config"),
        };
        let mock_module = self.mock_module_for_tree(&tree, &release)?;
        Ok(PreparedKernel {
            kernel,
            mock_module,
        })
    }

    /// The accelerator to use with `kernel`: `SHMEMFUZZ_ACCEL`, else a cached, bounded probe.
    pub fn accel(&self, kernel: &Path) -> Result<Accel, VmError> {
        accel::probe(kernel, Some(&self.cache_dir.join("accel")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_lexically() {
        for (raw, want) in [
            (
                "/project/harness/host/../../fuzz/corpus",
                "/project/fuzz/corpus",
            ),
            ("/a/./b/../c", "/a/c"),
            ("/..", "/"),
            ("a/../..", ".."),
            ("./x", "x"),
            ("a/..", "."),
        ] {
            assert_eq!(normalize(Path::new(raw)), Path::new(want), "{raw}");
        }
        let root = source_root();
        assert!(
            !root
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir)),
            "{}",
            root.display()
        );
    }
}
