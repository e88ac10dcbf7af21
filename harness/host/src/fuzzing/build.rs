//! Building the `shmem_ops` fuzz target (fuzz/, its own cargo workspace) for a campaign.
//!
//! Built like `cargo fuzz build` would, minus the host's own coverage instrumentation
//! (SanitizerCoverage): a campaign's guidance is the kernel's coverage, which the target
//! writes into libFuzzer's extra counters; instrumenting the host would add features for
//! host code paths (parsing, judging) that say nothing about the kernel. `cargo fuzz run
//! shmem_ops` builds an instrumented binary, which works too, with both kinds of feedback.
//! libfuzzer-sys compiles libFuzzer itself, which needs a C++ compiler.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{self, Group, Signal, Waited, TOOL_LIMIT};

/// How long `c++ --version` may take.
const VERSION_LIMIT: Duration = Duration::from_secs(60);
/// How long cargo may take to build the target (about a minute from nothing).
const BUILD_LIMIT: Duration = TOOL_LIMIT;
/// How long cargo gets between SIGTERM and SIGKILL, and to be reaped after.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the target could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no fuzz/Cargo.toml under {0}: run from a shmemfuzz checkout")]
    NoFuzzDir(PathBuf),
    #[error("`{0}` not found: install g++ (libFuzzer is C++; apt-get install -y g++)")]
    NoCxx(String),
    #[error("running cargo")]
    Spawn(#[source] std::io::Error),
    #[error("building the fuzz target took longer than {0:?}; cargo was stopped")]
    TimedOut(Duration),
    #[error("building the fuzz target: cargo was stopped")]
    Interrupted(#[source] crate::interrupt::Interrupted),
    #[error("building the fuzz target failed (exit {code:?}); cargo's output is above")]
    Failed { code: Option<i32> },
}

/// The binary's path once built with [`build_target`].
pub fn target_path(root: &Path) -> PathBuf {
    root.join("fuzz/target/campaign/release/shmem_ops")
}

/// Builds (or finds up to date: cargo decides) the campaign's `shmem_ops` binary. Cargo's
/// output goes to this process's stderr.
pub fn build_target(root: &Path) -> Result<PathBuf, BuildError> {
    let manifest = root.join("fuzz/Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NoFuzzDir(root.to_path_buf()));
    }
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let mut version = Command::new(&cxx);
    version.arg("--version");
    if process::output(version, VERSION_LIMIT).is_err() {
        return Err(BuildError::NoCxx(cxx));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg fuzzing -C debug-assertions -C overflow-checks");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--locked", "--bin", "shmem_ops"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(root.join("fuzz/target/campaign"))
        .env("RUSTFLAGS", rustflags.trim());
    // Cargo's output goes to ours (inherited).
    let cargo = Group::spawn(cmd, Signal::SIGTERM).map_err(BuildError::Spawn)?;
    let status = match cargo
        .wait_interruptible(Instant::now() + BUILD_LIMIT)
        .map_err(BuildError::Spawn)?
    {
        Waited::Exited(status) => status,
        Waited::TimedOut => {
            cargo.stop(STOP_GRACE, STOP_GRACE);
            return Err(BuildError::TimedOut(BUILD_LIMIT));
        }
        Waited::Interrupted(i) => {
            cargo.stop(STOP_GRACE, STOP_GRACE);
            return Err(BuildError::Interrupted(i));
        }
    };
    if !status.success() {
        return Err(BuildError::Failed {
            code: status.code(),
        });
    }
    Ok(target_path(root))
}
