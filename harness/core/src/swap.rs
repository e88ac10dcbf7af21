//! The guest's swap devices: what media they are ([`SwapMedia`], chosen by a kernel
//! argument) and the version-1 swap header both the host (disk images) and the agent (zram)
//! write.
//!
//! ```text
//! offset 0      1024 bytes of boot bits (zero)
//! offset 1024   u32 version = 1, u32 last_page, u32 nr_badpages = 0, 16-byte UUID, 16-byte label
//! offset 4086   "SWAPSPACE2"
//! ```
//! Hand-written because it is 4 KiB of fixed layout (`include/linux/swap.h`, `union
//! swap_header`) and `mkswap` would be one more tool to carry into the guest; the host's test
//! checks it against `mkswap` when that is installed.

use crate::program::PAGE_SIZE;

/// What the swap devices are. The host passes it as the kernel argument
/// `shmemfuzz.swap_media=<name>` (a dotted argument no module owns: the kernel ignores it and a
/// bundle records it with the other kernel arguments, so a replay gets the same media), and
/// the agent reads it from `/proc/cmdline` before the first swapon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SwapMedia {
    /// The host's virtio-blk disks as they come: rotational. No cluster info, so 6.12 splits
    /// large folios before swap-out; slot-neighbour readahead for every fault.
    #[default]
    Disk,
    /// The same disks marked non-rotational (`queue/rotational` = 0) before swapon: an SSD to
    /// the swap code (cluster info, large-folio swap-out on 6.12, per-VMA readahead).
    Ssd,
    /// zram devices of the disks' sizes (lzo-rle): synchronous, compressed in guest memory.
    Zram,
}

/// The kernel argument's name.
pub const SWAP_MEDIA_PARAM: &str = "shmemfuzz.swap_media";

impl SwapMedia {
    pub fn name(self) -> &'static str {
        match self {
            SwapMedia::Disk => "disk",
            SwapMedia::Ssd => "ssd",
            SwapMedia::Zram => "zram",
        }
    }

    /// `shmemfuzz.swap_media=<name>`.
    pub fn kernel_arg(self) -> String {
        format!("{SWAP_MEDIA_PARAM}={}", self.name())
    }

    /// The media a list of kernel arguments asks for (the last one counts, as for the
    /// kernel's own parameters); an unknown name is an error naming the known ones.
    pub fn of_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<SwapMedia, String> {
        let mut media = SwapMedia::Disk;
        for a in args {
            let Some(value) = a
                .strip_prefix(SWAP_MEDIA_PARAM)
                .and_then(|v| v.strip_prefix('='))
            else {
                continue;
            };
            media = [SwapMedia::Disk, SwapMedia::Ssd, SwapMedia::Zram]
                .into_iter()
                .find(|m| m.name() == value)
                .ok_or_else(|| {
                    format!("{SWAP_MEDIA_PARAM}={value}: the swap media are disk, ssd and zram")
                })?;
        }
        Ok(media)
    }
}

/// The first page of a swap device of `size` bytes; `None` below 10 pages (swapon refuses it).
pub fn header(size: u64, uuid: [u8; 16]) -> Option<Vec<u8>> {
    let pages = size / PAGE_SIZE;
    if pages < 10 {
        return None;
    }
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    let last_page = u32::try_from(pages - 1).unwrap_or(u32::MAX);
    page[1028..1032].copy_from_slice(&last_page.to_le_bytes());
    page[1036..1052].copy_from_slice(&uuid);
    let magic = b"SWAPSPACE2";
    page[PAGE_SIZE as usize - magic.len()..].copy_from_slice(magic);
    Some(page)
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
        assert!(header(4096, [0; 16]).is_none());
    }

    #[test]
    fn media_come_from_the_last_argument_and_unknown_ones_are_refused() {
        assert_eq!(SwapMedia::of_args(["quiet"]), Ok(SwapMedia::Disk));
        assert_eq!(
            SwapMedia::of_args(["shmemfuzz.swap_media=zram", "x=1"]),
            Ok(SwapMedia::Zram)
        );
        assert_eq!(
            SwapMedia::of_args(["shmemfuzz.swap_media=zram", "shmemfuzz.swap_media=ssd"]),
            Ok(SwapMedia::Ssd)
        );
        let e = SwapMedia::of_args(["shmemfuzz.swap_media=nvme"]).expect_err("nvme is no media");
        assert!(e.contains("disk, ssd and zram"), "{e}");
        for m in [SwapMedia::Disk, SwapMedia::Ssd, SwapMedia::Zram] {
            assert_eq!(SwapMedia::of_args([m.kernel_arg().as_str()]), Ok(m));
        }
    }
}
