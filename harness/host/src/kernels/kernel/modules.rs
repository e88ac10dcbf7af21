//! Which `.ko`/`.ko.xz` files to load, in which order: [`module_load_order`] reads
//! `modules.dep` (written by `depmod`) and `modules.builtin` of a `lib/modules/<release>` dir.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::KernelError;

/// Module name of a path or name: file name without `.ko[.xz|.zst|.gz]`, `-` read as `_`
/// (the kernel treats them alike).
pub(crate) fn module_name(path_or_name: &str) -> String {
    let file = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let stem = file.split_once(".ko").map_or(file, |(s, _)| s);
    stem.replace('-', "_")
}

/// Parsed `modules.dep`: module name → (relative path, dependency paths).
#[derive(Debug, Default)]
pub(crate) struct ModulesDep {
    entries: HashMap<String, (String, Vec<String>)>,
}

impl ModulesDep {
    /// Parses `path: dep dep ...` lines; blank and malformed lines are skipped.
    pub(crate) fn parse(text: &str) -> Self {
        let entries = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(path, deps)| {
                let deps = deps.split_whitespace().map(str::to_string).collect();
                (module_name(path.trim()), (path.trim().to_string(), deps))
            })
            .collect();
        ModulesDep { entries }
    }

    /// Paths (as written in modules.dep) of `wanted` and their dependencies, dependencies
    /// first, each once. Names in `builtin` are skipped; other unknown names are returned as
    /// `Err(Unknown(name))`.
    pub(crate) fn order(
        &self,
        wanted: &[&str],
        builtin: &HashSet<String>,
    ) -> Result<Vec<String>, OrderError> {
        let mut out = Vec::new();
        let mut done = HashSet::new();
        let mut active = HashSet::new();
        for name in wanted {
            let name = module_name(name);
            if self.entries.contains_key(&name) {
                self.visit(&name, &mut done, &mut active, &mut out)?;
            } else if !builtin.contains(&name) {
                return Err(OrderError::Unknown(name));
            }
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut HashSet<String>,
        active: &mut HashSet<String>,
        out: &mut Vec<String>,
    ) -> Result<(), OrderError> {
        if done.contains(name) {
            return Ok(());
        }
        if !active.insert(name.to_string()) {
            return Err(OrderError::Cycle(name.to_string()));
        }
        let Some((path, deps)) = self.entries.get(name) else {
            return Err(OrderError::Unknown(name.to_string()));
        };
        // modules.dep lists a module's transitive dependencies; visiting each one's own
        // entry orders them among themselves. It lists them last-to-load first, so walk it
        // backwards to stay close to modprobe's order.
        for dep in deps.iter().rev() {
            self.visit(&module_name(dep), done, active, out)?;
        }
        active.remove(name);
        done.insert(name.to_string());
        out.push(path.clone());
        Ok(())
    }
}

/// Why [`ModulesDep::order`] failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OrderError {
    Unknown(String),
    Cycle(String),
}

