//! Guest snapshots: the whole state of a guest whose agent has just become ready, saved
//! once and restored instead of a cold boot when a run killed the guest (a kernel report,
//! a panic, a hang). A [`crate::runner::Runner`] takes one after its first boot.
//!
//! The mechanism is QEMU's migration stream written to a file (`migrate "exec:cat > F"` on
//! the stopped guest, then `-incoming "exec:cat F"` on a fresh QEMU), not `savevm`/`loadvm`:
//! `savevm` needs every writable disk to be qcow2 (the swap devices are raw images the host
//! creates and inspects), writes into a disk image the next run would share, and keeps the
//! old QEMU process alive; a migration stream is one file, loads into a new process with the
//! usual bounded lifetime, and leaves the disks to us. Swap images are recreated at restore:
//! at the snapshot they held only the headers the host wrote, and a restored kernel believes
//! every slot is free, so fresh images are exactly what it expects.
//!
//! A stream only loads into a QEMU with the same devices, and a restored guest only makes
//! sense for the same kernel, agent, modules and settings: [`Fingerprint`] records all of
//! these at the snapshot and [`Snapshot::check`] refuses a restore that differs in any.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::guest::AGENT;
use crate::session::GuestInfo;
use crate::vm::{cmdline, VmConfig};

/// Bumped when what a fingerprint covers changes.
const FINGERPRINT_FORMAT: u32 = 1;
/// Stands for the per-boot work directory in fingerprinted QEMU arguments.
const WORKDIR: &str = "<workdir>";
/// Stands for the initramfs in fingerprinted QEMU arguments (hashed instead).
const INITRAMFS: &str = "<initramfs>";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading {path} for the snapshot fingerprint")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the snapshot does not match this guest: {what} was {saved}, is {now} \
         (boot cold and take a new snapshot)"
    )]
    Mismatch {
        what: &'static str,
        saved: String,
        now: String,
    },
}

/// Everything a saved guest state depends on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fingerprint {
    pub format: u32,
    /// The QEMU binary: resolved path, size and modification time (hashing 20 MB per
    /// restore would cost more than it buys; a rebuilt QEMU changes size or time).
    pub qemu: String,
    /// sha256 of the kernel image.
    pub kernel: String,
    /// sha256 of the agent binary the host embeds (it speaks the host's protocol).
    pub agent: String,
    /// sha256 of the initramfs the guest booted from (modules, executables, swap count).
    pub initramfs: String,
    /// The files the initramfs was built with beyond the kernel's (the mock driver, test
    /// executables): name and sha256 each. A restore reuses the snapshot's initramfs, so
    /// this is what tells that the session asks for other ones.
    pub inputs: Vec<(String, String)>,
    /// QEMU's arguments with the work directory and initramfs paths replaced by
    /// placeholders: memory layout, vCPUs, accelerator, disks, kernel arguments.
    pub args: Vec<String>,
    /// Size of each swap image, in bytes.
    pub swap_size: u64,
}

impl Fingerprint {
    /// The fingerprint of a guest launched with `cfg` (without `-incoming`) by a session
    /// whose work directory (swap images, the VM's own directory) is `workdir`, with swap
    /// images of `swap_size` bytes each and `inputs` in its initramfs.
    pub fn of(
        cfg: &VmConfig,
        workdir: &Path,
        swap_size: u64,
        inputs: &[PathBuf],
    ) -> Result<Fingerprint, SnapshotError> {
        let mut plain = cfg.clone();
        plain.incoming = None;
        let workdir = workdir.to_string_lossy().into_owned();
        let initramfs = cfg.initramfs.to_string_lossy().into_owned();
        let args = cmdline::qemu_args(&plain)
            .iter()
            .map(|a| {
                a.to_string_lossy()
                    .replace(&initramfs, INITRAMFS)
                    .replace(&workdir, WORKDIR)
            })
            .collect();
        Ok(Fingerprint {
            format: FINGERPRINT_FORMAT,
            qemu: qemu_identity(&cfg.qemu),
            kernel: read_sha256(&cfg.kernel)?,
            agent: hex::encode(Sha256::digest(AGENT)),
            initramfs: read_sha256(&cfg.initramfs)?,
            inputs: inputs
                .iter()
                .map(|p| Ok((p.display().to_string(), read_sha256(p)?)))
                .collect::<Result<_, SnapshotError>>()?,
            args,
            swap_size,
        })
    }

