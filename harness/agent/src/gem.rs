//! The mock GMA500 driver from the agent's side: open the DRM device, create GEM objects and
//! get their shmem files, pin and unpin, apply the DMA32 mask to any shmem file, map GEM
//! objects through the device, and read every page's state with PAGE_INFO.
//!
//! Layouts and ioctl numbers come from `shmemfuzz_core::uapi`, the mirror of the driver's
//! uapi header (a test there compiles the header and compares). The two generic DRM ioctls
//! used here (MODE_MAP_DUMB, GEM_CLOSE) are stable kernel ABI from `<drm/drm.h>`.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use shmemfuzz_core::protocol::{PageObs, PageState};
use shmemfuzz_core::uapi;

/// `struct drm_mode_map_dumb` and `struct drm_gem_close` from `<drm/drm_mode.h>`/`<drm/drm.h>`.
#[repr(C)]
#[derive(Debug, Default)]
struct MapDumb {
    handle: u32,
    pad: u32,
    offset: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
struct GemClose {
    handle: u32,
    pad: u32,
}

/// `struct drm_version` from `<drm/drm.h>` (only the name is asked for).
#[repr(C)]
#[derive(Debug)]
struct DrmVersion {
    version_major: i32,
    version_minor: i32,
    version_patchlevel: i32,
    name_len: usize,
    name: *mut u8,
    date_len: usize,
    date: *mut u8,
    desc_len: usize,
    desc: *mut u8,
}

impl Default for DrmVersion {
    fn default() -> Self {
        DrmVersion {
            version_major: 0,
            version_minor: 0,
            version_patchlevel: 0,
            name_len: 0,
            name: std::ptr::null_mut(),
            date_len: 0,
            date: std::ptr::null_mut(),
            desc_len: 0,
            desc: std::ptr::null_mut(),
        }
    }
}

const DRM_IOCTL_VERSION: u64 =
    nix::request_code_readwrite!(b'd', 0x00, std::mem::size_of::<DrmVersion>()) as u64;
const DRM_IOCTL_MODE_MAP_DUMB: u64 =
    nix::request_code_readwrite!(b'd', 0xB3, std::mem::size_of::<MapDumb>()) as u64;
const DRM_IOCTL_GEM_CLOSE: u64 =
    nix::request_code_write!(b'd', 0x09, std::mem::size_of::<GemClose>()) as u64;

fn ioctl<T>(fd: RawFd, request: u64, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `arg` is a live, exclusively borrowed #[repr(C)] struct of the size the request
    // encodes; the kernel reads and writes only within it.
    let rc = unsafe { libc::ioctl(fd, request as libc::c_ulong, arg as *mut T) };
    Errno::result(rc).map(drop)
}

/// Bytes per page, as PAGE_INFO counts them.
const PAGE_BYTES: u64 = 4096;

/// The mock driver's DRM device.
#[derive(Debug)]
pub struct Dri {
    dev: File,
}

impl Dri {
    /// Opens the DRM card whose driver reports the name `gma500_mock` (DRM_IOCTL_VERSION).
    pub fn open() -> Result<Dri, Errno> {
        for i in 0..16 {
            let Ok(dev) = OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/dev/dri/card{i}"))
            else {
                continue;
            };
            let mut name = [0u8; 32];
            let mut v = DrmVersion {
                name_len: name.len(),
                name: name.as_mut_ptr(),
                ..DrmVersion::default()
            };
            if ioctl(dev.as_raw_fd(), DRM_IOCTL_VERSION, &mut v).is_ok()
                && name.starts_with(b"gma500_mock")
            {
                return Ok(Dri { dev });
            }
        }
        Err(Errno::ENODEV)
    }

    fn fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    /// A GEM object of `size` bytes (rounded up to pages by the driver); returns its handle.
    pub fn create(&self, size: u64, pinned: bool) -> Result<u32, Errno> {
        let mut a = uapi::drm_gma500_mock_gem_create {
            size,
            flags: if pinned {
                uapi::GMA500_MOCK_CREATE_PINNED
            } else {
                0
            },
            handle: 0,
        };
        ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &mut a)?;
        Ok(a.handle)
    }

