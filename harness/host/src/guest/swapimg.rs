//! Swap device images: sparse raw files with a version-1 swap header (what `mkswap` writes,
//! [`shmemfuzz_core::swap::header`]), attached to the guest as virtio-blk disks.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SwapImageError {
    #[error("swap image of {0} bytes is too small: it needs at least 10 pages")]
    TooSmall(u64),
    #[error("writing swap image {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The first page of a swap device of `size` bytes.
pub fn header(size: u64, uuid: [u8; 16]) -> Result<Vec<u8>, SwapImageError> {
    shmemfuzz_core::swap::header(size, uuid).ok_or(SwapImageError::TooSmall(size))
}

/// Creates (or recreates) a sparse swap image of `size` bytes at `path`.
pub fn create(path: &Path, size: u64, index: u8) -> Result<(), SwapImageError> {
    let io = |source| SwapImageError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut uuid = [0x5fu8; 16];
    uuid[15] = index;
    let page = header(size, uuid)?;
    let mut f = File::create(path).map_err(io)?;
    f.set_len(size).map_err(io)?;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    f.write_all(&page).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_too_small_image_is_an_error() {
        assert!(matches!(
            header(4096, [0; 16]),
            Err(SwapImageError::TooSmall(4096))
        ));
    }

    #[test]
    fn matches_mkswap() {
        // ci/setup.sh installs util-linux: a missing mkswap fails the test, never skips it.
        let mkswap =
            crate::os::process::find_program("mkswap").expect("mkswap (Debian package util-linux)");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ref.img");
        File::create(&path)
            .and_then(|f| f.set_len(8 << 20))
            .expect("image");
        let uuid = "5f5f5f5f-5f5f-5f5f-5f5f-5f5f5f5f5f00";
        let mut cmd = std::process::Command::new(mkswap);
        cmd.arg("-U").arg(uuid).arg(&path);
        let ok = crate::os::process::output(cmd, std::time::Duration::from_secs(60))
            .expect("mkswap runs");
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let reference = std::fs::read(&path).expect("read")[..4096].to_vec();
        let mut ours = header(8 << 20, [0x5f; 16]).expect("header");
        ours[1051] = 0;
        assert_eq!(
            &ours[1024..1052],
            &reference[1024..1052],
            "version/last_page/badpages/uuid"
        );
        assert_eq!(&ours[4086..], &reference[4086..]);
    }
}
