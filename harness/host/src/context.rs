//! Where things are and which defaults apply: the source tree (for the catalog and the
//! cache), the kernel cache, the accelerator. Shared by the CLI, the benchmarks and the tests.

use std::path::{Path, PathBuf};

use crate::kernel::{Catalog, FetchEvent, FetchedKernel, KernelCache, KernelError};
use crate::vm::{accel, Accel, VmError};

/// The source tree this binary was built from (`SHMEMFUZZ_ROOT` overrides it).
pub fn source_root() -> PathBuf {
    match std::env::var_os("SHMEMFUZZ_ROOT") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .components()
            .collect(),
    }
}

#[derive(Debug)]
pub struct Context {
    pub root: PathBuf,
    pub catalog: Catalog,
    pub cache: KernelCache,
}

impl Context {
    /// The catalog from `kernels/catalog.toml` if the source tree is there, else the copy
    /// built into the binary; the cache under `SHMEMFUZZ_CACHE` or `<root>/.cache`.
    pub fn new() -> Result<Self, KernelError> {
        let root = source_root();
        let file = root.join("kernels/catalog.toml");
        let catalog = if file.exists() {
            Catalog::load(&file)?
        } else {
            Catalog::builtin()?
        };
        let cache = KernelCache::new(KernelCache::default_root(&root));
        Ok(Context {
            root,
            catalog,
            cache,
        })
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

    /// The accelerator to use with `kernel`: `SHMEMFUZZ_ACCEL`, else a cached, bounded probe.
    pub fn accel(&self, kernel: &Path) -> Result<Accel, VmError> {
        let dir = self.cache.root().parent().map(|p| p.join("accel"));
        accel::probe(kernel, dir.as_deref())
    }
}
