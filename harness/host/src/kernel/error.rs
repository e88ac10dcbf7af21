//! [`KernelError`]: every way finding, fetching or reading a kernel can fail. Each message says
//! what failed and what to do about it.

use std::io;
use std::path::PathBuf;

/// An error from the kernel catalog, the kernel cache or module ordering.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The catalog file could not be read.
    #[error("cannot read kernel catalog {path}")]
    CatalogRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The catalog is not valid TOML or does not have the catalog's shape.
    #[error("kernel catalog {origin} is malformed: {message}")]
    CatalogParse { origin: String, message: String },
    /// The catalog parsed but breaks a rule (duplicate id, no default, bad hash, ...).
    #[error("kernel catalog {origin} is invalid: {reason}")]
    CatalogInvalid { origin: String, reason: String },
    /// A kernel id that the catalog does not list.
    #[error("unknown kernel `{id}`; known: {known}")]
    UnknownKernel { id: String, known: String },
    /// A host tool is not installed.
    #[error(
        "`{tool}` not found (looked in PATH, /usr/sbin and /sbin): install the Debian package \
         `{package}` (`sudo apt-get install {package}`)"
    )]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    /// A host tool ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        command: String,
        status: String,
        stderr: String,
    },
    /// apt knows no downloadable version of a package (nor a fallback of the same line).
    #[error(
        "{package} {version} is not in apt's package lists, and no other version of its line is: \
         run `sudo apt-get update` on a host whose sources include Debian bookworm and \
         bookworm-security, or pick another kernel from the catalog"
    )]
    NotInArchive { package: String, version: String },
    /// apt-get download failed for another reason than "no such version" (network, mirror).
    #[error(
        "downloading {package} failed: {stderr}\n(check access to deb.debian.org; if the mirror \
         answered 404, apt's lists are stale: run `sudo apt-get update` and retry)"
    )]
    DownloadFailed { package: String, stderr: String },
    /// The downloaded .deb does not have the hash the catalog pins.
    #[error(
        "sha256 mismatch for {file}: expected {expected}, downloaded file has {actual}; the \
         download is corrupt or the catalog pin is wrong (kernels/catalog.toml); retry, and \
         re-pin from `apt-cache show <package>=<version>` if it persists"
    )]
    HashMismatch {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    /// A file the unpacked packages should contain is not there.
    #[error(
        "{path} is missing after unpacking {what}: the package does not have the expected layout"
    )]
    MissingFile { path: PathBuf, what: String },
    /// A filesystem operation failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The modules directory has no modules.dep.
    #[error(
        "{dir}/modules.dep not found: run `depmod -b <root> <release>` (package `kmod`) where \
         <root>/lib/modules/<release> is that directory"
    )]
    ModulesDepMissing { dir: PathBuf },
    /// A wanted module is neither a loadable module nor built in.
    #[error(
        "kernel module `{name}` is neither in {dir}/modules.dep nor in modules.builtin: check \
         the name and that this kernel's config enables it"
    )]
    ModuleNotFound { name: String, dir: PathBuf },
    /// modules.dep contains a dependency cycle.
    #[error("modules.dep in {dir} has a dependency cycle through `{name}`; re-run depmod")]
    ModuleCycle { name: String, dir: PathBuf },
}

impl KernelError {
    /// An [`KernelError::Io`] with a context sentence.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        KernelError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KernelError;

    #[test]
    fn messages_say_what_to_do() {
        let e = KernelError::ToolMissing {
            tool: "apt-get",
            package: "apt",
        };
        assert!(e.to_string().starts_with("`apt-get` not found"), "{e}");
        assert!(
            e.to_string().contains("install the Debian package `apt`"),
            "{e}"
        );
        let e = KernelError::NotInArchive {
            package: "linux-image-x".into(),
            version: "1".into(),
        };
        assert!(e.to_string().contains("apt-get update"), "{e}");
    }
}
