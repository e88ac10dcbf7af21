// SPDX-License-Identifier: GPL-2.0-only
/*
 * gma500_mock selftest: /init of a throwaway guest (see run.sh). It mounts the
 * pseudo filesystems, loads /modules/ in name order and then the mock driver,
 * enables swap on /dev/vda, exercises every ioctl (bad arguments included),
 * prints what PAGE_INFO saw, unloads the driver and powers off.
 * The last line is "SELFTEST PASS" or "SELFTEST FAIL (<n> failures)".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "selftest.h"

int failures;
int card = -1;
int have_swap;

void check(int ok, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	failures++;
	printf("FAIL line %d (%s): ", line, expr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" [errno %s]\n", strerror(errno));
}

/* An ioctl that must fail with @err. */
void expect_err(unsigned long req, void *arg, int err, const char *what)
{
	int ret = ioctl(card, req, arg);

	if (ret == 0 || errno != err) {
		failures++;
		printf("FAIL %s: got %d/%s, want %s\n", what, ret,
		       ret ? strerror(errno) : "ok", strerror(err));
	} else {
		printf("ok   %s -> %s\n", what, strerror(err));
	}
}

static void die(const char *what)
{
	printf("FATAL %s: %s\nSELFTEST FAIL (setup)\n", what, strerror(errno));
	fflush(stdout);
	reboot(RB_POWER_OFF);
	exit(1);
}

static void load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int flags = strstr(path, ".xz") ? MODULE_INIT_COMPRESSED_FILE : 0;

	if (fd < 0 || syscall(SYS_finit_module, fd, "", flags))
		if (errno != EEXIST)
			die(path);
	close(fd);
}

static void setup(void)
{
	struct dirent **names;
	char path[300];
	int i, n;

	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/tmp", 0755);
	if (mount("proc", "/proc", "proc", 0, NULL) ||
	    mount("sysfs", "/sys", "sysfs", 0, NULL) ||
	    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) ||
	    mount("tmpfs", "/tmp", "tmpfs", 0, NULL))
		die("mount");
	n = scandir("/modules", &names, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "/modules/%s", names[i]->d_name);
			load_module(path);
		}
	}
	load_module("/gma500_mock.ko");
	if (access("/dev/vda", F_OK) == 0) {
		have_swap = swapon("/dev/vda", 0) == 0;
		CHECK(have_swap, "swapon /dev/vda");
		printf("swap on /dev/vda\n");
	} else {
		printf("no /dev/vda: no swap, pageout checks are skipped\n");
	}
	card = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
	if (card < 0)
		die("/dev/dri/card0");
}

/* A /proc/meminfo value in kB, after folding the per-CPU vmstat deltas. */
static long meminfo(const char *key)
{
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	char line[256];
	long val = -1;
	FILE *f;

	if (fd >= 0) {
		CHECK(write(fd, "1", 1) == 1, "stat_refresh");
		close(fd);
	}
	f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			val = atol(line + strlen(key) + 1);
	if (f)
		fclose(f);
	return val;
}

static void print_zones(void)
{
	char line[256], zone[32] = "";
	FILE *f = fopen("/proc/zoneinfo", "r");
	long v;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %*d, zone %31s", zone) == 1)
			continue;
		if (sscanf(line, " present %ld", &v) == 1)
			printf("zone %-8s present %ld pages\n", zone, v);
	}
	if (f)
		fclose(f);
}

/* PAGE_INFO of pages [0, n) of @fd into @p; returns the mapping flags. */
__u32 page_info(int fd, __u32 n, struct drm_gma500_mock_page *p)
{
	struct drm_gma500_mock_page_info a = {
		.fd = fd, .count = n, .pages = (uintptr_t)p,
	};

	CHECK(ioctl(card, DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &a) == 0,
	      "PAGE_INFO fd %d", fd);
	return a.mapping_flags;
}

struct census census(const char *what, int fd, __u32 n,
			    struct drm_gma500_mock_page *p)
{
	struct census c = { 0 };
	__u32 mflags = page_info(fd, n, p), i, b;

