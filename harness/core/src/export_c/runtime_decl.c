/* ---- the helpers main() uses (defined at the end of the file) ---- */

/* Every reproducer carries the same helpers; those a program does not use are no error. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* 0 if a call that returns -1 on failure succeeded, else its errno. */
#define SYS(call) ((call) < 0 ? errno : 0)

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#define MPOL_BIND_ 2
#define MPOL_MF_STRICT_ (1 << 0)
#define MPOL_MF_MOVE_ (1 << 1)
#define MPOL_MF_MOVE_ALL_ (1 << 2)

/* The operations that move pages outside swap (defined at the end of the file). */
static int khugepaged_pass(void);
static int set_thp(const char *mode, int anon_madvise);
struct map;
struct obj;
static int do_mbind(struct map *m, uint64_t off, uint64_t len, int node, int flags);
static int do_move_pages(struct map *m, uint64_t off, uint64_t len, int node);
static int do_migrate_pages(int from, int to);
static int offline_block(struct obj *o, uint64_t index);
static int online_all(void);
static int hugetlb_pool(unsigned int size_kb, unsigned int count);

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
	/* The zone rule's memory of every page (see zone_step()). */
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
 * (pattern_fill() below), or zeros when seed is -1.
 */
struct seg {
	uint64_t lo, hi;
	int64_t seed;
};
#define PATTERN(lo, hi, seed) { lo, hi, seed }
#define ZEROS(lo, hi) { lo, hi, -1 }

static void setup(void);
static int finish(void);

/* Operation bookkeeping: step() starts operation `index`, end_step() observes every watched
 * object (and `also`, for zonecheck) through PAGE_INFO and applies the zone rule. `where` is
 * the word the zone rule names as the operation that brought a page in. */
static void step(int index, const char *keyword, const char *where, const char *text);
static void end_step(struct obj *also);

/* Results the shmemfuzz model allows: ok, ok or one errno, exactly one errno. */
static void expect_result(int err, int ok_allowed, int errnum, const char *want);
#define expect_ok(err) expect_result(err, 1, 0, "ok")
#define expect_ok_or(err, e) expect_result(err, 1, e, "ok or " #e)
#define expect_errno(err, e) expect_result(err, 0, e, #e)
/* ok, or any errno of the 0-terminated list `allowed` */
#define expect_ok_or_any(err, allowed, want) \
	expect_result(err, 1, in_list(err, allowed) ? err : 0, want)
static int in_list(int err, const int *allowed);
/* A touch the model skips (a page at or past end-of-file would raise SIGBUS). */
static void skipped(void);
/* Results that depend on what happened before: swap devices on, GEM pins held. */
static void expect_swapon(int dev, int err);
static void expect_swapoff(int dev, int err);
static void expect_gem_pinned(struct obj *o, int err);
static void expect_pin(struct obj *o, int err);
static void expect_unpin(struct obj *o, int err);

/* Data: pwrite the pattern; pread and compare; access a mapping through the CPU. */
static int write_pattern(int fd, uint64_t off, uint64_t len, uint32_t seed);
static int check_file(struct obj *o, uint64_t off, uint64_t len, const struct seg *want, size_t n);
static int touch_read(struct map *m, uint64_t off, uint64_t len, const struct seg *want, size_t n);
static int touch_write(struct map *m, uint64_t off, uint64_t len, uint32_t seed);

/* Mappings: the result of mmap(), madvise and munmap of a mapping that may have failed. */
static int mapped(struct map *m);
static int advise(struct map *m, uint64_t off, uint64_t len, int advice);
static int unmap(struct map *m);

/* The mock GMA500 driver (gma500_mock_drm.h). */
#define GEM_PINNED 1	/* GMA500_MOCK_CREATE_PINNED: pinned at creation */
static int gem_create(struct obj *o, uint64_t size, int pinned);
static int gem_mmap(struct map *m);
static int gem_pin(struct obj *o);
static int gem_unpin(struct obj *o);
static int set_dma32(struct obj *o);
static int close_obj(struct obj *o);

static int write_file(const char *path, const char *value);
