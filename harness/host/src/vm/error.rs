//! [`VmError`].

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// The Debian package that provides `qemu-system-x86_64`.
pub const QEMU_PACKAGE: &str = "qemu-system-x86";

/// Everything that can go wrong starting, talking to or stopping a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The QEMU binary is not installed (or not in `PATH`).
    #[error(
        "`{name}` not found{}; install it with `apt-get install -y {QEMU_PACKAGE}`",
        if name.contains('/') { "" } else { " in PATH" }
    )]
    QemuNotFound {
        /// The name or path that was looked up.
        name: String,
    },
    /// A configuration value is out of range or malformed.
    #[error("invalid VM configuration: {0}")]
    InvalidConfig(String),
    /// A file the VM needs does not exist.
    #[error("{what} {path:?} does not exist or is not a regular file")]
    MissingFile {
        /// Which input (kernel, initramfs, disk).
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// An operating-system call failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// QEMU exited while the host was waiting for something from it.
    #[error("QEMU exited ({status}) while {waiting_for}; its stderr ends with:\n{stderr_tail}")]
    QemuExited {
        /// QEMU's exit status.
        status: ExitStatus,
        /// What the host was waiting for.
        waiting_for: String,
        /// The last lines QEMU wrote to stderr.
        stderr_tail: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What the host was waiting for.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// The agent channel was already handed out by [`super::Machine::connect_channel`].
    #[error("the agent channel was already taken")]
    ChannelTaken,
    /// QMP answered with an error or something unreadable.
    #[error("QEMU monitor: {0}")]
    Monitor(String),
    /// `SHMEMFUZZ_ACCEL` holds something other than `tcg` or `kvm`.
    #[error("SHMEMFUZZ_ACCEL={value:?} is not `tcg` or `kvm`")]
    BadAccelOverride {
        /// The variable's value.
        value: String,
    },
}

impl VmError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> VmError {
        let context = context.into();
        move |source| VmError::Io { context, source }
    }
}
