/*
 * shmemfuzz reproducer of planted-no-replace
 *
 * Reproduces: zone:memfd:touch:Normal
 * Seen on: src-6.1-89abd521b063 (6.1.192-shmemfuzz), booted with shmem.planted_no_replace=1
 *
 * The shmemfuzz program (11 operations), one step of main() each:
 *
 *   # Route to shmem_replace_folio on 6.1 (DESIGN.md, measured on 6.1.192): a DMA32-masked memfd is
 *   # paged out, its swap-cache copies are reclaimed, and MADV_WILLNEED reads the entries back with
 *   # GFP_HIGHUSER_MOVABLE (6.1 force_shm_swapin_readahead), i.e. into Normal. The next access finds
 *   # those pages in the swap cache and must copy each one into DMA32 (a replacement: new PFNs).
 *   # With shmem_should_replace_folio() returning false the pages stay in Normal: a zone finding.
 *   # From 6.5 on WILLNEED reads with the mapping's own mask, so this route needs no replacement.
 *   memfd m0 size=4M
 *   dma32 m0
 *   write m0 off=0 len=4M seed=1
 *   mmap v0 m0 off=0 len=4M shared
 *   # MADV_PAGEOUT only sees pages mapped in the caller: fault every page in first
 *   touch v0 off=0 len=4M read
 *   madvise v0 off=0 len=4M pageout
 *   # free the swap-cache copies so that WILLNEED must read from the device
 *   reclaim 256M
 *   madvise v0 off=0 len=4M willneed
 *   touch v0 off=0 len=4M read
 *   zonecheck m0
 *   check m0 off=0 len=4M
 *
 * Each step makes the guest agent's system calls and checks what shmemfuzz's
 * model expects: the result, every byte read back (writes store a pattern
 * regenerated from seed and file offset: pattern_fill()) and, after every step,
 * the zone rule: a page of a DMA32-constrained object (PAGE_INFO of the mock
 * driver) may not be resident at or above 4 GiB once it was absent, swapped or moved.
 *
 * Build: gcc -static -O2 -Wall -o repro repro.c
 *   (the mock driver's uapi is inlined below)
 *   or in tools/testing/selftests/mm, where it includes ../kselftest.h.
 * Run as root in a guest with drm and the mock GMA500 driver
 * (kernels/gma500_mock) loaded, swap devices /dev/vda, /dev/vdb (mkswap'd;
 * /dev/vda is turned on, the others off), cgroup2 on /sys/fs/cgroup, and 1 GiB
 * below and 1 GiB above 4 GiB (qemu -machine pc,max-ram-below-4g=1G -m 2G).
 * A kselftest: TAP 13, one test per operation and one that the kernel was not
 * tainted; exit KSFT_PASS, KSFT_FAIL, or KSFT_SKIP with the reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>

/* ---- how it reports: a kselftest (TAP 13) ---- */

#if !defined(SHMEMFUZZ_STANDALONE) && __has_include("../kselftest.h")
#include "../kselftest.h"	/* in tools/testing/selftests/mm */
#else
#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4
#endif
#define TAP 1
#define NOTE "# "		/* before every line that is not TAP's own */
#define EXIT_OK KSFT_PASS
#define EXIT_FAIL KSFT_FAIL
#define EXIT_SETUP KSFT_SKIP	/* with "1..0 # SKIP <reason>" */
#define N_TESTS 12		/* one per operation, and the taint check */

/* ---- the guest it expects ---- */

/* swap0, swap1, ... of the program */
static const char *const swap_dev[] = { "/dev/vda", "/dev/vdb" };
#define N_SWAP 2
#define CGROUP "/sys/fs/cgroup/repro"		/* its memory cgroup */
#define TMPFS_DIR "/run/shmemfuzz-repro"	/* a tmpfs it mounts for its tmpfs files */
#define OP_TIMEOUT 120			/* seconds before an operation counts as hung */
#define EXPECTED_SIGNATURE "zone:memfd:touch:Normal"

/* ---- gma500_mock_drm.h, the mock driver's uapi (inlined) ---- */

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

/* ---- types and constants ---- */

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
/* 0 if a call that returns -1 on failure succeeded, else its errno. */
#define SYS(call) ((call) < 0 ? errno : 0)

struct page_track;

