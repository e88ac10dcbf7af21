//! Host tools: finding them (with the Debian package that provides each, for the error),
//! running short commands, and recognising a missing development header in a build log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::KbuildError;
use crate::process::{self, RunError, TOOL_LIMIT};

/// A host tool and the Debian package that provides it.
pub(crate) type Tool = (&'static str, &'static str);

/// What configuring and building a kernel tree runs.
pub(crate) const BUILD_TOOLS: &[Tool] = &[
    ("make", "make"),
    ("gcc", "gcc"),
    ("ld", "binutils"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    ("perl", "perl"),
    ("depmod", "kmod"),
];

/// What fetching and unpacking Debian's `linux-source-*` runs.
pub(crate) const FETCH_TOOLS: &[Tool] = &[
    ("apt-get", "apt"),
    ("apt-cache", "apt"),
    ("dpkg-deb", "dpkg"),
    ("tar", "tar"),
    ("xz", "xz-utils"),
    ("gzip", "gzip"),
];

/// What applying the patch series runs.
pub(crate) const PATCH_TOOL: Tool = ("patch", "patch");

/// Tests: the tool's path, or a panic naming the package to install (`ci/setup.sh` installs
/// it), so a test cannot pass by skipping its subject.
#[cfg(test)]
pub(crate) fn require(tool: Tool) -> PathBuf {
    find(tool).unwrap_or_else(|e| panic!("this test needs it: {e}"))
}

/// Finds a tool ([`process::find_program`]: PATH, then the sbin directories a non-root PATH
/// often lacks); a miss names the package.
pub(crate) fn find((tool, package): Tool) -> Result<PathBuf, KbuildError> {
    process::find_program(tool).ok_or(KbuildError::ToolMissing { tool, package })
}

/// A tool call that did not complete, as a [`KbuildError`] (`tool` names a missing one).
pub(crate) fn run_error(tool: Tool, e: RunError) -> KbuildError {
    match e {
        RunError::NotFound { .. } => KbuildError::ToolMissing {
            tool: tool.0,
            package: tool.1,
        },
        e => KbuildError::io(format!("cannot run {}", tool.0), std::io::Error::other(e)),
    }
}

/// Checks that every tool is installed; the first missing one is the error.
pub(crate) fn require_all(tools: &[Tool]) -> Result<(), KbuildError> {
    tools.iter().try_for_each(|t| find(*t).map(drop))
}

/// Runs `tool args` (in `cwd`, with `LC_ALL=C`) to completion (at most [`TOOL_LIMIT`]) and
/// returns its output if it succeeded.
pub(crate) fn run(tool: Tool, args: &[&str], cwd: Option<&Path>) -> Result<Output, KbuildError> {
    let exe = find(tool)?;
    let mut cmd = Command::new(&exe);
    cmd.args(args).env("LC_ALL", "C");
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = process::output(cmd, TOOL_LIMIT).map_err(|e| run_error(tool, e))?;
    if out.status.success() {
        return Ok(out);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if output.is_empty() {
        output = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(KbuildError::ToolFailed {
        command: format!("{} {}", tool.0, args.join(" ")),
        status: out.status.to_string(),
        output,
    })
}

/// The first line of `gcc --version` (what kbuild records as `CONFIG_CC_VERSION_TEXT`).
pub(crate) fn compiler_version() -> Result<String, KbuildError> {
    let out = run(("gcc", "gcc"), &["--version"], None)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Headers a kernel build may need, the build-log text that shows one is missing, and the
/// Debian package that provides it.
const HEADERS: &[(&str, &str, &str)] = &[
    ("gelf.h", "gelf.h: No such file", "libelf-dev"),
    ("libelf.h", "libelf.h: No such file", "libelf-dev"),
    ("openssl/*.h", "openssl/", "libssl-dev"),
    ("zlib.h", "zlib.h: No such file", "zlib1g-dev"),
];

/// The missing header (and its package) a failed build's log names, if any.
pub(crate) fn missing_header(log: &str) -> Option<(&'static str, &'static str)> {
    log.lines()
        .filter(|l| l.contains("No such file") || l.contains("fatal error"))
        .find_map(|l| {
            HEADERS
                .iter()
                .find(|(_, needle, _)| l.contains(needle))
                .map(|(h, _, p)| (*h, *p))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_missing_headers_in_build_logs() {
        let objtool = "  CC      /b/tools/objtool/elf.o\n\
            /src/tools/objtool/include/objtool/elf.h:10:10: fatal error: gelf.h: No such file \
            or directory\ncompilation terminated.\n";
        assert_eq!(missing_header(objtool), Some(("gelf.h", "libelf-dev")));
        let certs = "scripts/sign-file.c:25:10: fatal error: openssl/opensslv.h: No such file \
            or directory";
        assert_eq!(missing_header(certs), Some(("openssl/*.h", "libssl-dev")));
        assert_eq!(missing_header("mm/shmem.c:12: error: expected ';'"), None);
    }

    #[test]
    fn missing_tools_name_their_package() {
        let err = find(("shmemfuzz-no-such-tool", "some-package")).expect_err("absent");
        assert!(err.to_string().contains("`some-package`"), "{err}");
        assert!(find(("sh", "dash")).is_ok());
    }
}
