//! QEMU launcher: the command line, the accelerator probe, and a VM with a bounded lifetime.
//!
//! ```no_run
//! use std::time::Duration;
//! use shmemfuzz::guest::vm::{accel, ConsoleRead, Machine, VmConfig};
//! # fn main() -> Result<(), shmemfuzz::guest::vm::VmError> {
//! let mut cfg = VmConfig::new("vmlinuz", "initramfs.cpio", "/tmp/vm0");
//! cfg.accel = accel::probe(&cfg.kernel, accel::default_cache_dir().as_deref())?;
//! cfg.lifetime = Duration::from_secs(300);
//! let vm = Machine::launch(cfg)?;
//! let channel = vm.connect_channel(Duration::from_secs(10))?; // virtio-serial "shmemfuzz.0"
//! while let ConsoleRead::Data(bytes) = vm.recv_console(Duration::from_secs(1)) {
//!     // feed the console parser
//! #   let _ = (&bytes, &channel);
//! }
//! vm.sysrq('w')?; // stacks of blocked tasks, on the console
//! # Ok(()) }
//! ```
//!
//! - [`config`]: [`VmConfig`], [`MemoryLayout`] (default 2 GiB with 1 GiB below 4 GiB, so the
//!   guest has a Normal zone), [`DiskSpec`], [`Accel`].
//! - [`cmdline`]: pure functions from a config to QEMU's arguments and the kernel command
//!   line; [`DEFAULT_KERNEL_ARGS`] is the one place the kernel defaults are chosen.
//! - [`accel`]: KVM only when it provably works (bounded trial, cached); TCG otherwise.
//! - [`pvh`]: the uncompressed image QEMU boots directly when the kernel supports PVH
//!   (decompressed once on the host: no decompressor running under TCG).
//! - [`Machine`]: spawns QEMU in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`,
//!   enforces the lifetime with a watchdog, captures the serial console to a file and hands
//!   it out live, accepts the agent channel, speaks QMP, saves the guest's state to a file
//!   and resumes from one (`-incoming`), and kills and reaps QEMU on drop.
//!
//! Files in [`VmConfig::workdir`]: `console.log`, `qemu.stderr`, `agent.sock` (the host
//! listens, QEMU connects), `qmp.sock` (QEMU listens).

pub mod accel;
pub mod cmdline;
pub mod config;
mod error;
mod machine;
mod monitor;
pub mod pvh;

pub use crate::os::process::live_group_members;
pub use cmdline::{
    kernel_cmdline, qemu_args, AGENT_PORT_NAME, CONSOLE_LOG, DEFAULT_KERNEL_ARGS, QEMU_STDERR,
};
pub use config::{Accel, DiskSpec, MemoryLayout, Topology, VmConfig, DEFAULT_QEMU};
pub use error::{VmError, QEMU_PACKAGE};
pub use machine::{ConsoleRead, Machine, MONITOR_TIMEOUT};

/// The QEMU binary `qemu` names: itself if it is a path, else the first in `PATH`
/// ([`crate::os::process::find_program`]). A miss is [`VmError::QemuNotFound`].
pub fn resolve_qemu(qemu: &std::path::Path) -> Result<std::path::PathBuf, VmError> {
    crate::os::process::find_program(qemu).ok_or_else(|| VmError::QemuNotFound {
        name: qemu.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn resolve_reports_package() {
        let e = super::resolve_qemu(Path::new("shmemfuzz-no-such-qemu")).expect_err("must miss");
        let msg = e.to_string();
        assert!(msg.contains("apt-get install -y qemu-system-x86"), "{msg}");
        assert!(super::resolve_qemu(Path::new("/nonexistent/qemu")).is_err());
        assert!(super::resolve_qemu(Path::new("sh")).is_ok());
    }
}