	for (i = 0; i < n; i++) {
		c.absent += p[i].state == GMA500_MOCK_PAGE_ABSENT;
		c.resident += p[i].state == GMA500_MOCK_PAGE_RESIDENT;
		c.swapped += p[i].state == GMA500_MOCK_PAGE_SWAPPED;
		if (p[i].state != GMA500_MOCK_PAGE_RESIDENT)
			continue;
		if (p[i].zone == GMA500_MOCK_ZONE_DMA32)
			c.dma32++;
		else if (p[i].zone == GMA500_MOCK_ZONE_NORMAL)
			c.normal++;
		else
			c.other++;
		for (b = 0; b < 9; b++)
			c.flags[b] += !!(p[i].flags & (1U << b));
	}
	printf("%-28s %4u pages: absent %d resident %d (DMA32 %d Normal %d other %d) swapped %d;"
	       " pinned %d gem-mapped %d dirty %d lru %d unevictable %d mapped %d; mapping%s%s%s\n",
	       what, n, c.absent, c.resident, c.dma32, c.normal, c.other, c.swapped,
	       c.flags[0], c.flags[1], c.flags[3], c.flags[6], c.flags[7], c.flags[8],
	       mflags & GMA500_MOCK_MAPPING_DMA32 ? " DMA32" : "",
	       mflags & GMA500_MOCK_MAPPING_UNEVICTABLE ? " unevictable" : "",
	       mflags & GMA500_MOCK_MAPPING_GEM ? " GEM" : "");
	return c;
}

__u32 gem_create(__u64 size, __u32 flags)
{
	struct drm_gma500_mock_gem_create a = { .size = size, .flags = flags };

	CHECK(ioctl(card, DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &a) == 0,
	      "GEM_CREATE %llu", (unsigned long long)size);
	return a.handle;
}

int shmem_fd(__u32 handle)
{
	struct drm_gma500_mock_shmem_fd a = {
		.handle = handle, .flags = GMA500_MOCK_FD_CLOEXEC,
	};

	CHECK(ioctl(card, DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &a) == 0, "SHMEM_FD");
	CHECK(fcntl(a.fd, F_GETFD) == FD_CLOEXEC, "SHMEM_FD is close-on-exec");
	return a.fd;
}

__u32 pin(unsigned long req, __u32 handle)
{
	struct drm_gma500_mock_pin a = { .handle = handle };

	CHECK(ioctl(card, req, &a) == 0, "PIN/UNPIN %u", handle);
	return a.pin_count;
}

void gem_close(__u32 handle)
{
	struct gem_close a = { .handle = handle };

	CHECK(ioctl(card, IOCTL_GEM_CLOSE, &a) == 0, "GEM_CLOSE %u", handle);
}

void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 131 + seed + (i >> 12));
}

size_t verify(const unsigned char *p, size_t len, unsigned int seed)
{
	size_t i, bad = 0;

	for (i = 0; i < len; i++)
		bad += p[i] != (unsigned char)(i * 131 + seed + (i >> 12));
	return bad;
}

void *map_shared(int fd, size_t len, long off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);

	CHECK(p != MAP_FAILED, "mmap fd %d len %zu", fd, len);
	return p;
}

int main(void)
{
	long shmem_before, shmem_after;
	char taint[32] = "?";
	int fd;

	setbuf(stdout, NULL);
	setup();
	print_zones();
	shmem_before = meminfo("Shmem");

	test_version();
	test_bad_arguments();
	test_dumb_and_gem_mmap();
	test_pin_and_pageout();
	test_pinned_at_creation();
	test_memfd_and_tmpfs();

	close(card);
	/* Settle what is lazy: swap-cache copies, per-CPU vmstat deltas. */
	if (have_swap)
		CHECK(swapoff("/dev/vda") == 0, "swapoff");
	shmem_after = meminfo("Shmem");
	printf("Shmem before %ld kB, after %ld kB\n", shmem_before, shmem_after);
	CHECK(shmem_after == shmem_before, "Shmem back to its baseline");
	CHECK(syscall(SYS_delete_module, "gma500_mock", O_NONBLOCK) == 0,
	      "unloading gma500_mock");
	fd = open("/proc/sys/kernel/tainted", O_RDONLY);
	if (fd >= 0 && read(fd, taint, sizeof(taint) - 1) > 0)
		taint[strcspn(taint, "\n")] = 0;
	printf("tainted: %s (4096 = O, 8192 = E)\n", taint);
	if (failures)
		printf("SELFTEST FAIL (%d failures)\n", failures);
	else
		printf("SELFTEST PASS\n");
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
