//! A runtime directory beside the executable: what a shmemfuzz binary needs at run time when
//! it runs away from its checkout and from the host's QEMU (a ClusterFuzzLite / OSS-Fuzz
//! `$OUT`, a fuzz target copied to another machine).
//!
//! Found once per process: `$SHMEMFUZZ_RUNTIME` if set (empty: none), else
//! `<directory of the executable>/shmemfuzz-runtime` if that directory exists. Without one
//! nothing changes: the checkout the binary was built from and the `qemu-system-x86_64` in
//! `PATH`. With one:
//!
//! - it is the data root ([`crate::kernels::context::source_root`], unless `SHMEMFUZZ_ROOT` is set):
//!   laid out like a checkout's data, `kernels/catalog.toml`, `kernels/gma500_mock/` (the
//!   mock driver's sources, which key its cached build), and `.cache/` holding the kernel and
//!   its headers as `shmemfuzz kernel fetch` lays them out, with the mock driver built for
//!   it, so nothing is downloaded or compiled at run time;
//! - its QEMU is the default one ([`default_qemu`]) and runs through the runtime's own
//!   dynamic loader and libraries, with its modules and firmware ([`qemu_command`]):
//!
//! ```text
//! shmemfuzz-runtime/qemu/bin/qemu-system-x86_64
//!                   qemu/lib/ld-linux-x86-64.so.2, lib*.so*   every library `ldd` lists
//!                   qemu/modules/                            QEMU_MODULE_DIR (accel-tcg-*.so)
//!                   qemu/firmware/                           `-L`: bios-256k.bin, kvmvapic.bin, ...
//! ```
//!
//! `.clusterfuzzlite/build.sh` writes one; `ci/cflite-test.sh` runs a target from it in a
//! Debian chroot without QEMU (docs/fuzzing.md, "ClusterFuzzLite and OSS-Fuzz").

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::guest::vm::DEFAULT_QEMU;

/// The runtime directory's name beside the executable.
pub const DIR_NAME: &str = "shmemfuzz-runtime";
/// Environment variable naming the runtime directory (empty: use none).
pub const ENV: &str = "SHMEMFUZZ_RUNTIME";

/// A runtime directory (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    pub dir: PathBuf,
}

/// The runtime's QEMU and what it runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu {
    pub binary: PathBuf,
    /// The dynamic loader QEMU is started through (`qemu/lib/ld-linux-x86-64.so.2`): the
    /// copied libraries need their own glibc's loader, whatever the system's is.
    pub loader: PathBuf,
    pub lib_dir: PathBuf,
    pub module_dir: PathBuf,
    pub firmware_dir: PathBuf,
}

impl Runtime {
    /// The directory standing for a checkout: the catalog, the mock driver's sources, `.cache/`.
    pub fn data_root(&self) -> &Path {
        &self.dir
    }

    /// The runtime's QEMU, if it holds one.
    pub fn qemu(&self) -> Option<Qemu> {
        let q = self.dir.join("qemu");
        let qemu = Qemu {
            binary: q.join("bin").join(DEFAULT_QEMU),
            loader: q.join("lib/ld-linux-x86-64.so.2"),
            lib_dir: q.join("lib"),
            module_dir: q.join("modules"),
            firmware_dir: q.join("firmware"),
        };
        (qemu.binary.is_file() && qemu.loader.is_file()).then_some(qemu)
    }
}

/// The runtime `env` (the value of [`ENV`]) or the executable `exe` points to (pure; see
/// [`current`]).
pub fn find(env: Option<OsString>, exe: Option<&Path>) -> Option<Runtime> {
    match env {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(Runtime {
            dir: crate::kernels::context::normalize(Path::new(&dir)),
        }),
        None => {
            let dir = exe?.parent()?.join(DIR_NAME);
            dir.is_dir().then_some(Runtime { dir })
        }
    }
}

/// This process's runtime, looked up once.
pub fn current() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let exe = std::env::current_exe().ok();
            let found = find(std::env::var_os(ENV), exe.as_deref());
            if let Some(r) = &found {
                tracing::debug!(dir = %r.dir.display(), "using a runtime directory");
            }
            found
        })
        .as_ref()
}

/// The QEMU used when none is named: the runtime's, else [`DEFAULT_QEMU`] in `PATH`.
pub fn default_qemu() -> PathBuf {
    current()
        .and_then(Runtime::qemu)
        .map_or_else(|| PathBuf::from(DEFAULT_QEMU), |q| q.binary)
}

/// The command that starts `program` (a resolved QEMU path): itself, or for the runtime's
/// QEMU its loader with the runtime's libraries, modules and firmware directory (`-L`,
/// before the caller's arguments).
pub fn qemu_command(program: &Path) -> Command {
    match current().and_then(Runtime::qemu) {
        Some(q) if q.binary == program => wrapped(&q),
        _ => Command::new(program),
    }
}

fn wrapped(q: &Qemu) -> Command {
    let mut cmd = Command::new(&q.loader);
    cmd.arg("--library-path")
        .arg(&q.lib_dir)
        .arg(&q.binary)
        .arg("-L")
        .arg(&q.firmware_dir)
        .env("QEMU_MODULE_DIR", &q.module_dir);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_variable_or_beside_the_executable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let exe = tmp.path().join("shmem_ops");
        assert_eq!(find(None, Some(&exe)), None, "no directory beside it");
        std::fs::create_dir(tmp.path().join(DIR_NAME)).expect("mkdir");
        assert_eq!(
            find(None, Some(&exe)),
            Some(Runtime {
                dir: tmp.path().join(DIR_NAME)
            })
        );
        assert_eq!(find(Some("".into()), Some(&exe)), None, "empty: none");
        assert_eq!(
            find(Some("/rt/./x".into()), Some(&exe)),
            Some(Runtime {
                dir: "/rt/x".into()
            })
        );
    }

    #[test]
    fn its_qemu_runs_through_its_loader_with_its_firmware() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rt = Runtime {
            dir: tmp.path().to_path_buf(),
        };
        assert_eq!(rt.qemu(), None, "no QEMU in it");
        for f in [
            "qemu/bin/qemu-system-x86_64",
            "qemu/lib/ld-linux-x86-64.so.2",
        ] {
            let p = tmp.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, b"").expect("write");
        }
        let q = rt.qemu().expect("a QEMU");
        let cmd = wrapped(&q);
        assert_eq!(cmd.get_program(), q.loader.as_os_str());
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "--library-path".as_ref(),
                q.lib_dir.as_os_str(),
                q.binary.as_os_str(),
                "-L".as_ref(),
                q.firmware_dir.as_os_str(),
            ]
        );
        let env: Vec<_> = cmd.get_envs().collect();
        assert_eq!(
            env,
            [("QEMU_MODULE_DIR".as_ref(), Some(q.module_dir.as_os_str()))]
        );
    }
}