/// Names of built-in modules from `modules.builtin` text.
pub(crate) fn parse_builtin(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// The module files to load for `wanted` (names like `virtio_blk`), with all their
/// dependencies, dependencies first and without duplicates. Built-in modules (listed in
/// `modules.builtin`) are skipped; a module neither built in nor in `modules.dep` is an error.
///
/// `modules_dir` is `.../lib/modules/<release>` and must contain `modules.dep` (run `depmod`;
/// [`super::KernelCache::fetch`] does). Returned paths are `modules_dir` joined with the paths
/// in `modules.dep`.
pub fn module_load_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, KernelError> {
    let dep_path = modules_dir.join("modules.dep");
    let dep_text = match std::fs::read_to_string(&dep_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KernelError::ModulesDepMissing {
                dir: modules_dir.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(KernelError::io(
                format!("cannot read {}", dep_path.display()),
                e,
            ))
        }
    };
    let builtin_path = modules_dir.join("modules.builtin");
    let builtin = match std::fs::read_to_string(&builtin_path) {
        Ok(t) => parse_builtin(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
        Err(e) => {
            return Err(KernelError::io(
                format!("cannot read {}", builtin_path.display()),
                e,
            ))
        }
    };
    let dir = modules_dir.to_path_buf();
    let order = ModulesDep::parse(&dep_text)
        .order(wanted, &builtin)
        .map_err(|e| match e {
            OrderError::Unknown(name) => KernelError::ModuleNotFound {
                name,
                dir: dir.clone(),
            },
            OrderError::Cycle(name) => KernelError::ModuleCycle {
                name,
                dir: dir.clone(),
            },
        })?;
    Ok(order.into_iter().map(|p| modules_dir.join(p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like Debian 6.1's modules.dep (plain .ko) and 6.12's (.ko.xz, virtio built in).
    const DEP_61: &str = "\
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/gpu/drm/drm.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";
    const DEP_612: &str = "\
kernel/drivers/gpu/drm/drm.ko.xz:
kernel/drivers/gpu/drm/drm_kms_helper.ko.xz: kernel/drivers/gpu/drm/drm.ko.xz
kernel/drivers/gpu/drm/drm_shmem_helper.ko.xz: kernel/drivers/gpu/drm/drm_kms_helper.ko.xz kernel/drivers/gpu/drm/drm.ko.xz
kernel/drivers/block/virtio_blk.ko.xz:
";
    const BUILTIN_612: &str =
        "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n\
kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\n";

    fn dir_with(dep: &str, builtin: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("modules.dep"), dep).expect("write dep");
        if let Some(b) = builtin {
            std::fs::write(d.path().join("modules.builtin"), b).expect("write builtin");
        }
        d
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| module_name(&p.to_string_lossy()))
            .collect()
    }

    #[test]
    fn orders_dependencies_first_without_duplicates() {
        let d = dir_with(DEP_61, Some(""));
        let got = module_load_order(
            d.path(),
            &["virtio_blk", "virtio_pci", "virtio_console", "drm"],
        )
        .expect("order");
        assert_eq!(
            names(&got),
            [
                "virtio_ring",
                "virtio",
                "virtio_blk",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio_pci",
                "virtio_console",
                "drm"
            ]
        );
        assert_eq!(
            got[0],
            d.path().join("kernel/drivers/virtio/virtio_ring.ko")
        );
    }

    #[test]
    fn skips_builtins_and_handles_compressed_modules() {
        let d = dir_with(DEP_612, Some(BUILTIN_612));
        let got = module_load_order(
            d.path(),
            &[
                "virtio_blk",
                "virtio_pci",
                "virtio_console",
                "drm_shmem_helper",
            ],
        )
        .expect("order");
        assert_eq!(
            names(&got),
            ["virtio_blk", "drm", "drm_kms_helper", "drm_shmem_helper"]
        );
        assert!(got[1].ends_with("kernel/drivers/gpu/drm/drm.ko.xz"));
    }

    #[test]
    fn dashes_and_underscores_are_the_same_module() {
        let d = dir_with(DEP_61, None);
        let got = module_load_order(d.path(), &["virtio_rng"]).expect("order");
        assert!(got[2].ends_with("hw_random/virtio-rng.ko"), "{got:?}");
    }

    #[test]
    fn unknown_module_and_missing_dep_file_are_errors() {
        let d = dir_with(DEP_61, Some(BUILTIN_612));
        let err = module_load_order(d.path(), &["gma500_gfx"]).expect_err("unknown");
        assert!(matches!(&err, KernelError::ModuleNotFound { name, .. } if name == "gma500_gfx"));
        let empty = tempfile::tempdir().expect("tempdir");
        let err = module_load_order(empty.path(), &["drm"]).expect_err("no modules.dep");
        assert!(err.to_string().contains("depmod -b"), "{err}");
    }

    #[test]
    fn cycles_are_reported_not_looped() {
        let d = dir_with("a.ko: b.ko\nb.ko: a.ko\n", None);
        let err = module_load_order(d.path(), &["a"]).expect_err("cycle");
        assert!(matches!(err, KernelError::ModuleCycle { .. }), "{err}");
    }
}
