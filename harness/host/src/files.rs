//! File helpers every part of the host uses: the SHA-256 of a file (streamed, never read
//! whole: kernel images and source tarballs are large) and replacing a file atomically.

use std::fs::Permissions;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of everything `r` yields.
pub fn reader_sha256(mut r: impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    io::copy(&mut r, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Lowercase hex SHA-256 of the file at `path`, streamed.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    reader_sha256(std::fs::File::open(path)?)
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory, written,
/// then renamed over it ([`tempfile::NamedTempFile::persist`]). A reader sees the old file or
/// the new one, never a part; a failure leaves no temporary file behind. The file gets mode
/// 0644 (less the umask), as `std::fs::write` would give a new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_files_and_readers_alike() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").expect("write");
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256(&p).expect("hash"), abc);
        assert_eq!(reader_sha256(&b"abc"[..]).expect("hash"), abc);
        assert!(file_sha256(&d.path().join("missing")).is_err());
    }

    #[test]
    fn atomic_writes_replace_and_leave_nothing_behind() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("state.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("replace");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        assert!(write_atomic(&d.path().join("no/such/dir/f"), b"x").is_err());
    }
}
