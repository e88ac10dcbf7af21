//! [`BundleError`]: every way writing or reading a bundle can fail. Each message names the
//! bundle or file and says what to do.

use std::io;
use std::path::PathBuf;

use shmemfuzz_core::program::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. `reading`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file of the bundle is not a regular file, or is larger than any bundle's.
    #[error(transparent)]
    File(#[from] crate::bounded::ReadError),
    /// The directory to read does not exist.
    #[error("no bundle at {0}: the directory does not exist (check the path)")]
    NotFound(PathBuf),
    /// Writing would replace something that is already there.
    #[error(
        "{0} already exists: choose another directory, or ask to overwrite it (only a bundle \
         or an empty directory is ever replaced)"
    )]
    Exists(PathBuf),
    /// The directory (or the file asked to be replaced) is not a shmemfuzz bundle.
    #[error("{path} is not a shmemfuzz bundle: {why}")]
    NotABundle { path: PathBuf, why: String },
    /// A file the bundle must hold is not there.
    #[error(
        "bundle {dir} is incomplete: {file} is missing; copy the whole bundle directory again, \
         or re-record it"
    )]
    Missing { dir: PathBuf, file: String },
    /// A file's contents do not match the sha256 that bundle.json records for it.
    #[error(
        "{path} is corrupt: its sha256 is {actual}, but bundle.json records {expected}; the file \
         was truncated or changed after recording; restore it from the original bundle or \
         re-record (if you edited it on purpose, put the new sha256 in bundle.json)"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A JSON file does not parse or does not have the expected shape (serde_json's message
    /// carries the line and column).
    #[error("{path} is malformed (restore it from the original bundle or re-record)")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer harness.
    #[error(
        "{path}: bundle format {found} is newer than this shmemfuzz ({harness}) understands \
         (≤ {supported}); upgrade shmemfuzz to replay it"
    )]
    TooNew {
        path: PathBuf,
        found: u64,
        supported: u32,
        harness: &'static str,
    },
    /// Written in a format version no longer read (and not migrated).
    #[error(
        "{path} is bundle format version {found}, older than the oldest this shmemfuzz reads \
         ({oldest}), and cannot be migrated: replay it with the shmemfuzz that wrote it, or \
         re-record it from its program.prog"
    )]
    TooOld {
        path: PathBuf,
        found: u64,
        oldest: u32,
    },
    /// The program text does not parse (the position and the reason are this error's own,
    /// not a cause: `FILE: line L, column C: …`).
    #[error("{path}: {error}; fix the program text (and its sha256 in bundle.json) or re-record")]
    Program { path: PathBuf, error: ParseError },
    /// The parts of a bundle (or of the contents to write) contradict each other.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// What was written did not read back; nothing was published.
    #[error(
        "writing bundle {dir} failed, nothing was written there: the new bundle did not read back"
    )]
    Verify {
        dir: PathBuf,
        #[source]
        source: Box<BundleError>,
    },
}

impl BundleError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BundleError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        BundleError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