    /// A descriptor of the object's shmem file.
    pub fn shmem_fd(&self, handle: u32) -> Result<OwnedFd, Errno> {
        let mut a = uapi::drm_gma500_mock_shmem_fd {
            handle,
            flags: uapi::GMA500_MOCK_FD_CLOEXEC,
            fd: -1,
            pad: 0,
        };
        ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &mut a)?;
        // SAFETY: the driver just installed this descriptor for us and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(a.fd) })
    }

    pub fn pin(&self, handle: u32) -> Result<(), Errno> {
        let mut a = uapi::drm_gma500_mock_pin {
            handle,
            pin_count: 0,
        };
        ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_PIN, &mut a)
    }

    pub fn unpin(&self, handle: u32) -> Result<(), Errno> {
        let mut a = uapi::drm_gma500_mock_pin {
            handle,
            pin_count: 0,
        };
        ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_UNPIN, &mut a)
    }

    pub fn set_dma32(&self, fd: RawFd) -> Result<(), Errno> {
        let mut a = uapi::drm_gma500_mock_set_dma32 { fd, flags: 0 };
        ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_SET_DMA32, &mut a)
    }

    /// The fake offset to mmap the object through the device at.
    pub fn map_offset(&self, handle: u32) -> Result<u64, Errno> {
        let mut a = MapDumb {
            handle,
            ..MapDumb::default()
        };
        ioctl(self.fd(), DRM_IOCTL_MODE_MAP_DUMB, &mut a)?;
        Ok(a.offset)
    }

    pub fn close_handle(&self, handle: u32) -> Result<(), Errno> {
        let mut a = GemClose { handle, pad: 0 };
        ioctl(self.fd(), DRM_IOCTL_GEM_CLOSE, &mut a)
    }

    pub fn device(&self) -> &File {
        &self.dev
    }

    /// Every page of the shmem file behind `fd` (up to its size), and whether its mapping is
    /// DMA32-constrained. A first call with no pages reads the size, so the module walks and
    /// copies only the object's own pages (asking for a fixed 4096 made the observation after
    /// every operation the largest cost of a run under TCG).
    pub fn pages(&self, fd: RawFd) -> Result<(Vec<PageObs>, bool), Errno> {
        self.pages_hinted(fd, 0)
    }

    /// As [`Dri::pages`], asking for `hint` pages in the first call (the object's length
    /// at the last look): one ioctl instead of two when the length has not grown. Pages
    /// past the end come back absent and are dropped.
    pub fn pages_hinted(&self, fd: RawFd, hint: usize) -> Result<(Vec<PageObs>, bool), Errno> {
        const CHUNK: u64 = 4096;
        let query = |first: u64, buf: &mut [uapi::drm_gma500_mock_page]| {
            let mut a = uapi::drm_gma500_mock_page_info {
                fd,
                count: buf.len() as u32,
                first_index: first,
                pages: buf.as_mut_ptr() as u64,
                size: 0,
                mapping_flags: 0,
                pad: 0,
            };
            ioctl(self.fd(), uapi::DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &mut a).map(|_| a)
        };
        let mut buf =
            vec![uapi::drm_gma500_mock_page::default(); (hint as u64).min(CHUNK) as usize];
        let info = query(0, &mut buf)?;
        let dma32 = info.mapping_flags & uapi::GMA500_MOCK_MAPPING_DMA32 != 0;
        let total = info.size.div_ceil(PAGE_BYTES);
        let mut out = Vec::with_capacity(total as usize);
        let convert = |p: &uapi::drm_gma500_mock_page| PageObs {
            state: match p.state {
                uapi::GMA500_MOCK_PAGE_RESIDENT => PageState::Resident,
                uapi::GMA500_MOCK_PAGE_SWAPPED => PageState::Swapped,
                _ => PageState::Absent,
            },
            pfn: p.pfn,
            order: u8::try_from(p.folio_order).unwrap_or(u8::MAX),
            head: p.flags & uapi::GMA500_MOCK_PAGE_HEAD != 0,
            pinned: p.flags & (uapi::GMA500_MOCK_PAGE_PINNED | uapi::GMA500_MOCK_PAGE_DMA_PINNED)
                != 0,
        };
        let mut first = (buf.len() as u64).min(total);
        out.extend(buf[..first as usize].iter().map(convert));
        buf.resize(
            total.saturating_sub(first).min(CHUNK) as usize,
            Default::default(),
        );
        while first < total {
            let n = (total - first).min(CHUNK) as usize;
            query(first, &mut buf[..n])?;
            out.extend(buf[..n].iter().map(convert));
            first += n as u64;
        }
        Ok((out, dma32))
    }
}
