/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by the selftest's helpers (selftest.c) and its cases (cases.c). */
#ifndef SELFTEST_H
#define SELFTEST_H

#include <stddef.h>
#include <sys/ioctl.h>

#include "gma500_mock_drm.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE 4096UL
#define MIB(x) ((size_t)(x) << 20)

/* The few DRM core ioctls needed, as <drm/drm.h> and <drm/drm_mode.h> define them. */
struct drm_version_arg {
	int major, minor, patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};
struct dumb_create { __u32 height, width, bpp, flags, handle, pitch; __u64 size; };
struct dumb_map { __u32 handle, pad; __u64 offset; };
struct gem_close { __u32 handle, pad; };
#define IOCTL_VERSION		_IOWR('d', 0x00, struct drm_version_arg)
#define IOCTL_GEM_CLOSE		_IOW('d', 0x09, struct gem_close)
#define IOCTL_CREATE_DUMB	_IOWR('d', 0xB2, struct dumb_create)
#define IOCTL_MAP_DUMB		_IOWR('d', 0xB3, struct dumb_map)

extern int failures;
extern int card;
extern int have_swap;

#define CHECK(cond, ...) check(cond, __LINE__, #cond, __VA_ARGS__)
void check(int ok, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void expect_err(unsigned long req, void *arg, int err, const char *what);

struct census {
	int absent, resident, swapped, dma32, normal, other;
	int flags[9];	/* pages with GMA500_MOCK_PAGE_* bit i set */
};
__u32 page_info(int fd, __u32 n, struct drm_gma500_mock_page *p);
struct census census(const char *what, int fd, __u32 n,
		     struct drm_gma500_mock_page *p);
__u32 gem_create(__u64 size, __u32 flags);
int shmem_fd(__u32 handle);
__u32 pin(unsigned long req, __u32 handle);
void gem_close(__u32 handle);
void fill(unsigned char *p, size_t len, unsigned int seed);
size_t verify(const unsigned char *p, size_t len, unsigned int seed);
void *map_shared(int fd, size_t len, long off);

void test_version(void);
void test_bad_arguments(void);
void test_dumb_and_gem_mmap(void);
void test_pin_and_pageout(void);
void test_pinned_at_creation(void);
void test_memfd_and_tmpfs(void);

#endif
