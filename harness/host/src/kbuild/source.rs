//! Debian's kernel source packages (`linux-source-<series>`): which version to use, and
//! fetching one into the source cache, unpacked and ready for `make O=...`.
//!
//! `apt-get download` (no root), a check of the .deb's sha256 against apt's signed lists,
//! `dpkg-deb -x`, then the `linux-source-<series>.tar.xz` inside is untarred. The tree is
//! published by renaming it into place with a marker, so a killed run leaves no half tree
//! behind that looks complete. The .deb and the tarball are not kept (the tree is 1.4 GB).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tools::{self, FETCH_TOOLS};
use super::{KbuildError, KbuildEvent};
use crate::kernel::apt::parse_sha256_field;

/// File in a complete source tree: what was unpacked there.
const MARKER: &str = ".shmemfuzz-source";
/// Build timestamp when the package's changelog cannot be read.
pub(crate) const FALLBACK_TIMESTAMP: &str = "Thu, 01 Jan 2015 00:00:00 +0000";

/// An unpacked Debian kernel source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebianSource {
    /// The tree (`.../linux-source-6.1_6.1.192-2`), with the top-level `Makefile`.
    #[serde(skip)]
    pub dir: PathBuf,
    /// `linux-source-6.1`.
    pub package: String,
    /// Debian version, `6.1.192-2`.
    pub version: String,
    /// Date of the package's newest changelog entry: what Debian's own builds use as
    /// `KBUILD_BUILD_TIMESTAMP`, and ours too (reproducible images).
    pub timestamp: String,
}

/// The Debian package holding the source of `series` (`6.1` → `linux-source-6.1`).
pub(crate) fn package_name(series: &str) -> String {
    format!("linux-source-{series}")
}

/// Directory name of an unpacked package version (`:` of an epoch made path-safe).
pub(crate) fn dir_name(package: &str, version: &str) -> String {
    format!("{package}_{version}").replace([':', '/', ' '], "_")
}

/// The version to use: `version` if given, else apt's candidate for `package`.
pub(crate) fn resolve_version(package: &str, version: Option<&str>) -> Result<String, KbuildError> {
    if let Some(v) = version {
        return Ok(v.to_string());
    }
    let out = tools::run(("apt-cache", "apt"), &["policy", package], None)?;
    parse_candidate(&String::from_utf8_lossy(&out.stdout)).ok_or(KbuildError::NotInArchive {
        package: package.to_string(),
        version: None,
    })
}

/// The `Candidate:` of `apt-cache policy` output (`None` for `(none)` or no such line).
pub(crate) fn parse_candidate(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "(none)")
        .map(str::to_string)
}

/// The date of the first (newest) entry of a Debian changelog.
pub(crate) fn changelog_date(changelog: &str) -> Option<String> {
    changelog
        .lines()
        .find(|l| l.starts_with(" -- "))
        .and_then(|l| l.split_once(">  "))
        .map(|(_, date)| date.trim().to_string())
        .filter(|d| !d.is_empty())
}

/// The unpacked tree of `package` `version` under `root`, fetching it if needed.
pub(crate) fn obtain(
    root: &Path,
    package: &str,
    version: &str,
    progress: &dyn Fn(KbuildEvent),
) -> Result<DebianSource, KbuildError> {
    let dest = root.join(dir_name(package, version));
    if let Some(src) = read_marker(&dest) {
        progress(KbuildEvent::SourceCached {
            dir: dest.clone(),
            version: src.version.clone(),
        });
        return Ok(src);
    }
    tools::require_all(FETCH_TOOLS)?;
    std::fs::create_dir_all(root)
        .map_err(|e| KbuildError::io(format!("cannot create {}", root.display()), e))?;
    let work = crate::cachedir::work_dir(root).map_err(|(why, e)| KbuildError::io(why, e))?;
    let spec = format!("{package}={version}");
    progress(KbuildEvent::Downloading {
        package: spec.clone(),
    });
    let deb = download(package, version, work.path())?;
    progress(KbuildEvent::Verifying);
    let show = tools::run(("apt-cache", "apt"), &["show", &spec], None)?;
    let expected = parse_sha256_field(&String::from_utf8_lossy(&show.stdout)).ok_or(
        KbuildError::NotInArchive {
            package: package.to_string(),
            version: Some(version.to_string()),
        },
    )?;
    let actual = crate::files::file_sha256(&deb)
        .map_err(|e| KbuildError::io(format!("cannot read {}", deb.display()), e))?;
    if actual != expected {
        return Err(KbuildError::HashMismatch {
            file: deb,
            expected,
            actual,
        });
    }
    progress(KbuildEvent::Unpacking);
    let x = work.path().join("x");
    let (deb_s, x_s) = (deb.to_string_lossy(), x.to_string_lossy());
    tools::run(("dpkg-deb", "dpkg"), &["-x", &deb_s, &x_s], None)?;
    let _ = std::fs::remove_file(&deb);
    let tarball = x.join("usr/src").join(format!("{package}.tar.xz"));
    require(&tarball, &format!("unpacking {spec}"))?;
    let tar_s = tarball.to_string_lossy();
    tools::run(("tar", "tar"), &["-xf", &tar_s], Some(work.path()))?;
    let tree = work.path().join(package);
    require(
        &tree.join("Makefile"),
        &format!("untarring {}", tarball.display()),
    )?;
    let changelog = x
        .join("usr/share/doc")
        .join(package)
        .join("changelog.Debian.gz");
    let timestamp = tools::run(
        ("gzip", "gzip"),
        &["-dc", &changelog.to_string_lossy()],
        None,
    )
    .ok()
    .and_then(|o| changelog_date(&String::from_utf8_lossy(&o.stdout)))
    .unwrap_or_else(|| FALLBACK_TIMESTAMP.to_string());
    let src = DebianSource {
        dir: dest.clone(),
        package: package.to_string(),
        version: version.to_string(),
        timestamp,
    };
    let text = toml::to_string(&src).map_err(|e| {
        KbuildError::io("cannot encode the source marker", std::io::Error::other(e))
    })?;
    std::fs::write(tree.join(MARKER), text)
        .map_err(|e| KbuildError::io(format!("cannot write {}", tree.join(MARKER).display()), e))?;
    publish(&tree, &dest)?;
    progress(KbuildEvent::SourceReady { dir: dest.clone() });
    Ok(read_marker(&dest).unwrap_or(src))
}

