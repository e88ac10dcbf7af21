//! Builds the guest agent as a static binary and hands its path to the host crate, which
//! embeds it (`include_bytes!`), so a `shmemfuzz` binary is self-contained; and writes the
//! table of the data files the binary carries (`$OUT_DIR/data_files.rs`, see `src/kernels/data.rs`).
//!
//! The nested cargo uses its own target dir (the outer build holds a lock on its own), a
//! clean flag environment (a `cargo fuzz` build's sanitizer flags must not reach the guest
//! binary) and `+crt-static`: no musl target is installed here, and a static glibc binary
//! runs as PID 1 in an initramfs with no libraries.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
    embed_data(&workspace);
    for dir in [
        "harness/agent",
        "harness/core/src",
        "harness/core/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
}

/// The data files `shmemfuzz` carries (the catalog, config fragments, patches, known-findings
/// files, the mock driver's sources, the example programs) as a table of `include_bytes!`:
/// `src/kernels/data.rs` includes it. A table written here rather than a directory-embedding crate:
/// `rerun-if-changed` on the directories makes cargo scan them, so a file added or removed
/// rebuilds the table (an `include_dir!`-style macro on stable tracks only the files it read),
/// and the selection below keeps build products (a module built in place) out.
fn embed_data(workspace: &Path) {
    let mut files = Vec::new();
    for dir in ["kernels", "examples"] {
        collect(workspace, Path::new(dir), &mut files);
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    files.sort();
    let mut table = String::from("&[\n");
    for rel in &files {
        let abs = workspace.join(rel);
        let (Some(rel), Some(abs)) = (rel.to_str(), abs.to_str()) else {
            panic!("data file names must be UTF-8: {}", rel.display());
        };
        writeln!(table, "    ({rel:?}, include_bytes!({abs:?})),").expect("a String takes writes");
    }
    table.push_str("]\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("data_files.rs"), table).expect("writing data_files.rs");
}

/// The data files under `workspace/rel`, recursively, by name: what git tracks there, not
/// hidden files nor what `make` leaves in `kernels/gma500_mock` (`*.o`, `*.ko`, `*.mod.c`, ...).
/// The host's unit test `kernels::data::tests::the_embedded_files_are_the_tracked_files` holds this to
/// what git tracks or would track there (`git ls-files --cached --others --exclude-standard`).
fn collect(workspace: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let dir = workspace.join(rel);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = rel.join(&name);
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if name.starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            collect(workspace, &path, out);
        } else if kind.is_file() && is_data(&name) {
            out.push(path);
        }
    }
}

fn is_data(name: &str) -> bool {
    const EXTENSIONS: [&str; 8] = [
        ".toml", ".config", ".patch", ".c", ".h", ".md", ".sh", ".prog",
    ];
    (name == "Kbuild" || name == "Makefile" || EXTENSIONS.iter().any(|x| name.ends_with(x)))
        && !name.ends_with(".mod.c")
}
