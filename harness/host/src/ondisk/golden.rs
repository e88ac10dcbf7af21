//! Golden files of every on-disk format, under `harness/host/tests/golden/ondisk/`.
//!
//! Each test builds runtime values, writes them with the real writer and compares the bytes
//! with the checked-in file; then reads the checked-in file with the real reader and compares
//! the result with the values it was built from. So a field renamed in a core type, or in an
//! on-disk type, fails here. After an intended format change, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p shmemfuzz --lib golden` and review the diff (a change of an
//! existing file's bytes is a format change: bump the version, see [`super`]).

use std::path::{Path, PathBuf};

/// `harness/host/tests/golden/ondisk/<name>`.
pub(crate) fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/ondisk")
        .join(name)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Compares `actual` with the golden file `name`, or rewrites it under `UPDATE_GOLDEN=1`.
pub(crate) fn check(name: &str, actual: &[u8]) {
    let p = path(name);
    if updating() {
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("create the golden dir");
        std::fs::write(&p, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {} ({e}); create it with UPDATE_GOLDEN=1",
            p.display()
        )
    });
    if expected == actual {
        return;
    }
    let (e, a) = (
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual),
    );
    let line = e
        .lines()
        .zip(a.lines())
        .position(|(x, y)| x != y)
        .unwrap_or(e.lines().count().min(a.lines().count()));
    panic!(
        "{} differs from what the writer produces now, first at line {}:\n  golden:  {}\n  written: \
         {}\nIf the format changed on purpose, bump its version and rerun with UPDATE_GOLDEN=1; \
         otherwise the on-disk format changed by accident",
        p.display(),
        line + 1,
        e.lines().nth(line).unwrap_or("<end of file>"),
        a.lines().nth(line).unwrap_or("<end of file>"),
    );
}
