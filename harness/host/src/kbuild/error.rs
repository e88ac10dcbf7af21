//! [`KbuildError`]: every way obtaining, patching, configuring or building a kernel source
//! tree can fail. Each message says what failed and what to do about it.

use std::io;
use std::path::PathBuf;

/// An error from building a kernel from source.
#[derive(Debug, thiserror::Error)]
pub enum KbuildError {
    /// A host tool is not installed.
    #[error(
        "`{tool}` not found (looked in PATH, /usr/sbin and /sbin): install the Debian package \
         `{package}` (`sudo apt-get install {package}`)"
    )]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    /// The build failed because a development header is missing (seen in the build log).
    #[error(
        "the kernel build needs `{header}`, which is not installed: install the Debian \
         package `{package}` (`sudo apt-get install {package}`) and build again (log: {log})"
    )]
    HeaderMissing {
        header: &'static str,
        package: &'static str,
        log: PathBuf,
    },
    /// A host tool ran and failed.
    #[error("`{command}` failed ({status}): {output}")]
    ToolFailed {
        command: String,
        status: String,
        output: String,
    },
    /// apt knows no downloadable version of the source package.
    #[error(
        "{package}{} is not in apt's package lists: run `sudo apt-get update` on a host whose \
         sources include Debian bookworm-security (or bookworm), or ask for a version that \
         `apt-cache policy {package}` lists",
        version.as_deref().map(|v| format!(" {v}")).unwrap_or_default()
    )]
    NotInArchive {
        package: String,
        version: Option<String>,
    },
    /// The downloaded .deb does not have the hash apt's (signed) lists give for it.
    #[error(
        "sha256 mismatch for {file}: apt's lists say {expected}, the download has {actual}; \
         the download is corrupt or the lists are stale: run `sudo apt-get update` and retry"
    )]
    HashMismatch {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    /// A file the unpacked package or the build should contain is not there.
    #[error("{path} is missing after {what}")]
    MissingFile { path: PathBuf, what: String },
    /// A patch does not apply to the source tree.
    #[error(
        "patch {patch} does not apply to {tree} (`{command}`):\n{output}\nrefresh the patch \
         against this source (nothing of it was applied)"
    )]
    PatchFailed {
        patch: PathBuf,
        tree: PathBuf,
        command: String,
        output: String,
    },
    /// A patch applied earlier cannot be reverted: the tree was changed by hand.
    #[error(
        "cannot revert {patch} in {tree}, applied by an earlier build:\n{output}\nthe tree \
         was changed outside shmemfuzz: delete {tree} and build again (it is unpacked anew)"
    )]
    TreeDirty {
        patch: String,
        tree: PathBuf,
        output: String,
    },
    /// A config fragment line is neither `CONFIG_X=value`, `# CONFIG_X is not set`, a
    /// comment nor blank.
    #[error(
        "{path}:{line}: `{text}` is not a kconfig line (`CONFIG_X=y`, `# CONFIG_X is not \
         set`, a `#` comment or blank)"
    )]
    FragmentSyntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
    /// Options the fragments ask for did not survive `make olddefconfig`.
    #[error(
        "the config fragments ask for options the resolved config does not have ({}): \
         their dependencies are off or they do not exist in this source; add the \
         dependencies to the fragment (see `make O={} menuconfig`, search with `/`)",
        mismatches.join(", "),
        build_dir.display()
    )]
    ConfigMismatch {
        mismatches: Vec<String>,
        build_dir: PathBuf,
    },
    /// A make step failed.
    #[error("`{command}` failed ({status}); last lines of {log}:\n{tail}")]
    MakeFailed {
        command: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// A make step ran past the build's deadline and was stopped.
    #[error(
        "`{command}` did not finish within the build's limit of {secs} s and was stopped \
         (log: {log}); the partial build is kept and the next build continues from it: \
         retry, raise the limit, or build when the machine is less loaded"
    )]
    Timeout {
        command: String,
        secs: u64,
        log: PathBuf,
    },
    /// The harness was interrupted while `command` ran; it was stopped (the partial build is
    /// kept, and the next build continues from it).
    #[error("`{command}` was stopped (log: {log})")]
    Interrupted {
        command: String,
        log: PathBuf,
        #[source]
        source: crate::interrupt::Interrupted,
    },
    /// A filesystem operation failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl KbuildError {
    /// A [`KbuildError::Io`] with a context sentence.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        KbuildError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KbuildError;
    use std::path::PathBuf;

    #[test]
    fn messages_say_what_to_do() {
        let e = KbuildError::ToolMissing {
            tool: "flex",
            package: "flex",
        };
        assert!(e.to_string().contains("sudo apt-get install flex"), "{e}");
        let e = KbuildError::HeaderMissing {
            header: "gelf.h",
            package: "libelf-dev",
            log: PathBuf::from("/b/build.log"),
        };
        assert!(e.to_string().contains("apt-get install libelf-dev"), "{e}");
        let e = KbuildError::NotInArchive {
            package: "linux-source-6.1".into(),
            version: Some("6.1.1-1".into()),
        };
        assert!(
            e.to_string().starts_with("linux-source-6.1 6.1.1-1 is not"),
            "{e}"
        );
        assert!(e.to_string().contains("apt-get update"), "{e}");
        let e = KbuildError::ConfigMismatch {
            mismatches: vec!["CONFIG_DRM=y (got n)".into()],
            build_dir: PathBuf::from("/b"),
        };
        assert!(e.to_string().contains("CONFIG_DRM=y (got n)"), "{e}");
        assert!(e.to_string().contains("make O=/b menuconfig"), "{e}");
    }
}
