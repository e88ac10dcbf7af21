//! Anonymous shared memory as a program object (`memfd NAME size=S anon`).
//!
//! `mmap(MAP_SHARED | MAP_ANONYMOUS)` makes a shmem file of its own (`shmem_zero_setup()`)
//! whose mappings are *anonymous shmem* VMAs: the only ones Linux 6.12's per-size shmem
//! mTHP settings (`hugepages-<size>kB/shmem_enabled`) apply to (`vma_is_anon_shmem()`). So
//! that every other operation works on it as on a memfd, the object's descriptor is that
//! file, opened through `/proc/self/map_files/` (root in the guest); the first mapping, the
//! *base*, stays as long as the object is open, and the program's own shared mappings of the
//! object are duplicates of it (`mremap(old_size = 0)` copies the VMA, its anonymous-shmem
//! operations included), where mapping the descriptor would make an ordinary file VMA.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::mman::{mmap_anonymous, mremap, munmap, MRemapFlags, MapFlags, ProtFlags};
use nix::sys::stat::Mode;
use shmemfuzz_core::program::PAGE_SIZE;

/// The name under which an object's base mapping is kept among the program's mappings: no
/// program name contains a NUL, so it cannot clash, and a thread section leaves it with the
/// main state (a thread that maps the object then maps its descriptor: an ordinary shmem VMA
/// of the same file).
pub fn base_name(obj: &str) -> String {
    format!("{obj}\0anon")
}

/// Creates the mapping and opens its file: `(base address, base length, descriptor)`. The
/// base covers `size` rounded up to a page (at least one); the file is then truncated to
/// `size` exactly, as `memfd` does.
pub fn create(size: u64) -> Result<(NonNull<c_void>, usize, OwnedFd), Errno> {
    let len = usize::try_from(size.max(PAGE_SIZE).next_multiple_of(PAGE_SIZE))
        .map_err(|_| Errno::ENOMEM)?;
    let n = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    // SAFETY: a fresh mapping at an address the kernel picks; nothing aliases it.
    let addr = unsafe {
        mmap_anonymous(
            None,
            n,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?
    };
    let start = addr.as_ptr() as usize;
    let path = format!("/proc/self/map_files/{start:x}-{:x}", start + len);
    let fd = match open(
        path.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // SAFETY: `open` returned a new descriptor that nothing else owns.
        Ok(raw) => unsafe { OwnedFd::from_raw_fd(raw) },
        Err(e) => {
            // SAFETY: the mapping made above, not used again.
            let _ = unsafe { munmap(addr, len) };
            return Err(e);
        }
    };
    nix::unistd::ftruncate(&fd, size as i64)?;
    Ok((addr, len, fd))
}

/// A new anonymous-shmem mapping of bytes `off..off + len` of the object whose base is
/// `base`/`base_len`; `None` when the range is not inside the base (the object grew by
/// `ftruncate`): the caller then maps the descriptor.
pub fn duplicate(
    base: NonNull<c_void>,
    base_len: usize,
    off: u64,
    len: usize,
) -> Option<Result<NonNull<c_void>, Errno>> {
    let off = usize::try_from(off).ok()?;
    if off.checked_add(len)? > base_len || off % PAGE_SIZE as usize != 0 {
        return None;
    }
    let from = NonNull::new(
        base.as_ptr()
            .cast::<u8>()
            .wrapping_add(off)
            .cast::<c_void>(),
    )?;
    // SAFETY: `from` lies in the base mapping, which stays mapped; old_size 0 on a shared
    // mapping leaves it as it is and makes a second mapping of the same pages.
    Some(unsafe { mremap(from, 0, len, MRemapFlags::MREMAP_MAYMOVE, None) })
}
