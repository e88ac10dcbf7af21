//! `cargo install --path harness/host` gives a `shmemfuzz` that works with no source tree: from
//! a scratch directory it lists the catalog, says its data is the copy built into it, writes
//! that copy under the cache, and runs an example program on Debian 6.1 to a clean verdict.
//!
//! How the source tree is made invisible, honestly: the binary looks for the tree it was built
//! from (`data::Origin::locate`), so installing from this checkout would find it. The test
//! therefore installs from a copy of the checkout's files (what git tracks or would track) at
//! `<target dir>/install-test/src`, then renames that copy away while the installed binary
//! runs: the path compiled into the binary is gone, as on a machine without the source, with
//! no switch in the binary to fake it. The checkout itself sits at another path the binary
//! knows nothing of, and the commands run in a fresh directory under /tmp with
//! `SHMEMFUZZ_ROOT` unset. The copy is kept (only changed files are rewritten) so a second
//! run's `cargo install` finds its build fresh.
//!
//! `cargo install` builds in `<target dir>/install-test/target` (release profile), not in the
//! test's own target dir: the outer `cargo test` may hold that one's lock, and the copy's
//! `shmemfuzz` would replace the checkout's `target/release/shmemfuzz` there. The first run
//! builds the release dependencies and the guest agent (minutes); later ones relink at most.
//!
//! The cache is the one the other VM tests use (`SHMEMFUZZ_CACHE`, else the checkout's
//! `.cache`), so Debian 6.1 and its mock module are already there; the module's cache key
//! hashes its sources, so the copy written from the binary hits the checkout's build.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn checkout() -> PathBuf {
    shmemfuzz::kernels::context::normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The cargo target dir the tests were built in.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => checkout().join(d),
        _ => checkout().join("target"),
    }
}

/// The checkout's files: tracked, and untracked but not ignored (the tree as it is).
fn checkout_files() -> BTreeSet<PathBuf> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(checkout())
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git ls-files in the checkout");
    String::from_utf8(out.stdout)
        .expect("UTF-8 file names")
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .filter(|f| checkout().join(f).is_file())
        .collect()
}

/// Makes `dest` hold exactly `files` of the checkout (its own `target/`, where the build
/// script builds the guest agent, aside): unchanged files are left alone, so their mtimes, and
/// cargo's view of them, stay as they were.
fn sync_copy(dest: &Path, files: &BTreeSet<PathBuf>) {
    for rel in files {
        let (from, to) = (checkout().join(rel), dest.join(rel));
        let bytes = std::fs::read(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        if std::fs::read(&to).is_ok_and(|b| b == bytes) {
            continue;
        }
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&to, &bytes).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
        let mode = std::fs::metadata(&from).expect("stat").permissions();
        std::fs::set_permissions(&to, mode).expect("chmod");
    }
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for e in std::fs::read_dir(dest.join(&rel))
            .expect("ls")
            .map(|e| e.expect("entry"))
        {
            let path = rel.join(e.file_name());
            if path == Path::new("target") {
                continue;
            }
            if e.file_type().expect("stat").is_dir() {
                dirs.push(path);
            } else if !files.contains(&path) {
                std::fs::remove_file(e.path()).expect("rm a file the checkout no longer has");
            }
        }
    }
}

/// The copy renamed away while it lives, renamed back when dropped (a panic included).
struct Hidden {
    at: PathBuf,
    away: PathBuf,
}

impl Hidden {
    fn new(at: &Path) -> Hidden {
        let away = at.with_extension("away");
        std::fs::rename(at, &away).expect("rename the copy away");
        Hidden {
            at: at.to_path_buf(),
            away,
        }
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        let _ = std::fs::rename(&self.away, &self.at);
    }
}

/// The cache the other VM tests use.
fn test_cache() -> PathBuf {
    shmemfuzz::kernels::cachedir::cache_root(Some(&checkout())).expect("a cache dir")
}

fn shmemfuzz(bin: &Path, cwd: &Path, home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("SHMEMFUZZ_ROOT")
        .env("SHMEMFUZZ_CACHE", test_cache())
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .expect("the installed shmemfuzz runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "cargo install (release build: minutes the first time, seconds after), then boots Debian 6.1"]
fn the_installed_binary_works_without_the_source_tree() {
    let work = target_dir().join("install-test");
    std::fs::create_dir_all(&work).expect("mkdir");
    // One run at a time per target dir (the copy and the install root are shared).
    let lock = File::create(work.join("lock")).expect("lock file");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock");
    let src = work.join("src");
    if !src.exists() && src.with_extension("away").exists() {
        // A run killed while the copy was hidden.
        std::fs::rename(src.with_extension("away"), &src).expect("rename back");
    }
    sync_copy(&src, &checkout_files());

    let root = work.join("root");
    let started = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", "--force", "--path"])
        .arg(src.join("harness/host"))
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(work.join("target"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo install failed: see above");
    eprintln!(
        "cargo install took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let bin = root.join("bin/shmemfuzz");
    assert!(bin.is_file(), "{}", bin.display());

    let _hidden = Hidden::new(&src);
    let scratch = tempfile::Builder::new()
        .prefix("sfz-install-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");

    let (code, out, err) = shmemfuzz(&bin, scratch.path(), &home, &["kernel", "list"]);
    assert_eq!(code, Some(0), "{out}{err}");
    for id in ["debian-6.1", "debian-6.12", "src-6.1"] {
        assert!(
            out.lines().any(|l| l.split_whitespace().next() == Some(id)),
            "{id} listed:\n{out}"
        );
    }
    assert!(
        out.contains("data: the copy built into shmemfuzz"),
        "the data is the binary's own:\n{out}"
    );

    let (code, out, err) = shmemfuzz(&bin, scratch.path(), &home, &["data"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let data = PathBuf::from(out.trim());
    assert!(
        data.starts_with(test_cache().join("data")),
        "written under the cache: {}",
        data.display()
    );
    for rel in [
        "kernels/catalog.toml",
        "kernels/known/6.1.toml",
        "kernels/gma500_mock/Kbuild",
    ] {
        assert!(data.join(rel).is_file(), "{rel} in {}", data.display());
    }

    // A default that writes into a source tree asks for a path instead.
    let prog = scratch.path().join("pageout-roundtrip.prog");
    std::fs::copy(data.join("examples/pageout-roundtrip.prog"), &prog).expect("copy");
    let (code, out, err) = shmemfuzz(
        &bin,
        scratch.path(),
        &home,
        &["corpus", "add", "pageout-roundtrip.prog"],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("give --dir DIR"), "{err}");

    // The example, by a path relative to the scratch directory, on Debian 6.1.
    let started = Instant::now();
    let (code, out, err) = shmemfuzz(
        &bin,
        scratch.path(),
        &home,
        &["run", "pageout-roundtrip.prog", "--kernel", "debian-6.1"],
    );
    assert_eq!(code, Some(0), "a clean run:\n{out}{err}");
    assert!(out.contains("kernel debian-6.1"), "{out}");
    eprintln!("run took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        std::fs::read_dir(&home).expect("ls").next().is_none(),
        "nothing written into HOME: the cache given was used"
    );
}
