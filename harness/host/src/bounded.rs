//! Reading files that come from outside (bundles, corpora, crash directories, programs): only
//! regular files, and at most a bound. A FIFO, a socket or a device is refused at once (it is
//! opened without blocking and checked on the open descriptor), and a file larger than what
//! the harness would ever write is refused rather than read whole; a console log keeps its
//! tail instead.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Program texts: far above the largest valid program (512 operations and their comments).
pub const PROGRAM_MAX: u64 = 64 << 20;
/// A console log: its last 64 MiB are kept.
pub const CONSOLE_MAX: u64 = 64 << 20;
/// A JSON file of a bundle (records, outcome, trace, manifest).
pub const JSON_MAX: u64 = 512 << 20;
/// A corpus or crash file (the fuzzer's inputs are a few KiB).
pub const INPUT_MAX: u64 = 16 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} is a {kind}, not a regular file: replace it with the file itself")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path} is {size} bytes, more than the {limit} such a file may have: it is not one \
         shmemfuzz wrote (check the path)"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path} is not UTF-8 text (invalid byte at offset {offset})")]
    NotText { path: PathBuf, offset: usize },
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Opens `path` for reading without blocking and checks it is a regular file; returns it
/// and its size.
fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    let t = meta.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_dir() {
        Some("directory")
    } else if t.is_fifo() {
        Some("FIFO (named pipe)")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else {
        Some("special file")
    };
    match kind {
        Some(kind) => Err(ReadError::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
        None => Ok((file, meta.len())),
    }
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, size) = open_regular(path)?;
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than the bound: a file that grew while being read is caught too.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, limit)?).map_err(|e| ReadError::NotText {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// The last `limit` bytes of a regular file (all of it when smaller).
pub fn read_tail(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (mut file, size) = open_regular(path)?;
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let start = size.saturating_sub(limit);
    file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let wd = tempfile::tempdir().expect("tempdir");
        let fifo = wd.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        // No writer ever opens it: a blocking open or read would hang here.
        let e = read(&fifo, 10).expect_err("a FIFO is refused");
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = read(wd.path(), 10).expect_err("a directory is refused");
        assert!(e.to_string().contains("directory"), "{e}");
        let f = wd.path().join("f");
        std::fs::write(&f, b"0123456789").expect("write");
        assert_eq!(read(&f, 10).expect("at the bound"), b"0123456789");
        let e = read(&f, 9).expect_err("over the bound");
        assert!(matches!(e, ReadError::TooLarge { size: 10, .. }), "{e}");
        assert_eq!(read_tail(&f, 4).expect("tail"), b"6789");
        assert_eq!(read_tail(&f, 40).expect("all"), b"0123456789");
        assert!(read(&wd.path().join("none"), 1)
            .expect_err("missing")
            .is_not_found());
    }
}