/// The marker of a complete tree at `dir` (with `dir` filled in).
fn read_marker(dir: &Path) -> Option<DebianSource> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let mut src: DebianSource = toml::from_str(&text).ok()?;
    src.dir = dir.to_path_buf();
    Some(src)
}

/// Renames `tree` to `dest`; a complete `dest` published meanwhile by another run wins, an
/// incomplete one is replaced.
fn publish(tree: &Path, dest: &Path) -> Result<(), KbuildError> {
    if std::fs::rename(tree, dest).is_ok() || read_marker(dest).is_some() {
        return Ok(());
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| {
            KbuildError::io(format!("cannot remove incomplete {}", dest.display()), e)
        })?;
    }
    std::fs::rename(tree, dest).map_err(|e| {
        KbuildError::io(
            format!("cannot move {} to {}", tree.display(), dest.display()),
            e,
        )
    })
}

fn require(path: &Path, what: &str) -> Result<(), KbuildError> {
    if path.exists() {
        Ok(())
    } else {
        Err(KbuildError::MissingFile {
            path: path.to_path_buf(),
            what: what.to_string(),
        })
    }
}

/// `apt-get download package=version` into `dir`; the .deb written.
fn download(package: &str, version: &str, dir: &Path) -> Result<PathBuf, KbuildError> {
    let spec = format!("{package}={version}");
    match tools::run(("apt-get", "apt"), &["-q", "download", &spec], Some(dir)) {
        Ok(_) => {}
        Err(KbuildError::ToolFailed { output, .. })
            if output.contains("was not found")
                || output.contains("Unable to locate package")
                || output.contains("Can't find a source") =>
        {
            return Err(KbuildError::NotInArchive {
                package: package.to_string(),
                version: Some(version.to_string()),
            })
        }
        Err(e) => return Err(e),
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| KbuildError::io(format!("cannot list {}", dir.display()), e))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| KbuildError::MissingFile {
            path: dir.join(format!("{package}_*.deb")),
            what: format!("`apt-get download {spec}`"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_policy_candidate() {
        let text = "linux-source-6.1:\n  Installed: (none)\n  Candidate: 6.1.192-2\n  \
                    Version table:\n     6.1.192-2 500\n";
        assert_eq!(parse_candidate(text).as_deref(), Some("6.1.192-2"));
        assert_eq!(parse_candidate("x:\n  Candidate: (none)\n"), None);
        assert_eq!(parse_candidate(""), None);
    }

    #[test]
    fn takes_the_newest_changelog_date() {
        let text = "linux (6.1.192-2) bookworm-security; urgency=high\n\n  * Fix.\n\n \
                    -- Jane Doe <jd@debian.org>  Mon, 16 Nov 2026 11:17:40 +0100\n\n\
                    linux (6.1.192-1) bookworm-security; urgency=high\n\n \
                    -- Jane Doe <jd@debian.org>  Sun, 01 Nov 2026 10:00:00 +0100\n";
        assert_eq!(
            changelog_date(text).as_deref(),
            Some("Mon, 16 Nov 2026 11:17:40 +0100")
        );
        assert_eq!(changelog_date("no trailer"), None);
    }

    #[test]
    fn names_are_path_safe() {
        assert_eq!(package_name("6.1"), "linux-source-6.1");
        assert_eq!(
            dir_name("linux-source-6.1", "6.1.192-2"),
            "linux-source-6.1_6.1.192-2"
        );
        assert_eq!(dir_name("p", "1:2.0"), "p_1_2.0");
    }

    #[test]
    fn a_tree_without_marker_is_not_complete() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("linux-source-6.1_1");
        std::fs::create_dir(&dir).expect("mkdir");
        assert_eq!(read_marker(&dir), None);
        let src = DebianSource {
            dir: PathBuf::new(),
            package: "linux-source-6.1".into(),
            version: "1".into(),
            timestamp: FALLBACK_TIMESTAMP.into(),
        };
        std::fs::write(dir.join(MARKER), toml::to_string(&src).expect("toml")).expect("write");
        let got = read_marker(&dir).expect("complete");
        assert_eq!((got.dir, got.version), (dir, "1".to_string()));
    }
}