/* An object of the program: a memfd, a tmpfs file, or a GEM object (through its shmem file). */
struct obj {
	const char *name;
	const char *kind;	/* "memfd", "tmpfs" or "gem" */
	int fd;			/* -1 when not open */
	int has_handle;
	uint32_t handle;	/* the GEM handle */
	unsigned int pins;	/* GEM pins the model counts */
	int watched;		/* observed after every step: a GEM object, or after dma32 */
	/* What the zone rule remembers of every page (GEM objects, dma32). */
	int constrained;	/* allocates with GFP_KERNEL | __GFP_DMA32 */
	int fresh_constraint;	/* dma32 just set the mask: the next observation exempts residents */
	size_t npages;
	struct page_track *pages;
};

/* A mapping of an object (file offset file_off, len bytes). */
struct map {
	const char *name;
	struct obj *obj;
	uint64_t file_off, len;
	unsigned char *addr;	/* NULL when not mapped */
};

/*
 * Expected contents: the file bytes lo .. hi hold the pattern of `seed`
 * (pattern_fill()), or zeros when seed is -1.
 */
struct seg {
	uint64_t lo, hi;
	int64_t seed;
};
#define PATTERN(lo, hi, seed) { lo, hi, seed }
#define ZEROS(lo, hi) { lo, hi, -1 }

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* ---- the program's objects and mappings ---- */

static struct obj obj_m0 = { .name = "m0", .kind = "memfd", .fd = -1 };
static struct map map_v0 = { .name = "v0", .obj = &obj_m0, .file_off = 0x0, .len = 0x400000 };
/* every object, by name */
static struct obj *const objects[] = { &obj_m0, NULL };

/* ---- the helpers main() uses ---- */

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	ssize_t r;

	if (fd < 0)
		return errno;
	r = write(fd, value, strlen(value));
	if (r < 0)
		err = errno;
	else if ((size_t)r != strlen(value))
		err = EIO;
	close(fd);
	return err;
}

static int violations;
static int failed_tests;	/* TAP: operations with a violation */
static int swap_on[N_SWAP];	/* which swap devices the model holds on */
static unsigned long long taint_before;
static int tmpfs_mounted;
static int planned;		/* TAP: the plan is out */

/* The operation running now. */
static struct {
	int index;
	const char *keyword, *where, *text;
	char result[48];
	int violations;		/* violations before it */
} cur = { -1, "setup", "setup", "setup", "", 0 };

/* Messages for the signal handlers, written when each operation starts. */
static char signal_msg[3][512];

static int expected_seen;	/* a violation had EXPECTED_SIGNATURE */

