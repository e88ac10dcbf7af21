//! The files shmemfuzz writes and reads back later, as their own versioned types.
//!
//! Runtime types (core's `OpRecord`, `Verdict`, ...; the bisection's `Step`) change with the
//! code; the files must not change with them. So every file has on-disk twins here (`…V1`,
//! one struct per shape and version), converted with `From` (runtime → disk, when writing)
//! and `TryFrom` (disk → runtime, when reading, where numbers are checked). Renaming a runtime
//! field then breaks a conversion at compile time, not the format; renaming a twin's field
//! changes the bytes, which the golden files catch.
//!
//! ```text
//! file                     twin                      version                 checked on read
//! bundle/bundle.json       bundle::format::ManifestV1 "version" (1)          bundle::format
//! bundle/records.json      records::OpRecordV1        bundle.json's          records
//! bundle/outcome.json      outcome::OutcomeV1         bundle.json's          outcome
//! bundle/trace.json        trace::TraceV1             "version" (1)          never read back
//! <bisect dir>/state.json  bisect::StateV1            "version" (1)          bisect
//! ```
//! records.json and outcome.json have no version field of their own: they are part of a
//! bundle, whose bundle.json names the version of all its files (and their SHA-256).
//!
//! Every twin is `#[serde(deny_unknown_fields)]`: a file with a field this shmemfuzz does
//! not know is refused, never half-read. A version newer than the reader's is refused with
//! [`OnDiskError::TooNew`] before the rest is parsed. Version 1 is the layout shmemfuzz
//! wrote before these types existed, byte for byte (the golden files were written by that
//! code and still pass). Fields added to a version 1 file after its first release are
//! `#[serde(default)]`, and their docs say what a missing one reads as.
//!
//! To change a format: add `…V2` twins, bump the version, keep reading `…V1` (convert it to
//! the runtime type, or to `…V2`), and regenerate the golden files (`golden.rs`, tests only:
//! `UPDATE_GOLDEN=1 cargo test -p shmemfuzz --lib golden`).

pub mod bisect;
pub mod outcome;
pub mod records;
pub mod trace;

#[cfg(test)]
mod golden;
#[cfg(test)]
pub(crate) mod golden_tests;
#[cfg(test)]
mod tests;

/// Why an on-disk file's contents were refused.
#[derive(Debug, thiserror::Error)]
pub enum OnDiskError {
    /// A number outside what any run produces (the file is damaged or was edited wrongly).
    #[error("{what}: {why}")]
    OutOfRange { what: String, why: String },
    /// Not JSON, or not the shape of any field this version has (serde_json's message says
    /// where).
    #[error("not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A file of another kind.
    #[error("its \"format\" is {found}, not \"{expected}\"")]
    WrongFormat {
        expected: &'static str,
        found: String,
    },
    /// Written by a newer shmemfuzz.
    #[error(
        "{format} format {found} is newer than this shmemfuzz ({harness}) understands \
         (≤ {supported}); upgrade shmemfuzz"
    )]
    TooNew {
        /// `bisection state`, ...
        format: &'static str,
        found: u64,
        supported: u32,
        harness: &'static str,
    },
}

impl OnDiskError {
    pub(crate) fn out_of_range(what: impl Into<String>, why: impl Into<String>) -> Self {
        OnDiskError::OutOfRange {
            what: what.into(),
            why: why.into(),
        }
    }

    /// Refuses `found` if it is newer than `supported`.
    pub(crate) fn check_version(
        format: &'static str,
        found: u64,
        supported: u32,
    ) -> Result<(), OnDiskError> {
        if found > u64::from(supported) {
            return Err(OnDiskError::TooNew {
                format,
                found,
                supported,
                harness: env!("CARGO_PKG_VERSION"),
            });
        }
        Ok(())
    }
}
