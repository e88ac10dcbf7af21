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

/// Why the target could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no fuzz/Cargo.toml under {0}: run from a shmemfuzz checkout")]
    NoFuzzDir(PathBuf),
    #[error("`{0}` not found: install g++ (libFuzzer is C++; apt-get install -y g++)")]
    NoCxx(String),
    #[error("running cargo")]
    Spawn(#[source] std::io::Error),
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
    if Command::new(&cxx).arg("--version").output().is_err() {
        return Err(BuildError::NoCxx(cxx));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg fuzzing -C debug-assertions -C overflow-checks");
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "shmem_ops"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(root.join("fuzz/target/campaign"))
        .env("RUSTFLAGS", rustflags.trim())
        .status()
        .map_err(BuildError::Spawn)?;
    if !status.success() {
        return Err(BuildError::Failed {
            code: status.code(),
        });
    }
    Ok(target_path(root))
}
