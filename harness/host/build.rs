//! Builds the guest agent as a static binary and hands its path to the host crate, which
//! embeds it (`include_bytes!`), so a `shmemfuzz` binary is self-contained.
//!
//! The nested cargo uses its own target dir (the outer build holds a lock on its own), a
//! clean flag environment (a `cargo fuzz` build's sanitizer flags must not reach the guest
//! binary) and `+crt-static`: no musl target is installed here, and a static glibc binary
//! runs as PID 1 in an initramfs with no libraries.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    let target_dir = workspace.join("target/agent");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "shmemfuzz-agent",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    // A stripped agent keeps the initramfs small: every byte is copied at boot under TCG.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let status = cmd
        .status()
        .expect("running cargo to build the guest agent");
    assert!(
        status.success(),
        "building the guest agent (shmemfuzz-agent) failed: see the errors above"
    );
    let bin = target_dir.join(TARGET).join("release/shmemfuzz-agent");
    println!("cargo:rustc-env=SHMEMFUZZ_AGENT_PATH={}", bin.display());
    for dir in [
        "harness/agent",
        "harness/core/src",
        "harness/core/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
}
