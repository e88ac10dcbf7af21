//! The swap devices programs use, on the media the kernel command line asks for
//! ([`SwapMedia`], `shmemfuzz.swap_media=`): the host's virtio-blk disks as they come
//! (rotational), the same disks marked non-rotational, or zram devices of the disks' sizes.
//! Done once at boot, before the first swapon (the first program's), because swapon reads
//! what the device is then.

use std::fs;
use std::io::Write;
use std::path::Path;

use shmemfuzz_core::swap::{header, SwapMedia};

use crate::setup::SetupError;
use crate::sys::{read_trimmed, write_file};

/// The media `/proc/cmdline` asks for.
pub fn media() -> Result<SwapMedia, SetupError> {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    SwapMedia::of_args(cmdline.split_whitespace()).map_err(SetupError::SwapMedia)
}

/// Prepares `media` over the host's disks (`/dev/vda`, …, already present) and returns the
/// device paths programs swap on (`swap0` is the first).
pub fn prepare(media: SwapMedia, disks: &[String]) -> Result<Vec<String>, SetupError> {
    match media {
        SwapMedia::Disk => Ok(disks.to_vec()),
        SwapMedia::Ssd => {
            // swapon calls a device an SSD (SWP_SOLIDSTATE) by its queue's rotational flag,
            // and only an SSD gets cluster info, which large-folio swap-out needs (6.12's
            // scan_swap_map_slots()): on a rotational device every large folio is split
            // before it goes out.
            for d in disks {
                let attr = format!("/sys/block/{}/queue/rotational", dev_name(d));
                write_file(&attr, "0").map_err(|e| io(&format!("writing 0 to {attr}"), e))?;
            }
            Ok(disks.to_vec())
        }
        SwapMedia::Zram => disks
            .iter()
            .enumerate()
            .map(|(i, d)| zram(i, sectors(d)? * 512))
            .collect(),
    }
}

fn dev_name(path: &str) -> &str {
    path.trim_start_matches("/dev/")
}

fn sectors(disk: &str) -> Result<u64, SetupError> {
    let attr = format!("/sys/block/{}/size", dev_name(disk));
    read_trimmed(&attr).parse().map_err(|_| SetupError::Io {
        what: format!("reading the size of {disk} from {attr}"),
        source: std::io::Error::other("not a number"),
    })
}

fn io(what: &str, errno: nix::errno::Errno) -> SetupError {
    SetupError::Io {
        what: what.into(),
        source: errno.into(),
    }
}

/// Sets up `/dev/zram<i>` with `size` bytes, lzo-rle, and a swap header.
fn zram(i: usize, size: u64) -> Result<String, SetupError> {
    let sys = format!("/sys/block/zram{i}");
    // The module (or the built-in driver) makes zram0; more come from hot_add, in order.
    while !Path::new(&sys).exists() {
        let added = read_trimmed("/sys/class/zram-control/hot_add");
        if added.parse::<usize>().is_err() {
            return Err(SetupError::SwapMedia(format!(
                "no zram devices: /sys/class/zram-control/hot_add says {added:?} (is zram \
                 built in or loaded? Debian builds it as a module, which the host adds to the \
                 initramfs for shmemfuzz.swap_media=zram)"
            )));
        }
    }
    // lzo-rle is built in wherever zram is usable here (Debian's default lz4 is a module the
    // initramfs does not carry); a kernel without it keeps its own default.
    let _ = write_file(&format!("{sys}/comp_algorithm"), "lzo-rle");
    let disksize = format!("{sys}/disksize");
    write_file(&disksize, &size.to_string())
        .map_err(|e| io(&format!("writing {size} to {disksize}"), e))?;
    let dev = format!("/dev/zram{i}");
    crate::setup::wait_for(&dev, || Path::new(&dev).exists())?;
    let mut uuid = [0x7au8; 16];
    uuid[15] = i as u8;
    let page = header(size, uuid)
        .ok_or_else(|| SetupError::SwapMedia(format!("{dev}: {size} bytes is too small")))?;
    fs::OpenOptions::new()
        .write(true)
        .open(&dev)
        .and_then(|mut f| f.write_all(&page).and_then(|()| f.sync_all()))
        .map_err(|source| SetupError::Io {
            what: format!("writing the swap header to {dev}"),
            source,
        })?;
    Ok(dev)
}
