//! PVH direct boot: QEMU starts an uncompressed `vmlinux` at its 32-bit PVH entry point,
//! with no real-mode setup and no decompressor in the guest.
//!
//! Under TCG the decompressor is slow: Debian 6.1's xz-compressed 8 MB bzImage spends about
//! 2.5 s in the guest before the kernel prints its first line (`bench boot`: 4.7 s to agent
//! ready, 2.0 s booted this way). So the payload is decompressed once on the host, next to
//! the bzImage (`<bzImage>.pvh`), and QEMU is handed that. It works only for a kernel built
//! with `CONFIG_PVH=y` (Debian's are; the self-built configs are not, and boot in about a
//! second anyway): the ELF must carry the Xen `PHYS32_ENTRY` note, else the bzImage is booted
//! as before. A kernel booted this way runs where it was linked: the decompressor is also
//! what applies KASLR, so there is none. `SHMEMFUZZ_DIRECT_BOOT=0` boots every bzImage as is.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a bzImage could not be turned into a PVH image (the caller boots the bzImage).
#[derive(Debug, thiserror::Error)]
pub enum PvhError {
    #[error("reading {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("writing {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("{0} is not a bzImage this code understands: {1}")]
    Format(PathBuf, &'static str),
    #[error("decompressing the payload of {0}")]
    Decompress(PathBuf, #[source] std::io::Error),
}

/// The environment variable that turns direct boot off (`0`).
pub const DISABLE_VAR: &str = "SHMEMFUZZ_DIRECT_BOOT";

/// `XEN_ELFNOTE_PHYS32_ENTRY` (include/xen/interface/elfnote.h): the PVH entry point.
const PHYS32_ENTRY: u32 = 18;

/// What QEMU should boot for `bzimage`: its PVH image when the kernel supports PVH (made
/// and cached on first use), else the bzImage itself. Failures fall back to the bzImage
/// with a warning: direct boot only saves time.
pub fn boot_image(bzimage: &Path) -> PathBuf {
    if std::env::var_os(DISABLE_VAR).is_some_and(|v| v == "0") {
        return bzimage.to_path_buf();
    }
    match cached_image(bzimage) {
        Ok(Some(elf)) => elf,
        Ok(None) => bzimage.to_path_buf(),
        Err(e) => {
            tracing::warn!("booting the bzImage: no PVH image: {e:#}");
            bzimage.to_path_buf()
        }
    }
}

/// The cached PVH image of `bzimage`, making it if missing or older than the bzImage;
/// `None` (remembered in `<bzImage>.pvh-none`) when the kernel has no PVH entry.
pub fn cached_image(bzimage: &Path) -> Result<Option<PathBuf>, PvhError> {
    let elf = with_suffix(bzimage, ".pvh");
    let none = with_suffix(bzimage, ".pvh-none");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let source = mtime(bzimage).ok_or_else(|| {
        PvhError::Read(bzimage.to_path_buf(), std::io::ErrorKind::NotFound.into())
    })?;
    let fresh = |p: &Path| mtime(p).is_some_and(|t| t >= source);
    if fresh(&elf) {
        return Ok(Some(elf));
    }
    if fresh(&none) {
        return Ok(None);
    }
    let bytes = fs::read(bzimage).map_err(|e| PvhError::Read(bzimage.to_path_buf(), e))?;
    let vmlinux = payload(&bytes, bzimage)?;
    let (target, contents) = if has_pvh_entry(&vmlinux) {
        (elf.clone(), vmlinux)
    } else {
        (none, Vec::new())
    };
    // Written beside and renamed: a concurrent launch sees the old state or the whole file.
    let tmp = with_suffix(&target, &format!(".tmp{}", std::process::id()));
    fs::write(&tmp, &contents).map_err(|e| PvhError::Write(tmp.clone(), e))?;
    fs::rename(&tmp, &target).map_err(|e| PvhError::Write(target.clone(), e))?;
    Ok((target == elf).then_some(elf))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The decompressed payload of a bzImage (Documentation/arch/x86/boot.rst: protocol 2.08+
/// gives `payload_offset` and `payload_length` at 0x248, from the protected-mode code,
/// which starts after `setup_sects` + 1 sectors).
pub fn payload(image: &[u8], path: &Path) -> Result<Vec<u8>, PvhError> {
    let bad = |why| PvhError::Format(path.to_path_buf(), why);
    if image.get(0x202..0x206) != Some(b"HdrS") {
        return Err(bad("no HdrS setup header"));
    }
    if le16(image, 0x206).unwrap_or(0) < 0x0208 {
        return Err(bad("boot protocol older than 2.08 (no payload fields)"));
    }
    let setup_sects = match image.get(0x1f1).copied().unwrap_or(0) {
        0 => 4,
        n => usize::from(n),
    };
    let offset = le32(image, 0x248).ok_or(bad("truncated header"))? as usize;
    let length = le32(image, 0x24c).ok_or(bad("truncated header"))? as usize;
    let start = (setup_sects + 1) * 512 + offset;
    let data = image
        .get(start..start + length)
        .ok_or(bad("payload outside the file"))?;
    let mut out = Vec::new();
    let err = |e| PvhError::Decompress(path.to_path_buf(), e);
    match data {
        [0x1f, 0x8b, ..] => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            // As for zstd below, the kernel appends the decompressed size after the stream.
            xz2::read::XzDecoder::new(&data[..data.len().saturating_sub(4)])
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            // The kernel appends the decompressed size after the frame: not zstd data.
            let frame = &data[..data.len().saturating_sub(4)];
            ruzstd::decoding::StreamingDecoder::new(frame)
                .map_err(|e| err(std::io::Error::other(e.to_string())))?
                .read_to_end(&mut out)
                .map_err(err)?;
        }
        _ => return Err(bad("payload compressed other than with gzip, xz or zstd")),
    }
    Ok(out)
}

/// Whether `elf` (a 64-bit little-endian ELF) has a `PT_NOTE` with the Xen PVH entry note.
pub fn has_pvh_entry(elf: &[u8]) -> bool {
    if elf.get(0..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (le64(elf, 0x20), le16(elf, 0x36), le16(elf, 0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| {
        let ph = phoff as usize + i * usize::from(phentsize);
        const PT_NOTE: u32 = 4;
        if le32(elf, ph) != Some(PT_NOTE) {
            return false;
        }
        let (Some(off), Some(size)) = (le64(elf, ph + 8), le64(elf, ph + 32)) else {
            return false;
        };
        notes(
            elf.get(off as usize..(off + size) as usize)
                .unwrap_or_default(),
        )
        .any(|(name, kind)| name == b"Xen" && kind == PHYS32_ENTRY)
    })
}

/// The little-endian integers at byte `o` of `b`, if it is that long (the setup header and
/// the ELF headers are both little-endian on x86).
fn le16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// (name without NUL, type) of each note in a note segment.
fn notes(mut seg: &[u8]) -> impl Iterator<Item = (&[u8], u32)> {
    std::iter::from_fn(move || {
        let word = |o: usize| le32(seg, o).map(|w| w as usize);
        let (namesz, descsz, kind) = (word(0)?, word(4)?, word(8)?);
        let align = |n: usize| n.div_ceil(4) * 4;
        let name = seg.get(12..12 + namesz)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        let next = 12 + align(namesz) + align(descsz);
        let item = (name, kind as u32);
        seg = seg.get(next..).unwrap_or_default();
        Some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_NOTE segment holding one note.
    fn elf_with_note(name: &[u8], kind: u32) -> Vec<u8> {
        let mut e = vec![0u8; 0x40 + 0x38];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes()); // e_phoff
        e[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes()); // e_phentsize
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let mut note = Vec::new();
        note.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&kind.to_le_bytes());
        note.extend_from_slice(name);
        note.push(0);
        while note.len() % 4 != 0 {
            note.push(0);
        }
        note.extend_from_slice(&0x0100_0000u32.to_le_bytes());
        let off = e.len() as u64;
        let ph = 0x40;
        e[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        e[ph + 8..ph + 16].copy_from_slice(&off.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        e.extend_from_slice(&note);
        e
    }

    #[test]
    fn the_xen_phys32_entry_note_is_found_and_nothing_else_counts() {
        assert!(has_pvh_entry(&elf_with_note(b"Xen", PHYS32_ENTRY)));
        assert!(!has_pvh_entry(&elf_with_note(b"Xen", 6)));
        assert!(!has_pvh_entry(&elf_with_note(b"GNU", PHYS32_ENTRY)));
        assert!(!has_pvh_entry(b"\x7fELF\x01\x01 a 32-bit one"));
        assert!(!has_pvh_entry(b"MZ not an ELF"));
    }

    /// The three ways `payload` decompresses, as the kernel's build makes them: xz and zstd
    /// with the decompressed size appended (`size_append`), gzip without.
    #[derive(Clone, Copy)]
    enum Packing {
        Gzip,
        Xz,
        Zstd,
    }

    /// A bzImage-shaped file: setup header, then a payload compressing `inner`.
    fn bzimage(inner: &[u8], packing: Packing) -> Vec<u8> {
        use std::io::Write;
        let size = (inner.len() as u32).to_le_bytes();
        let payload = match packing {
            Packing::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(inner).expect("compress");
                gz.finish().expect("compress")
            }
            Packing::Xz => {
                let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
                xz.write_all(inner).expect("compress");
                let mut p = xz.finish().expect("compress");
                p.extend_from_slice(&size);
                p
            }
            Packing::Zstd => {
                let level = ruzstd::encoding::CompressionLevel::Fastest;
                let mut p = ruzstd::encoding::compress_to_vec(inner, level);
                p.extend_from_slice(&size);
                p
            }
        };
        let mut img = vec![0u8; 5 * 512];
        img[0x1f1] = 4;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(&[0u8; 16]);
        img.extend_from_slice(&payload);
        img
    }

    #[test]
    fn payloads_in_gzip_xz_and_zstd_come_out_whole() {
        let elf = elf_with_note(b"Xen", PHYS32_ENTRY);
        for packing in [Packing::Gzip, Packing::Xz, Packing::Zstd] {
            let img = bzimage(&elf, packing);
            assert_eq!(payload(&img, Path::new("k")).expect("decompresses"), elf);
        }
    }

    #[test]
    fn a_pvh_kernel_is_extracted_once_and_a_kernel_without_pvh_is_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pvh = dir.path().join("vmlinuz-pvh");
        let elf = elf_with_note(b"Xen", PHYS32_ENTRY);
        fs::write(&pvh, bzimage(&elf, Packing::Gzip)).expect("write");
        let got = cached_image(&pvh).expect("extracts").expect("has PVH");
        assert_eq!(fs::read(&got).expect("read"), elf);
        assert_eq!(boot_image(&pvh), got);
        let plain = dir.path().join("vmlinuz-plain");
        fs::write(&plain, bzimage(&elf_with_note(b"Xen", 6), Packing::Zstd)).expect("write");
        assert_eq!(cached_image(&plain).expect("reads"), None);
        assert!(with_suffix(&plain, ".pvh-none").is_file());
        assert_eq!(boot_image(&plain), plain);
    }

    #[test]
    fn a_file_that_is_not_a_bzimage_is_an_error_not_a_boot_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk");
        fs::write(&junk, b"not a kernel").expect("write");
        assert!(matches!(cached_image(&junk), Err(PvhError::Format(..))));
        assert_eq!(boot_image(&junk), junk, "falls back to the file itself");
    }
}
