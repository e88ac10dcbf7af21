//! On-disk layout of the kernel cache: directory names, the completion marker, atomic
//! publication of an unpacked tree, cleanup of abandoned partial trees, and pointing the
//! headers' Makefile at the unpacked copy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{KernelError, Package};

/// File written into a tree just before it is renamed into place: a directory without it is
/// not a complete fetch.
pub(crate) const MARKER: &str = ".shmemfuzz-complete";

/// What a complete directory holds (the marker's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// `uname -r` of the unpacked kernel (differs from the catalog's after a fallback).
    pub release: String,
    /// The packages actually unpacked.
    pub packages: Vec<Package>,
}

/// `<id>-<image version>[-headers]`, with `:` (epochs) made path- and make-safe.
pub(crate) fn dir_name(id: &str, image_version: &str, headers: bool) -> String {
    let name = format!(
        "{id}-{image_version}{}",
        if headers { "-headers" } else { "" }
    );
    name.replace([':', '/', ' '], "_")
}

/// The marker of a complete directory; `None` if it is absent or unreadable (incomplete).
pub(crate) fn read_marker(dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    toml::from_str(&text).ok()
}

fn write_marker(tree: &Path, marker: &Marker) -> Result<(), KernelError> {
    let text = toml::to_string(marker)
        .map_err(|e| KernelError::io("cannot encode cache marker", std::io::Error::other(e)))?;
    let path = tree.join(MARKER);
    std::fs::write(&path, text)
        .map_err(|e| KernelError::io(format!("cannot write {}", path.display()), e))
}

