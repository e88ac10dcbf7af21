//! Swap device images: sparse raw files with a version-1 swap header (what `mkswap` writes),
//! attached to the guest as virtio-blk disks.
//!
//! ```text
//! offset 0      1024 bytes of boot bits (zero)
//! offset 1024   u32 version = 1, u32 last_page, u32 nr_badpages = 0, 16-byte UUID, 16-byte label
//! offset 4086   "SWAPSPACE2"
//! ```
//! Hand-written because it is 4 KiB of fixed layout (`include/linux/swap.h`, `union
//! swap_header`) and `mkswap` would be one more host tool to find; a test checks it against
//! `mkswap` when that is installed.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::PAGE_SIZE;

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
    let pages = size / PAGE_SIZE;
    if pages < 10 {
        return Err(SwapImageError::TooSmall(size));
    }
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    let last_page = u32::try_from(pages - 1).unwrap_or(u32::MAX);
    page[1028..1032].copy_from_slice(&last_page.to_le_bytes());
    page[1036..1052].copy_from_slice(&uuid);
    let magic = b"SWAPSPACE2";
    page[PAGE_SIZE as usize - magic.len()..].copy_from_slice(magic);
    Ok(page)
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
    fn header_has_magic_version_and_last_page() {
        let h = header(64 << 20, [0; 16]).expect("header");
        assert_eq!(&h[4086..], b"SWAPSPACE2");
        assert_eq!(
            u32::from_le_bytes(h[1024..1028].try_into().expect("4 bytes")),
            1
        );
        assert_eq!(
            u32::from_le_bytes(h[1028..1032].try_into().expect("4 bytes")),
            (64 << 20) / 4096 - 1
        );
        assert!(header(4096, [0; 16]).is_err());
    }

    #[test]
    fn matches_mkswap() {
        // ci/setup.sh installs util-linux: a missing mkswap fails the test, never skips it.
        let mkswap =
            crate::process::find_program("mkswap").expect("mkswap (Debian package util-linux)");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ref.img");
        File::create(&path)
            .and_then(|f| f.set_len(8 << 20))
            .expect("image");
        let uuid = "5f5f5f5f-5f5f-5f5f-5f5f-5f5f5f5f5f00";
        let mut cmd = std::process::Command::new(mkswap);
        cmd.arg("-U").arg(uuid).arg(&path);
        let ok =
            crate::process::output(cmd, std::time::Duration::from_secs(60)).expect("mkswap runs");
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