static void violation(const char *sig, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(const char *sig, const char *fmt, ...)
{
	va_list ap;

	printf(NOTE "VIOLATION: %s: ", sig);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	violations++;
	expected_seen |= !strcmp(sig, EXPECTED_SIGNATURE);
}

/* The guest is not set up for the reproducer: a skip in a kselftest. */
static void die(const char *what)
{
	if (TAP && !planned)
		printf("1..0 # SKIP %s: %s\n", what, strerror(errno));
	else if (TAP)
		printf("Bail out! %s: %s\n", what, strerror(errno));
	else
		printf("SETUP FAILED: %s: %s\n", what, strerror(errno));
	exit(TAP && planned ? EXIT_FAIL : EXIT_SETUP);
}

static void on_signal(int sig)
{
	const char *m = signal_msg[sig == SIGBUS ? 0 : sig == SIGSEGV ? 1 : 2];
	ssize_t r = write(STDOUT_FILENO, m, strlen(m));

	(void)r;
	_exit(EXIT_FAIL);
}

/* ---- setup and summary ---- */

static unsigned long long read_taint(void)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	unsigned long long t = 0;

	if (f) {
		if (fscanf(f, "%llu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

static void setup(void)
{
	static const char *const settings[][2] = {
		/* what the shmemfuzz agent sets at boot: readahead and reclaim behave the same */
		{ "/proc/sys/vm/page-cluster", "3" },
		{ "/proc/sys/vm/swappiness", "60" },
		{ "/proc/sys/kernel/sysrq", "1" },
		{ "/sys/kernel/mm/transparent_hugepage/enabled", "never" },
		{ "/sys/kernel/mm/transparent_hugepage/shmem_enabled", "deny" },
		{ "/sys/module/zswap/parameters/enabled", "N" },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	cpu_set_t cpu0;
	size_t i;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (TAP)
		printf("TAP version 13\n");
	if (geteuid() != 0) {
		errno = EPERM;
		die("run this as root");
	}
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	for (i = 0; i < ARRAY_SIZE(settings); i++)
		write_file(settings[i][0], settings[i][1]);

	/* a memory cgroup of its own (memory.reclaim), and CPU 0, as every shmemfuzz program */
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	if (mkdir(CGROUP, 0755) && errno != EEXIST)
		die("mkdir " CGROUP " (is cgroup2 mounted on /sys/fs/cgroup?)");
	errno = write_file(CGROUP "/cgroup.procs", "0");
	if (errno)
		die("joining " CGROUP);
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	if (sched_setaffinity(0, sizeof(cpu0), &cpu0))
		die("pinning to CPU 0");

	/* swap: the first device on at the default priority, the others off */
	if (access(swap_dev[0], F_OK))
		die("no swap device (the program's swap0)");
	for (i = 1; i < N_SWAP; i++)
		if (swapoff(swap_dev[i]) && errno != EINVAL)	/* EINVAL: it was off */
			die("swapoff");
	if (swapon(swap_dev[0], 0) && errno != EBUSY)		/* EBUSY: it was on */
		die("swapon of the first swap device (formatted with mkswap?)");
	swap_on[0] = 1;

	printf(NOTE "setup: cgroup %s, CPU 0, swap on %s\n", CGROUP, swap_dev[0]);
}

/* After the setup: the taint to compare with at the end, the TAP plan. */
static void begin(void)
{
	taint_before = read_taint();
	if (TAP)
		printf("1..%d\n", N_TESTS);
	planned = 1;
}

static int finish(void)
{
	static const char letters[] = "PFSRMBUDAWCIOELKXT";
	unsigned long long gained = read_taint() & ~taint_before;
	char taint[32] = "", sig[48];
	int i, n = 0;

	if (tmpfs_mounted)
		umount2(TMPFS_DIR, MNT_DETACH);
	for (i = 0; letters[i]; i++)
		if (gained & (1ULL << i))
			taint[n++] = letters[i];
	taint[n] = 0;
	if (gained) {
		snprintf(sig, sizeof(sig), "taint:%s", taint);
		cur.violations = violations;
		violation(sig, "the kernel gained taint %s during the program (see dmesg)", taint);
	}
	if (EXPECTED_SIGNATURE[0])
		printf(NOTE "expected signature %s: %s\n", EXPECTED_SIGNATURE,
		       expected_seen ? "reproduced" : "not seen");
	if (TAP) {
		printf("%sok %d - the kernel was not tainted\n", gained ? "not " : "", N_TESTS);
		failed_tests += !!gained;
		printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n",
		       N_TESTS - failed_tests, failed_tests);
	}
	if (violations) {
		printf(NOTE "FAILED: %d violations\n", violations);
		return EXIT_FAIL;
	}
	printf(NOTE "OK\n");
	return EXIT_OK;
}

/*
 * Starts operation `index`: what a signal or the watchdog (OP_TIMEOUT) reports, and the
 * operation's line. `where` is the word the zone rule names as the operation that brought a
 * page in.
 */
static void step(int index, const char *keyword, const char *where, const char *text)
{
	static const char *const names[2] = { "SIGBUS", "SIGSEGV" };
	char tail[200];
	int i;

	cur.index = index;
	cur.keyword = keyword;
	cur.where = where;
	cur.text = text;
	cur.violations = violations;
	snprintf(cur.result, sizeof(cur.result), "?");
	if (TAP)
		snprintf(tail, sizeof(tail), "not ok %d - op %d: %s\n", index + 1, index, text);
	else
		snprintf(tail, sizeof(tail), "FAILED\n");
	for (i = 0; i < 2; i++)
		snprintf(signal_msg[i], sizeof(signal_msg[i]),
			 NOTE "VIOLATION: signal:%s:%s: the program died of %s in op %d `%s`\n%s",
			 names[i], keyword, names[i], index, text, tail);
	snprintf(signal_msg[2], sizeof(signal_msg[2]),
		 NOTE "VIOLATION: hang:%s: op %d `%s` did not finish within %d s\n%s",
		 keyword, index, text, OP_TIMEOUT, tail);
	printf(NOTE "op %d: %s\n", index, text);
	alarm(OP_TIMEOUT);
}

/* The operation's result line; in a kselftest, its TAP line (not ok: it saw a violation). */
static void op_verdict(void)
{
	int bad = violations > cur.violations;

	alarm(0);
	printf(NOTE "    -> %s\n", cur.result);
	if (!TAP)
		return;
	failed_tests += bad;
	printf("%sok %d - op %d: %s\n", bad ? "not " : "", cur.index + 1, cur.index, cur.text);
}

/* Names as shmemfuzz's signatures spell them (protocol.rs: errno::name). */
static const char *errname(int e)
{
#define E(name) case name: return #name;
	switch (e) {
	E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(EAGAIN) E(ENOMEM) E(EACCES)
	E(EFAULT) E(EBUSY) E(ENODEV) E(EINVAL) E(ENOSPC) E(ENODATA) E(EOPNOTSUPP)
	E(ETIMEDOUT)
	default: return "E?";
	}
#undef E
}

static void expect_result(int err, int ok_allowed, int errnum, const char *want)
{
	char sig[96];

	if (err)
		snprintf(cur.result, sizeof(cur.result), "%s (%d)", errname(err), err);
	else
		snprintf(cur.result, sizeof(cur.result), "ok");
	if (err ? err == errnum : ok_allowed)
		return;
	snprintf(sig, sizeof(sig), "result:%s:%s", cur.keyword, err ? errname(err) : "ok");
	violation(sig, "op %d `%s` returned %s, the model expects %s", cur.index, cur.text,
		  err ? cur.result : "ok", want);
}

/* Results the shmemfuzz model allows: ok, ok or one errno, exactly one errno. */
#define expect_ok(err) expect_result(err, 1, 0, "ok")
#define expect_ok_or(err, e) expect_result(err, 1, e, "ok or " #e)
#define expect_errno(err, e) expect_result(err, 0, e, #e)

/*
 * The seeded byte pattern of shmemfuzz (harness/core/src/oracle/pattern.rs):
 * byte `off` of a write with seed `seed` is byte (off & 7), little-endian, of
 * mix((seed << 40) ^ (off >> 3)), where mix() is the SplitMix64 finaliser. So
 * any range of any write can be regenerated from (seed, file offset) alone.
 */
static uint64_t pattern_mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fills buf with the pattern of `seed` for file offsets off .. off + len. */
static void pattern_fill(uint32_t seed, uint64_t off, unsigned char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t pos = off + i;
		uint64_t word = pattern_mix(((uint64_t)seed << 40) ^ (pos >> 3));
		unsigned int k;

		for (k = pos & 7; k < 8 && i < len; k++, i++)
			buf[i] = (unsigned char)(word >> (8 * k));
	}
}

#define CHUNK (1U << 20)	/* reads and writes go in 1 MiB pieces, as the agent's */
static unsigned char got_buf[CHUNK];

static unsigned char want_buf[CHUNK];

/* Expected bytes of file offsets off .. off + len, from the segments. */
static void expected_bytes(const struct seg *want, size_t n, uint64_t off, unsigned char *buf,
			   size_t len)
{
	uint64_t end = off + len;
	size_t i;

	memset(buf, 0, len);
	for (i = 0; i < n; i++) {
		uint64_t lo = want[i].lo > off ? want[i].lo : off;
		uint64_t hi = want[i].hi < end ? want[i].hi : end;

		if (lo < hi && want[i].seed >= 0)
			pattern_fill((uint32_t)want[i].seed, lo, buf + (lo - off), hi - lo);
	}
}

/* The outcome of comparing bytes read back with the expected ones (protocol.rs: DataCheck). */
struct data_check {
	unsigned long long bad_bytes, bad_pages, last_page;
	int have_first;
	unsigned long long first_off;
	unsigned char first_want, first_got;
};

static void compare(struct data_check *d, uint64_t base, const unsigned char *want,
		    const unsigned char *got, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned long long page = (base + i) / 4096;

		if (want[i] == got[i])
			continue;
		d->bad_bytes++;
		if (!d->have_first) {
			d->have_first = 1;
			d->first_off = base + i;
			d->first_want = want[i];
			d->first_got = got[i];
		}
		if (d->bad_pages == 0 || d->last_page != page) {
			d->bad_pages++;
			d->last_page = page;
		}
	}
}

static void report_data(const struct data_check *d, const char *kind, const char *where,
			uint64_t expected, uint64_t read)
{
	char sig[96];

	if (!d->bad_bytes && read == expected)
		return;
	snprintf(sig, sizeof(sig), "data:%s:%s", kind, cur.keyword);
	if (d->have_first)
		violation(sig, "op %d `%s`: %llu bytes in %llu pages differ from what was written; "
			  "first difference at %s offset 0x%llx: expected 0x%02x, read 0x%02x; "
			  "read %llu of %llu bytes", cur.index, cur.text, d->bad_bytes, d->bad_pages,
			  where, d->first_off, d->first_want, d->first_got,
			  (unsigned long long)read, (unsigned long long)expected);
	else
		violation(sig, "op %d `%s`: short read: %llu of %llu bytes", cur.index, cur.text,
			  (unsigned long long)read, (unsigned long long)expected);
}

/* pwrite the pattern of `seed` to file offsets off .. off + len. */
static int write_pattern(int fd, uint64_t off, uint64_t len, uint32_t seed)
{
	uint64_t done = 0;

	while (done < len) {
		size_t n = len - done < CHUNK ? len - done : CHUNK, w = 0;

		pattern_fill(seed, off + done, got_buf, n);
		while (w < n) {
			ssize_t r = pwrite(fd, got_buf + w, n - w, off + done + w);

			if (r < 0)
				return errno;
			w += r;
		}
		done += n;
	}
	return 0;
}

/*
 * pread the range and compare it with the model. The model clips reads at end-of-file: the
 * segments end there, and one byte more must not be readable.
 */
static int check_file(struct obj *o, uint64_t off, uint64_t len, const struct seg *want, size_t n)
{
	uint64_t expected = n ? want[n - 1].hi - off : 0, got = 0;
	struct data_check d = { 0 };

	if (o->fd < 0)
		return EBADF;
	while (got < expected) {
		size_t chunk = expected - got < CHUNK ? expected - got : CHUNK;
		ssize_t r = pread(o->fd, got_buf, chunk, off + got);

		if (r < 0)
			return errno;
		if (r == 0)
			break;
		expected_bytes(want, n, off + got, want_buf, r);
		compare(&d, off + got, want_buf, got_buf, r);
		got += r;
	}
	if (expected < len) {
		ssize_t r = pread(o->fd, got_buf, 1, off + expected);

		if (r < 0)
			return errno;
		got += r;
	}
	report_data(&d, o->kind, "file", expected, got);
	return 0;
}

/* Read a range of a mapping through the CPU and compare it with the model. */
static int touch_read(struct map *m, uint64_t off, uint64_t len, const struct seg *want, size_t n)
{
	struct data_check d = { 0 };
	uint64_t done;

	if (!m->addr)
		return EBADF;
	for (done = 0; done < len; done += CHUNK) {
		size_t chunk = len - done < CHUNK ? len - done : CHUNK;

		memcpy(got_buf, m->addr + off + done, chunk);
		expected_bytes(want, n, m->file_off + off + done, want_buf, chunk);
		compare(&d, off + done, want_buf, got_buf, chunk);
	}
	report_data(&d, m->obj->kind, "mapping", len, len);
	return 0;
}

/* The result of mmap(): 0, or its errno (and the mapping is absent). */
static int mapped(struct map *m)
{
	if (m->addr != MAP_FAILED)
		return 0;
	m->addr = NULL;
	return errno;
}

static int advise(struct map *m, uint64_t off, uint64_t len, int advice)
{
	if (!m->addr)
		return EINVAL;
	return SYS(madvise(m->addr + off, len, advice));
}

/* ---- the mock GMA500 driver ---- */

static int card = -1;		/* the mock driver's DRM device */

/* The DRM core ioctls used, as <drm/drm.h> and <drm/drm_mode.h> define them. */
struct drm_version_arg {
	int major, minor, patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
struct dumb_map {
	__u32 handle, pad;
	__u64 offset;
};
struct gem_close {
	__u32 handle, pad;
};
#define IOCTL_VERSION	_IOWR('d', 0x00, struct drm_version_arg)
#define IOCTL_GEM_CLOSE	_IOW('d', 0x09, struct gem_close)
#define IOCTL_MAP_DUMB	_IOWR('d', 0xB3, struct dumb_map)

/* The DRM card whose driver is gma500_mock. */
static int open_card(void)
{
	char path[32], name[32];
	int i;

	for (i = 0; i < 16; i++) {
		struct drm_version_arg v = { .name_len = sizeof(name), .name = name };
		int fd;

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(name, 0, sizeof(name));
		if (!ioctl(fd, IOCTL_VERSION, &v) && !strncmp(name, "gma500_mock", 11))
			return fd;
		close(fd);
	}
	return -1;
}

static void setup_card(void)
{
	card = open_card();
	if (card < 0) {
		errno = ENODEV;
		die("no /dev/dri/card* of gma500_mock (load drm and gma500_mock.ko)");
	}
	printf(NOTE "setup: gma500_mock opened\n");
}

/* GFP_KERNEL | __GFP_DMA32 on a memfd's or tmpfs file's mapping, as a driver importing it would. */
static int set_dma32(struct obj *o)
{
	struct drm_gma500_mock_set_dma32 a = { .fd = o->fd };

	if (o->fd < 0)
		return EBADF;
	if (ioctl(card, DRM_IOCTL_GMA500_MOCK_SET_DMA32, &a))
		return errno;
	o->watched = 1;
	if (!o->constrained) {
		/* the pages resident now were allocated before the mask: exempt until they move */
		o->constrained = 1;
		o->fresh_constraint = 1;
	}
	return 0;
}

/* Pages present per zone, and whether any memory lies above 4 GiB (else nothing can break). */
static void print_zones(void)
{
	char line[256], zone[32] = "";
	unsigned long present, above = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	printf(NOTE "zones:");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %*d, zone %31s", zone) == 1)
			continue;
		if (sscanf(line, " present %lu", &present) == 1 && present) {
			printf(" %s %lu MiB", zone, present >> 8);
			if (strcmp(zone, "DMA") && strcmp(zone, "DMA32"))
				above += present;
		}
	}
	if (f)
		fclose(f);
	printf("\n");
	if (!above)
		printf(NOTE "note: no memory above 4 GiB: no page can break the DMA32 mask here "
		       "(boot with 1 GiB below 4 GiB and 1 GiB above)\n");
}

/* ---- the zone rule (harness/core/src/oracle/zones.rs) ---- */

#define PFN_4G 0x100000ULL	/* the first page frame at 4 GiB: DMA32 ends below it */

struct page_track {
	int exempt;		/* resident before dma32 set the mask, and not moved since */
	int has_pfn;
	uint64_t pfn;		/* where the page was last seen */
	const char *arrived;	/* the operation after which it was first seen there */
};

static const char *zone_name(unsigned int zone)
{
	switch (zone) {
	case GMA500_MOCK_ZONE_DMA: return "DMA";
	case GMA500_MOCK_ZONE_DMA32: return "DMA32";
	case GMA500_MOCK_ZONE_NORMAL: return "Normal";
	case GMA500_MOCK_ZONE_MOVABLE: return "Movable";
	default: return "above-4G";
	}
}

/* Every page of the object's shmem file, in PAGE_INFO calls of 4096 entries as the agent's. */
static struct drm_gma500_mock_page *page_info(struct obj *o, size_t *count)
{
	static struct drm_gma500_mock_page *pages;
	static size_t cap;
	uint64_t first = 0;

	for (;;) {
		struct drm_gma500_mock_page_info a = {
			.fd = o->fd, .count = 4096, .first_index = first,
		};
		uint64_t total, n;

		if (cap < first + 4096) {
			cap = first + 4096;
			pages = realloc(pages, cap * sizeof(*pages));
			if (!pages)
				die("realloc");
		}
		a.pages = (uintptr_t)(pages + first);
		if (ioctl(card, DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &a)) {
			printf(NOTE "    %s: PAGE_INFO failed: %s\n", o->name, strerror(errno));
			return NULL;
		}
		total = (a.size + 4095) / 4096;
		n = total > first ? total - first : 0;
		if (n > 4096)
			n = 4096;
		first += n;
		if (first >= total || n == 0)
			break;
	}
	*count = first;
	return pages;
}

/*
 * A page of a DMA32-constrained object is held to the mask once it has been seen absent or
 * swapped, or at a changed PFN, after the mask was set; pages resident when dma32 set it are
 * exempt until then (a GEM object is constrained from creation); a pinned page always is. A
 * held page resident at or above 4 GiB breaks the rule.
 */
static void zone_step(struct obj *o, const struct drm_gma500_mock_page *pg, size_t n)
{
	unsigned long long resident = 0, swapped = 0, absent = 0, dma32 = 0, normal = 0;
	unsigned long long other = 0, pinned = 0;
	struct {
		char sig[96];
		unsigned long long pages;
		size_t first;
	} bad[8];
	int nbad = 0, b;
	size_t i;

	if (o->npages < n) {
		o->pages = realloc(o->pages, n * sizeof(*o->pages));
		if (!o->pages)
			die("realloc");
		memset(o->pages + o->npages, 0, (n - o->npages) * sizeof(*o->pages));
		o->npages = n;
	}
	for (i = 0; i < n; i++) {
		struct page_track *t = &o->pages[i];
		int pin = !!(pg[i].flags & (GMA500_MOCK_PAGE_PINNED | GMA500_MOCK_PAGE_DMA_PINNED));
		char sig[96];

		if (pg[i].state != GMA500_MOCK_PAGE_RESIDENT) {
			swapped += pg[i].state == GMA500_MOCK_PAGE_SWAPPED;
			absent += pg[i].state != GMA500_MOCK_PAGE_SWAPPED;
			t->exempt = 0;
			t->has_pfn = 0;
			continue;
		}
		resident++;
		dma32 += pg[i].zone == GMA500_MOCK_ZONE_DMA32;
		normal += pg[i].zone == GMA500_MOCK_ZONE_NORMAL;
		other += pg[i].zone != GMA500_MOCK_ZONE_DMA32 && pg[i].zone != GMA500_MOCK_ZONE_NORMAL;
		pinned += pin;
		if (o->fresh_constraint) {
			t->exempt = 1;
			t->has_pfn = 1;
			t->pfn = pg[i].pfn;
			t->arrived = cur.where;
		} else if (!t->has_pfn || t->pfn != pg[i].pfn) {
			if (t->has_pfn)
				t->exempt = 0;
			t->has_pfn = 1;
			t->pfn = pg[i].pfn;
			t->arrived = cur.where;
		}
		if (!o->constrained || (t->exempt && !pin) || pg[i].pfn < PFN_4G)
			continue;
		snprintf(sig, sizeof(sig), "zone:%s:%s:%s", o->kind, t->arrived,
			 zone_name(pg[i].zone));
		for (b = 0; b < nbad && strcmp(bad[b].sig, sig); b++)
			;
		if (b == nbad && nbad < (int)ARRAY_SIZE(bad)) {
			snprintf(bad[nbad].sig, sizeof(bad[nbad].sig), "%s", sig);
			bad[nbad].pages = 0;
			bad[nbad++].first = i;
		}
		if (b < nbad)
			bad[b].pages++;
	}
	o->fresh_constraint = 0;
	printf(NOTE "    %s: %zu pages: %llu resident (DMA32 %llu, Normal %llu, other %llu; pinned %llu), "
	       "%llu swapped, %llu absent\n", o->name, n, resident, dma32, normal, other, pinned,
	       swapped, absent);
	for (b = 0; b < nbad; b++) {
		const struct drm_gma500_mock_page *p = &pg[bad[b].first];

		violation(bad[b].sig,
			  "page %zu of DMA32-constrained %s `%s` is in zone %s (PFN 0x%llx) after op %d; "
			  "it arrived after `%s` (%llu pages with this signature now)",
			  bad[b].first, o->kind, o->name, zone_name(p->zone),
			  (unsigned long long)p->pfn, cur.index, o->pages[bad[b].first].arrived,
			  bad[b].pages);
	}
}

/*
 * Ends an operation: observes every watched object (and `also`, for zonecheck) through
 * PAGE_INFO and applies the zone rule.
 */
static void end_step(struct obj *also)
{
	size_t i, n;

	alarm(0);
	/* objects[] is sorted by name, as the agent's set of watched objects */
	for (i = 0; objects[i]; i++) {
		struct obj *o = objects[i];
		const struct drm_gma500_mock_page *pg;

		if ((!o->watched && o != also) || o->fd < 0)
			continue;
		pg = page_info(o, &n);
		if (pg)
			zone_step(o, pg, n);
	}
	op_verdict();
}

/* ---- the program: one step per operation ---- */

int main(void)
{
	int err;

	setup();
	setup_card();
	print_zones();
	begin();

	/*
	 * Route to shmem_replace_folio on 6.1 (DESIGN.md, measured on 6.1.192): a DMA32-masked memfd is
	 * paged out, its swap-cache copies are reclaimed, and MADV_WILLNEED reads the entries back with
	 * GFP_HIGHUSER_MOVABLE (6.1 force_shm_swapin_readahead), i.e. into Normal. The next access finds
	 * those pages in the swap cache and must copy each one into DMA32 (a replacement: new PFNs).
	 * With shmem_should_replace_folio() returning false the pages stay in Normal: a zone finding.
	 * From 6.5 on WILLNEED reads with the mapping's own mask, so this route needs no replacement.
	 */
	/* op 0: memfd m0 size=4M */
	step(0, "memfd", "memfd", "memfd m0 size=4M");
	obj_m0.fd = memfd_create("shmemfuzz-m0", MFD_CLOEXEC);
	err = obj_m0.fd < 0 ? errno : SYS(ftruncate(obj_m0.fd, 0x400000));
	expect_ok(err);
	end_step(NULL);

	/* op 1: dma32 m0 */
	step(1, "dma32", "dma32", "dma32 m0");
	err = set_dma32(&obj_m0);
	expect_ok(err);
	end_step(NULL);

	/* op 2: write m0 off=0 len=4M seed=1 */
	step(2, "write", "write", "write m0 off=0 len=4M seed=1");
	err = write_pattern(obj_m0.fd, 0x0, 0x400000, 1);
	expect_ok(err);
	end_step(NULL);

	/* op 3: mmap v0 m0 off=0 len=4M shared */
	step(3, "mmap", "mmap", "mmap v0 m0 off=0 len=4M shared");
	map_v0.addr = mmap(NULL, 0x400000, PROT_READ | PROT_WRITE, MAP_SHARED, obj_m0.fd, 0x0);
	err = mapped(&map_v0);
	expect_ok(err);
	end_step(NULL);

	/* MADV_PAGEOUT only sees pages mapped in the caller: fault every page in first */
	/* op 4: touch v0 off=0 len=4M read */
	step(4, "touch", "touch", "touch v0 off=0 len=4M read");
	{
		static const struct seg want[] = {
			PATTERN(0x0, 0x400000, 1),
		};

		err = touch_read(&map_v0, 0x0, 0x400000, want, ARRAY_SIZE(want));
	}
	expect_ok(err);
	end_step(NULL);

	/* op 5: madvise v0 off=0 len=4M pageout */
	step(5, "madvise", "pageout", "madvise v0 off=0 len=4M pageout");
	err = advise(&map_v0, 0x0, 0x400000, MADV_PAGEOUT);
	expect_ok(err);
	end_step(NULL);

	/* free the swap-cache copies so that WILLNEED must read from the device */
	/* op 6: reclaim 256M */
	step(6, "reclaim", "reclaim", "reclaim 256M");
	err = write_file(CGROUP "/memory.reclaim", "268435456");
	expect_ok_or(err, EAGAIN);
	end_step(NULL);

	/* op 7: madvise v0 off=0 len=4M willneed */
	step(7, "madvise", "willneed", "madvise v0 off=0 len=4M willneed");
	err = advise(&map_v0, 0x0, 0x400000, MADV_WILLNEED);
	expect_ok(err);
	end_step(NULL);

	/* op 8: touch v0 off=0 len=4M read */
	step(8, "touch", "touch", "touch v0 off=0 len=4M read");
	{
		static const struct seg want[] = {
			PATTERN(0x0, 0x400000, 1),
		};

		err = touch_read(&map_v0, 0x0, 0x400000, want, ARRAY_SIZE(want));
	}
	expect_ok(err);
	end_step(NULL);

	/* op 9: zonecheck m0 */
	step(9, "zonecheck", "zonecheck", "zonecheck m0");
	err = obj_m0.fd < 0 ? EBADF : 0;	/* end_step() reads all its pages */
	expect_ok(err);
	end_step(&obj_m0);

	/* op 10: check m0 off=0 len=4M */
	step(10, "check", "check", "check m0 off=0 len=4M");
	{
		static const struct seg want[] = {
			PATTERN(0x0, 0x400000, 1),
		};

		err = check_file(&obj_m0, 0x0, 0x400000, want, ARRAY_SIZE(want));
	}
	expect_ok(err);
	end_step(NULL);

	return finish();
}
