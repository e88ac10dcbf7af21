/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctls of gma500_mock, shmemfuzz's mock GMA500 DRM driver. This header is
 * the single source of their layout: harness/core/src/uapi.rs mirrors it, and
 * a test there compiles this file and compares sizes, offsets and numbers.
 * Fixed-width fields, explicit padding (must be zero, else EINVAL), sizes a
 * multiple of 8. Besides the errors listed, the DRM core returns EINVAL for an
 * unknown ioctl and EFAULT when it cannot copy the argument.
 */

#ifndef _UAPI_GMA500_MOCK_DRM_H_
#define _UAPI_GMA500_MOCK_DRM_H_

#include <linux/ioctl.h>
#include <linux/types.h>

#if defined(__cplusplus)
extern "C" {
#endif

/*
 * DRM_IOWR(DRM_COMMAND_BASE + nr, type) of <drm/drm.h>, spelled with
 * <linux/ioctl.h> alone because Debian ships drm.h in libdrm-dev, not in
 * linux-libc-dev. The module checks these against drm.h when it is built.
 */
#define GMA500_MOCK_IOCTL_BASE		'd'	/* DRM_IOCTL_BASE */
#define GMA500_MOCK_COMMAND_BASE	0x40	/* DRM_COMMAND_BASE */
#define GMA500_MOCK_IOWR(nr, type) \
	_IOWR(GMA500_MOCK_IOCTL_BASE, GMA500_MOCK_COMMAND_BASE + (nr), type)

#define DRM_GMA500_MOCK_GEM_CREATE	0x00
#define DRM_GMA500_MOCK_PIN		0x01
#define DRM_GMA500_MOCK_UNPIN		0x02
#define DRM_GMA500_MOCK_SHMEM_FD	0x03
#define DRM_GMA500_MOCK_SET_DMA32	0x04
#define DRM_GMA500_MOCK_PAGE_INFO	0x05

/* Largest GEM object, in bytes (the dumb-buffer limit of the DRM core too). */
#define GMA500_MOCK_MAX_OBJECT_SIZE	(1ULL << 32)
/* Most entries one PAGE_INFO call fills. */
#define GMA500_MOCK_PAGE_INFO_MAX	65536

/*
 * GEM_CREATE: a GEM object backed by a shmem file whose mapping allocates with
 * GFP_KERNEL | __GFP_DMA32, as gma500's psb_gem_create() makes them.
 * @size: in: bytes, 1 .. GMA500_MOCK_MAX_OBJECT_SIZE; out: rounded up to pages.
 * @flags: in: GMA500_MOCK_CREATE_*; PINNED pins the object at creation
 *	(one pin, dropped by UNPIN or when the object is freed).
 * @handle: out: the GEM handle (closed with DRM_IOCTL_GEM_CLOSE).
 * Errors: EINVAL (size 0 or too large, unknown flags), ENOMEM, ENOSPC, EIO
 *	(allocating or, with PINNED, reading the pages in).
 */
#define GMA500_MOCK_CREATE_PINNED	(1U << 0)

struct drm_gma500_mock_gem_create {
	__u64 size;
	__u32 flags;
	__u32 handle;
};

/*
 * PIN / UNPIN: take or drop one pin on a GEM object. The first pin reads every
 * page in with the mapping's gfp mask and holds them (drm_gem_get_pages(), as
 * psb_gem_pin() does to put them in the GTT); the last unpin releases them,
 * marked dirty and accessed. As in drm_gem_get_pages(), a page of a DMA32
 * object found at or above 4 GiB while pinning is a kernel BUG.
 * @handle: in: the GEM handle.
 * @pin_count: out: the object's pin count after the call.
 * Errors: ENOENT (no such handle), EINVAL (UNPIN of an object that is not
 *	pinned), EOVERFLOW (pin count at its maximum), ENOMEM, ENOSPC, EIO (PIN:
 *	reading the pages in).
 */
struct drm_gma500_mock_pin {
	__u32 handle;
	__u32 pin_count;
};

/*
 * SHMEM_FD: a new file descriptor of the GEM object's shmem file, open
 * read-write (a new open file of the same inode, with its own position), so
 * that read, write, mmap and madvise work on a real shmem mapping. It keeps the
 * shmem file, not the GEM object, alive.
 * @handle: in: the GEM handle.
 * @flags: in: GMA500_MOCK_FD_CLOEXEC or 0.
 * @fd: out: the new descriptor.
 * Errors: ENOENT (no such handle), EINVAL (unknown flags, @pad not zero),
 *	EMFILE (no free descriptor), ENOMEM.
 */
#define GMA500_MOCK_FD_CLOEXEC		(1U << 0)

struct drm_gma500_mock_shmem_fd {
	__u32 handle;
	__u32 flags;
	__s32 fd;
	__u32 pad;
};

/*
 * SET_DMA32: set the gfp mask of any shmem file's mapping (memfd, tmpfs file,
 * a GEM object's shmem file) to GFP_KERNEL | __GFP_DMA32, as a driver importing
 * that file for a 32-bit device would.
 * @fd: in: a descriptor of a shmem file.
 * @flags: in: must be 0.
 * Errors: EBADF (@fd is not open), EINVAL (not a shmem file, @flags not zero).
 */
struct drm_gma500_mock_set_dma32 {
	__s32 fd;
	__u32 flags;
};

/* drm_gma500_mock_page.state */
#define GMA500_MOCK_PAGE_ABSENT		0	/* a hole: nothing at this index */
#define GMA500_MOCK_PAGE_RESIDENT	1	/* a page in the page cache */
#define GMA500_MOCK_PAGE_SWAPPED	2	/* a swap entry (any swap-cache copy is not visible) */

/* drm_gma500_mock_page.zone: the zone of a resident page */
#define GMA500_MOCK_ZONE_NONE		0	/* not resident */
#define GMA500_MOCK_ZONE_DMA		1
#define GMA500_MOCK_ZONE_DMA32		2
#define GMA500_MOCK_ZONE_NORMAL		3
#define GMA500_MOCK_ZONE_MOVABLE	4
#define GMA500_MOCK_ZONE_OTHER		5	/* e.g. ZONE_DEVICE */

/* drm_gma500_mock_page.flags (resident pages only) */
#define GMA500_MOCK_PAGE_PINNED		(1U << 0) /* held by a PIN of this driver */
#define GMA500_MOCK_PAGE_GEM_MAPPED	(1U << 1) /* held by a GEM mmap of this driver */
#define GMA500_MOCK_PAGE_DMA_PINNED	(1U << 2) /* folio_maybe_dma_pinned() */
#define GMA500_MOCK_PAGE_DIRTY		(1U << 3)
#define GMA500_MOCK_PAGE_WRITEBACK	(1U << 4)
#define GMA500_MOCK_PAGE_SWAPCACHE	(1U << 5)
#define GMA500_MOCK_PAGE_LRU		(1U << 6)
#define GMA500_MOCK_PAGE_UNEVICTABLE	(1U << 7)
#define GMA500_MOCK_PAGE_MAPPED		(1U << 8) /* in a user page table (rmap) */
#define GMA500_MOCK_PAGE_HEAD		(1U << 9) /* the first page of its folio */

/*
 * One page index of a shmem file, as PAGE_INFO saw it.
 * @pfn: RESIDENT: the page frame number; else 0.
 * @swap_offset: SWAPPED: the slot in the swap device; else 0.
 * @state: GMA500_MOCK_PAGE_ABSENT, _RESIDENT or _SWAPPED.
 * @zone: GMA500_MOCK_ZONE_*.
 * @flags: GMA500_MOCK_PAGE_* flags.
 * @swap_type: SWAPPED: the swap device's index (swapon order); else 0.
 * @folio_order: RESIDENT: log2 of the pages in the page's folio; else 0.
 * @pad: zero.
 */
struct drm_gma500_mock_page {
	__u64 pfn;
	__u64 swap_offset;
	__u32 state;
	__u32 zone;
	__u32 flags;
	__u32 swap_type;
	__u32 folio_order;
	__u32 pad;
};

/* drm_gma500_mock_page_info.mapping_flags */
#define GMA500_MOCK_MAPPING_DMA32	(1U << 0) /* gfp mask has __GFP_DMA32 */
#define GMA500_MOCK_MAPPING_DMA		(1U << 1) /* gfp mask has __GFP_DMA */
#define GMA500_MOCK_MAPPING_UNEVICTABLE	(1U << 2)
#define GMA500_MOCK_MAPPING_GEM		(1U << 3) /* backs a GEM object of this driver */

/*
 * PAGE_INFO: where each page of a range of a shmem file is. The walk is a
 * lockless snapshot (the xarray under RCU): it takes no page reference and no
 * sleeping lock, so a page may change state right after it was read.
 * @fd: in: a descriptor of a shmem file.
 * @count: in: entries to fill, 0 .. GMA500_MOCK_PAGE_INFO_MAX.
 * @first_index: in: the page index of the first entry.
 * @pages: in: user pointer to @count struct drm_gma500_mock_page.
 * @size: out: the file's size in bytes.
 * @mapping_flags: out: GMA500_MOCK_MAPPING_* flags.
 * @pad: in: must be 0.
 * Errors: EBADF (@fd is not open), EINVAL (not a shmem file, @count too
 *	large, @first_index + @count past the largest file, @pad not zero),
 *	EFAULT (@pages not writable), ENOMEM.
 */
struct drm_gma500_mock_page_info {
	__s32 fd;
	__u32 count;
	__u64 first_index;
	__u64 pages;
	__u64 size;
	__u32 mapping_flags;
	__u32 pad;
};

#define DRM_IOCTL_GMA500_MOCK_GEM_CREATE \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_GEM_CREATE, struct drm_gma500_mock_gem_create)
#define DRM_IOCTL_GMA500_MOCK_PIN \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_PIN, struct drm_gma500_mock_pin)
#define DRM_IOCTL_GMA500_MOCK_UNPIN \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_UNPIN, struct drm_gma500_mock_pin)
#define DRM_IOCTL_GMA500_MOCK_SHMEM_FD \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_SHMEM_FD, struct drm_gma500_mock_shmem_fd)
#define DRM_IOCTL_GMA500_MOCK_SET_DMA32 \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_SET_DMA32, struct drm_gma500_mock_set_dma32)
#define DRM_IOCTL_GMA500_MOCK_PAGE_INFO \
	GMA500_MOCK_IOWR(DRM_GMA500_MOCK_PAGE_INFO, struct drm_gma500_mock_page_info)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_GMA500_MOCK_DRM_H_ */