    /// The first difference from `now`, as an error naming it.
    pub fn check(&self, now: &Fingerprint) -> Result<(), SnapshotError> {
        let show = |v: &[(String, String)]| {
            v.iter()
                .map(|(name, sha)| format!("{name} ({sha})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let fields: [(&'static str, String, String); 7] = [
            (
                "the fingerprint format",
                self.format.to_string(),
                now.format.to_string(),
            ),
            ("QEMU", self.qemu.clone(), now.qemu.clone()),
            (
                "the kernel image (sha256)",
                self.kernel.clone(),
                now.kernel.clone(),
            ),
            ("the agent (sha256)", self.agent.clone(), now.agent.clone()),
            (
                "the initramfs (sha256)",
                self.initramfs.clone(),
                now.initramfs.clone(),
            ),
            (
                "the modules and executables",
                show(&self.inputs),
                show(&now.inputs),
            ),
            (
                "the swap size",
                self.swap_size.to_string(),
                now.swap_size.to_string(),
            ),
        ];
        if let Some((what, saved, now)) = fields.into_iter().find(|(_, a, b)| a != b) {
            return Err(SnapshotError::Mismatch { what, saved, now });
        }
        if let Some((saved, now)) = first_difference(&self.args, &now.args) {
            return Err(SnapshotError::Mismatch {
                what: "a QEMU argument",
                saved,
                now,
            });
        }
        Ok(())
    }
}

/// The first position where `a` and `b` differ, shown as the two arguments there.
fn first_difference(a: &[String], b: &[String]) -> Option<(String, String)> {
    let missing = || "(none)".to_string();
    (0..a.len().max(b.len())).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        (x != y).then(|| {
            (
                x.cloned().unwrap_or_else(missing),
                y.cloned().unwrap_or_else(missing),
            )
        })
    })
}

/// A saved guest: the stream, the initramfs it booted from (the restored QEMU is given the
/// same), what the agent reported at ready, and the fingerprint.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub state: PathBuf,
    pub initramfs: PathBuf,
    pub info: GuestInfo,
    pub fingerprint: Fingerprint,
    /// The stream's size in bytes.
    pub bytes: u64,
    /// How long saving took.
    pub save_ms: u64,
}

impl Snapshot {
    /// Refuses to restore into a guest whose fingerprint is `now`.
    pub fn check(&self, now: &Fingerprint) -> Result<(), SnapshotError> {
        self.fingerprint.check(now)
    }
}

fn qemu_identity(qemu: &Path) -> String {
    let resolved = crate::vm::resolve_qemu(qemu).unwrap_or_else(|_| qemu.to_path_buf());
    match std::fs::metadata(&resolved) {
        Ok(m) => {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            format!("{} ({} bytes, mtime {mtime})", resolved.display(), m.len())
        }
        Err(_) => resolved.display().to_string(),
    }
}

