//! Thin wrappers around the host's Debian tools (`apt-get`, `apt-cache`, `dpkg-deb`, `depmod`)
//! and parsers for their output. All run with `LC_ALL=C` so messages can be recognised.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::KernelError;
use crate::process::{self, RunError, TOOL_LIMIT};

/// Finds a tool ([`process::find_program`]); a miss names the package.
pub(crate) fn find_tool(tool: &'static str, package: &'static str) -> Result<PathBuf, KernelError> {
    process::find_program(tool).ok_or(KernelError::ToolMissing { tool, package })
}

fn run(
    tool: &'static str,
    package: &'static str,
    args: &[&str],
    cwd: Option<&Path>,
) -> Result<Output, KernelError> {
    let exe = find_tool(tool, package)?;
    let mut cmd = Command::new(&exe);
    cmd.args(args).env("LC_ALL", "C");
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    process::output(cmd, TOOL_LIMIT).map_err(|e| match e {
        RunError::NotFound { .. } => KernelError::ToolMissing { tool, package },
        e => KernelError::io(
            format!("cannot run {}", exe.display()),
            std::io::Error::other(e),
        ),
    })
}

fn check(tool: &str, args: &[&str], out: Output) -> Result<Output, KernelError> {
    if out.status.success() {
        return Ok(out);
    }
    Err(KernelError::ToolFailed {
        command: format!("{tool} {}", args.join(" ")),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Result of `apt-get download`.
#[derive(Debug)]
pub(crate) enum Download {
    /// The .deb that was written.
    Ok(PathBuf),
    /// apt has no such package version (it left the archive, or the lists are stale).
    NotInArchive,
}

/// Whether apt-get's stderr says the requested package/version is unknown to it.
pub(crate) fn is_not_in_archive(stderr: &str) -> bool {
    [
        "was not found",
        "Unable to locate package",
        "Can't find a source",
        "Couldn't find any package",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// `apt-get download name=version` into `dir` (an empty directory).
pub(crate) fn download(name: &str, version: &str, dir: &Path) -> Result<Download, KernelError> {
    let spec = format!("{name}={version}");
    let out = run("apt-get", "apt", &["-q", "download", &spec], Some(dir))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if is_not_in_archive(&stderr) {
            return Ok(Download::NotInArchive);
        }
        return Err(KernelError::DownloadFailed {
            package: spec,
            stderr: stderr.trim().to_string(),
        });
    }
    let prefix = format!("{name}_");
    let entries = std::fs::read_dir(dir)
        .map_err(|e| KernelError::io(format!("cannot list {}", dir.display()), e))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let f = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            f.starts_with(&prefix) && f.ends_with(".deb")
        })
        .map(Download::Ok)
        .ok_or_else(|| KernelError::DownloadFailed {
            package: spec,
            stderr: format!(
                "apt-get reported success but wrote no {prefix}*.deb in {}",
                dir.display()
            ),
        })
}

/// `(name, version)` pairs apt can download, from `apt-cache madison`.
pub(crate) fn madison(names: &[String]) -> Result<Vec<(String, String)>, KernelError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["madison"];
    args.extend(names.iter().map(String::as_str));
    let out = check("apt-cache", &args, run("apt-cache", "apt", &args, None)?)?;
    Ok(parse_madison(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses ` name | version | url dist/comp arch Packages` lines; source-package lines and
/// duplicates (same version from two mirrors) are dropped.
pub(crate) fn parse_madison(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [name, version, source] = fields[..] {
            let pair = (name.to_string(), version.to_string());
            if source.ends_with("Packages") && !found.contains(&pair) {
                found.push(pair);
            }
        }
    }
    found
}

/// Package names starting with `prefix` (`apt-cache pkgnames`; includes virtual names, so
/// filter through [`madison`]).
pub(crate) fn pkgnames(prefix: &str) -> Result<Vec<String>, KernelError> {
    let args = ["pkgnames", prefix];
    let out = check("apt-cache", &args, run("apt-cache", "apt", &args, None)?)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The sha256 apt's lists give for `name=version`.
pub(crate) fn archive_sha256(name: &str, version: &str) -> Result<String, KernelError> {
    let spec = format!("{name}={version}");
    let args = ["show", spec.as_str()];
    let out = check("apt-cache", &args, run("apt-cache", "apt", &args, None)?)?;
    parse_sha256_field(&String::from_utf8_lossy(&out.stdout)).ok_or(KernelError::NotInArchive {
        package: name.to_string(),
        version: version.to_string(),
    })
}

/// The first `SHA256:` field of `apt-cache show` output.
pub(crate) fn parse_sha256_field(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("SHA256:"))
        .map(|h| h.trim().to_ascii_lowercase())
}

/// `dpkg-deb -x deb dir` (what `dpkg -x` runs; no root, no install scripts).
pub(crate) fn extract(deb: &Path, dir: &Path) -> Result<(), KernelError> {
    let (deb, dir) = (deb.to_string_lossy(), dir.to_string_lossy());
    let args = ["-x", deb.as_ref(), dir.as_ref()];
    check("dpkg-deb", &args, run("dpkg-deb", "dpkg", &args, None)?).map(drop)
}

/// `depmod -b root release`: writes modules.dep & co. into `root/lib/modules/release/`.
pub(crate) fn depmod(root: &Path, release: &str) -> Result<(), KernelError> {
    let root = root.to_string_lossy();
    let args = ["-b", root.as_ref(), release];
    check("depmod", &args, run("depmod", "kmod", &args, None)?).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_madison_output() {
        let text = "\
linux-kbuild-6.1 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-kbuild-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
linux-kbuild-6.1 |  6.1.176-1 | http://mirror.example/debian bookworm/main amd64 Packages
     linux |  6.1.176-1 | http://deb.debian.org/debian bookworm/main Sources
N: Unable to locate package foo
";
        let got = parse_madison(text);
        let want = [
            ("linux-kbuild-6.1", "6.1.192-2"),
            ("linux-kbuild-6.1", "6.1.176-1"),
        ];
        assert_eq!(got.len(), 2);
        for ((n, v), (wn, wv)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), v.as_str()), (wn, wv));
        }
    }

    #[test]
    fn recognises_missing_versions() {
        assert!(is_not_in_archive(
            "E: Version '6.1.999-1' for 'linux-image-6.1.0-56-amd64-unsigned' was not found"
        ));
        assert!(is_not_in_archive(
            "E: Can't find a source to download version '1' of 'x:amd64'"
        ));
        assert!(is_not_in_archive(
            "E: Unable to locate package linux-image-6.1.0-99-amd64-unsigned"
        ));
        assert!(!is_not_in_archive(
            "E: Failed to fetch http://deb.debian.org/x.deb  404  Not Found"
        ));
    }

    #[test]
    fn parses_sha256_field() {
        let text = "Package: p\nVersion: 1\nSHA256: ABCdef\nSHA256: other\n";
        assert_eq!(parse_sha256_field(text).as_deref(), Some("abcdef"));
        assert_eq!(parse_sha256_field("Package: p\n"), None);
    }
}