/// Writes the marker into `tree` and renames `tree` to `dest`. If another process published
/// `dest` first, its copy wins; an incomplete `dest` (no marker) is replaced.
pub(crate) fn publish(tree: &Path, dest: &Path, marker: &Marker) -> Result<Marker, KernelError> {
    write_marker(tree, marker)?;
    for attempt in 0..2 {
        match std::fs::rename(tree, dest) {
            Ok(()) => return Ok(marker.clone()),
            Err(e) => {
                if let Some(theirs) = read_marker(dest) {
                    return Ok(theirs);
                }
                if attempt == 0 && dest.exists() {
                    std::fs::remove_dir_all(dest).map_err(|e| {
                        KernelError::io(format!("cannot remove incomplete {}", dest.display()), e)
                    })?;
                    continue;
                }
                return Err(KernelError::io(
                    format!("cannot move {} to {}", tree.display(), dest.display()),
                    e,
                ));
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// Rewrites `include <anything>/usr/src/<rest>` lines to `include <new_root>/usr/src/<rest>`
/// (Debian's `-amd64` headers Makefile includes the `-common` one by absolute path).
pub(crate) fn rewrite_includes(makefile: &str, new_root: &Path) -> String {
    let mut out = String::with_capacity(makefile.len() + 64);
    for line in makefile.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let rewritten = body.strip_prefix("include ").and_then(|path| {
            let at = path.trim().rfind("/usr/src/")?;
            Some(format!(
                "include {}{}",
                new_root.display(),
                &path.trim()[at..]
            ))
        });
        match rewritten {
            Some(r) => {
                out.push_str(&r);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Points the headers Makefile in `tree/usr/src/linux-headers-<release>` at `final_root`
/// (where `tree` will live) and checks that every included file exists in `tree`. Returns
/// the headers directory inside `tree`. Idempotent.
pub(crate) fn fix_headers_makefile(
    tree: &Path,
    final_root: &Path,
    release: &str,
) -> Result<PathBuf, KernelError> {
    let hdir = tree
        .join("usr/src")
        .join(format!("linux-headers-{release}"));
    let makefile = hdir.join("Makefile");
    let what = || format!("the headers of {release}");
    let text = std::fs::read_to_string(&makefile).map_err(|_| KernelError::MissingFile {
        path: makefile.clone(),
        what: what(),
    })?;
    let new = rewrite_includes(&text, final_root);
    for line in new.lines() {
        if let Some(inc) = line.strip_prefix("include ") {
            let rel = inc
                .trim()
                .strip_prefix(&*final_root.to_string_lossy())
                .unwrap_or(inc.trim());
            let inside = tree.join(rel.trim_start_matches('/'));
            if !inside.is_file() {
                return Err(KernelError::MissingFile {
                    path: inside,
                    what: what(),
                });
            }
        }
    }
    if new != text {
        std::fs::write(&makefile, new)
            .map_err(|e| KernelError::io(format!("cannot rewrite {}", makefile.display()), e))?;
    }
    Ok(hdir)
}

/// A file that must exist in an unpacked tree.
pub(crate) fn require(path: PathBuf, what: &str) -> Result<PathBuf, KernelError> {
    if path.exists() {
        Ok(path)
    } else {
        Err(KernelError::MissingFile {
            path,
            what: what.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_absolute_and_moved_includes() {
        let root = Path::new("/cache/debian-6.1-6.1.192-2-headers");
        let orig = "include /usr/src/linux-headers-6.1.0-56-common/Makefile\n";
        let once = rewrite_includes(orig, root);
        assert_eq!(
            once,
            "include /cache/debian-6.1-6.1.192-2-headers/usr/src/linux-headers-6.1.0-56-common/Makefile\n"
        );
        assert_eq!(rewrite_includes(&once, root), once, "idempotent");
        let moved = rewrite_includes(&once, Path::new("/new"));
        assert_eq!(
            moved,
            "include /new/usr/src/linux-headers-6.1.0-56-common/Makefile\n"
        );
        assert_eq!(rewrite_includes("obj-m := x.o\n", root), "obj-m := x.o\n");
    }

    #[test]
    fn fixes_headers_makefile_and_checks_target() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path();
        let h = tree.join("usr/src/linux-headers-6.1.0-56-amd64");
        std::fs::create_dir_all(&h).expect("mkdir");
        std::fs::write(
            h.join("Makefile"),
            "include /usr/src/linux-headers-6.1.0-56-common/Makefile\n",
        )
        .expect("write");
        let err = fix_headers_makefile(tree, tree, "6.1.0-56-amd64").expect_err("common missing");
        assert!(matches!(err, KernelError::MissingFile { .. }), "{err}");
        let c = tree.join("usr/src/linux-headers-6.1.0-56-common");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join("Makefile"), "").expect("write");
        let got = fix_headers_makefile(tree, tree, "6.1.0-56-amd64").expect("fixed");
        assert_eq!(got, h);
        let text = std::fs::read_to_string(h.join("Makefile")).expect("read");
        assert_eq!(text, format!("include {}/Makefile\n", c.display()));
    }

    #[test]
    fn publish_is_marker_gated_and_first_writer_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        let dest = root.path().join("k");
        let m = |r: &str| Marker {
            release: r.into(),
            packages: vec![],
        };
        // A half-finished earlier run: the directory exists, the marker does not.
        std::fs::create_dir_all(dest.join("boot")).expect("mkdir");
        assert_eq!(read_marker(&dest), None);
        let a = root.path().join(".partial-a");
        std::fs::create_dir(&a).expect("mkdir");
        assert_eq!(publish(&a, &dest, &m("one")).expect("publish"), m("one"));
        assert_eq!(read_marker(&dest), Some(m("one")));
        assert!(!dest.join("boot").exists(), "incomplete tree was replaced");
        // A second publisher finds a complete copy and uses it.
        let b = root.path().join(".partial-b");
        std::fs::create_dir_all(b.join("x")).expect("mkdir");
        assert_eq!(publish(&b, &dest, &m("two")).expect("publish"), m("one"));
    }

    #[test]
    fn dir_names_are_make_safe() {
        assert_eq!(
            dir_name("debian-6.1", "6.1.192-2", false),
            "debian-6.1-6.1.192-2"
        );
        assert_eq!(dir_name("x", "1:2.0", true), "x-1_2.0-headers");
    }
}