/// [`crate::files::file_sha256`] as a [`SnapshotError`].
fn read_sha256(path: &Path) -> Result<String, SnapshotError> {
    crate::files::file_sha256(path).map_err(|source| SnapshotError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, bytes) in [("k1", "kernel one"), ("k2", "kernel two"), ("i", "cpio")] {
                std::fs::write(dir.path().join(name), bytes).expect("write");
            }
            Files { dir }
        }

        fn cfg(&self, kernel: &str, workdir: &str) -> VmConfig {
            let p = self.dir.path();
            let mut cfg = VmConfig::new(p.join(kernel), p.join("i"), p.join(workdir).join("vm"));
            cfg.disks = vec![crate::vm::DiskSpec::new(p.join(workdir).join("swap0.img"))];
            cfg
        }

        /// The fingerprint of `kernel` booted in `workdir` with `swap` bytes of swap.
        fn print(&self, kernel: &str, workdir: &str, swap: u64) -> Fingerprint {
            self.print_of(&self.cfg(kernel, workdir), workdir, swap)
        }

        fn print_of(&self, cfg: &VmConfig, workdir: &str, swap: u64) -> Fingerprint {
            Fingerprint::of(cfg, &self.dir.path().join(workdir), swap, &[]).expect("fingerprint")
        }
    }

    #[test]
    fn the_same_guest_in_another_work_directory_matches() {
        let f = Files::new();
        let saved = f.print("k1", "boot0", 1 << 20);
        let mut again = f.cfg("k1", "boot7");
        again.incoming = Some(f.dir.path().join("state"));
        let now = f.print_of(&again, "boot7", 1 << 20);
        saved.check(&now).expect("same kernel, settings and files");
    }

    #[test]
    fn another_kernel_is_refused() {
        let f = Files::new();
        let saved = f.print("k1", "boot0", 1 << 20);
        let now = f.print("k2", "boot1", 1 << 20);
        let e = saved.check(&now).expect_err("another kernel image");
        assert!(e.to_string().contains("kernel image"), "{e}");
    }

    #[test]
    fn other_settings_are_refused() {
        let f = Files::new();
        let saved = f.print("k1", "boot0", 1 << 20);
        type Change = fn(&mut VmConfig);
        let changes: [(&str, Change); 4] = [
            ("append", |c| c.append.push("shmem.planted_no_pin=1".into())),
            ("smp", |c| c.smp = 2),
            ("memory", |c| {
                c.memory = crate::vm::Topology::Numa.layout();
            }),
            ("disks", |c| c.disks.clear()),
        ];
        for (what, change) in changes {
            let mut cfg = f.cfg("k1", "boot1");
            change(&mut cfg);
            let now = f.print_of(&cfg, "boot1", 1 << 20);
            let e = saved.check(&now).expect_err(what);
            assert!(e.to_string().contains("QEMU argument"), "{what}: {e}");
        }
        let now = f.print("k1", "boot1", 2 << 20);
        assert!(saved.check(&now).is_err(), "another swap size");
    }

    #[test]
    fn another_initramfs_is_refused() {
        let f = Files::new();
        let saved = f.print("k1", "boot0", 1 << 20);
        std::fs::write(f.dir.path().join("i"), "another cpio").expect("write");
        let now = f.print("k1", "boot0", 1 << 20);
        let e = saved.check(&now).expect_err("modules or agent changed");
        assert!(e.to_string().contains("initramfs"), "{e}");
    }

    #[test]
    fn another_module_is_refused() {
        let f = Files::new();
        let module = f.dir.path().join("mock.ko");
        std::fs::write(&module, "one").expect("write");
        let cfg = f.cfg("k1", "boot0");
        let workdir = f.dir.path().join("boot0");
        let inputs = std::slice::from_ref(&module);
        let saved = Fingerprint::of(&cfg, &workdir, 1 << 20, inputs).expect("fingerprint");
        std::fs::write(&module, "two").expect("write");
        let now = Fingerprint::of(&cfg, &workdir, 1 << 20, inputs).expect("fingerprint");
        let e = saved.check(&now).expect_err("the module was rebuilt");
        assert!(e.to_string().contains("mock.ko"), "{e}");
        let none = Fingerprint::of(&cfg, &workdir, 1 << 20, &[]).expect("fingerprint");
        assert!(saved.check(&none).is_err(), "no module at all");
    }

    #[test]
    fn a_missing_kernel_is_an_error_naming_it() {
        let f = Files::new();
        let e = Fingerprint::of(
            &f.cfg("gone", "boot0"),
            &f.dir.path().join("boot0"),
            1 << 20,
            &[],
        )
        .expect_err("no such file");
        assert!(e.to_string().contains("gone"), "{e}");
    }
}
