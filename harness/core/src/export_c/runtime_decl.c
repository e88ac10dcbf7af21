/*
 * Types and constants of the exported reproducers, in pieces: a reproducer carries the
 * pieces its main() names and what they need (`needs:`), nothing else. A piece runs from
 * its marker line to the next one; `provides:` lists the names besides its own that make
 * a program need it. See pieces.rs.
 */
/* piece: types provides: ARRAY_SIZE SYS obj map seg */
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
	unsigned char *anon_base;	/* `memfd ... anon`: the first mapping, while open */
	uint64_t anon_len;
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

/* piece: MADV_COLD */
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

/* piece: MADV_PAGEOUT */
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* piece: MADV_HUGEPAGE */
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

/* piece: MADV_NOHUGEPAGE */
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

/* piece: MADV_COLLAPSE */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* piece: MADV_SOFT_OFFLINE */
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif

/* piece: mpol provides: MPOL_BIND_ MPOL_MF_STRICT_ MPOL_MF_MOVE_ MPOL_MF_MOVE_ALL_ */
#define MPOL_BIND_ 2
#define MPOL_MF_STRICT_ (1 << 0)
#define MPOL_MF_MOVE_ (1 << 1)
#define MPOL_MF_MOVE_ALL_ (1 << 2)
