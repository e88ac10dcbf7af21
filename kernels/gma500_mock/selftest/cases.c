// SPDX-License-Identifier: GPL-2.0-only
/* The selftest's cases: one function per area of the driver. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "selftest.h"

static struct drm_gma500_mock_page pages[4096];

void test_version(void)
{
	char name[64] = "";
	struct drm_version_arg v = { .name_len = sizeof(name) - 1, .name = name };

	CHECK(ioctl(card, IOCTL_VERSION, &v) == 0, "DRM_IOCTL_VERSION");
	CHECK(strcmp(name, "gma500_mock") == 0, "driver name %s", name);
	printf("driver %s %d.%d\n", name, v.major, v.minor);
}

void test_bad_arguments(void)
{
	struct drm_gma500_mock_gem_create c = { .size = 0 };
	struct drm_gma500_mock_pin p = { .handle = 12345 };
	struct drm_gma500_mock_shmem_fd s = { .handle = 12345 };
	struct drm_gma500_mock_set_dma32 d = { .fd = -1 };
	struct drm_gma500_mock_page_info i = { 0 };
	struct dumb_map dm = { .handle = 12345 };
	int pfd[2], memfd, statfd;
	__u32 h;

	expect_err(DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &c, EINVAL, "GEM_CREATE size 0");
	c.size = GMA500_MOCK_MAX_OBJECT_SIZE + 1;
	expect_err(DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &c, EINVAL, "GEM_CREATE 4 GiB + 1");
	c.size = PAGE;
	c.flags = 2;
	expect_err(DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &c, EINVAL, "GEM_CREATE flags 2");
	expect_err(DRM_IOCTL_GMA500_MOCK_PIN, &p, ENOENT, "PIN bad handle");
	expect_err(DRM_IOCTL_GMA500_MOCK_UNPIN, &p, ENOENT, "UNPIN bad handle");
	expect_err(DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &s, ENOENT, "SHMEM_FD bad handle");
	expect_err(IOCTL_MAP_DUMB, &dm, ENOENT, "MAP_DUMB bad handle");

	h = gem_create(PAGE, 0);
	p.handle = h;
	expect_err(DRM_IOCTL_GMA500_MOCK_UNPIN, &p, EINVAL, "UNPIN not pinned");
	s.handle = h;
	s.flags = 2;
	expect_err(DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &s, EINVAL, "SHMEM_FD flags 2");
	s.flags = 0;
	s.pad = 1;
	expect_err(DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &s, EINVAL, "SHMEM_FD pad 1");

	CHECK(pipe(pfd) == 0, "pipe");
	memfd = memfd_create("bad", MFD_CLOEXEC);
	statfd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	expect_err(DRM_IOCTL_GMA500_MOCK_SET_DMA32, &d, EBADF, "SET_DMA32 fd -1");
	d.fd = pfd[0];
	expect_err(DRM_IOCTL_GMA500_MOCK_SET_DMA32, &d, EINVAL, "SET_DMA32 on a pipe");
	d.fd = statfd;
	expect_err(DRM_IOCTL_GMA500_MOCK_SET_DMA32, &d, EINVAL, "SET_DMA32 on procfs");
	d.fd = memfd;
	d.flags = 1;
	expect_err(DRM_IOCTL_GMA500_MOCK_SET_DMA32, &d, EINVAL, "SET_DMA32 flags 1");

	i.fd = memfd;
	i.count = GMA500_MOCK_PAGE_INFO_MAX + 1;
	i.pages = (uintptr_t)pages;
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EINVAL, "PAGE_INFO count 65537");
	i.count = 1;
	i.pad = 1;
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EINVAL, "PAGE_INFO pad 1");
	i.pad = 0;
	i.first_index = ~0ULL;
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EINVAL, "PAGE_INFO index ~0");
	i.first_index = 0;
	i.pages = 8;
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EFAULT, "PAGE_INFO pages=8");
	i.pages = (uintptr_t)pages;
	i.fd = -1;
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EBADF, "PAGE_INFO fd -1");
	i.fd = pfd[1];
	expect_err(DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i, EINVAL, "PAGE_INFO on a pipe");
	i.fd = memfd;
	i.count = 0;
	CHECK(ioctl(card, DRM_IOCTL_GMA500_MOCK_PAGE_INFO, &i) == 0 && i.size == 0,
	      "PAGE_INFO count 0");
	expect_err(GMA500_MOCK_IOWR(0x20, struct drm_gma500_mock_pin), &p, EINVAL,
		   "driver ioctl 0x20");

	gem_close(h);
	close(pfd[0]);
	close(pfd[1]);
	close(memfd);
	close(statfd);
}

void test_dumb_and_gem_mmap(void)
{
	struct dumb_create dc = { .height = 256, .width = 256, .bpp = 32 };
	struct dumb_map dm = { 0 };
	unsigned char *m, *m2, *buf;
	struct census c;
	int fd, status;
	size_t size, n;
	pid_t pid;
	void *priv;

	CHECK(ioctl(card, IOCTL_CREATE_DUMB, &dc) == 0, "CREATE_DUMB");
	CHECK(dc.pitch == 1024 && dc.size == 256 * 1024, "pitch %u size %llu",
	      dc.pitch, (unsigned long long)dc.size);
	size = dc.size;
	n = size / PAGE;
	dm.handle = dc.handle;
	CHECK(ioctl(card, IOCTL_MAP_DUMB, &dm) == 0, "MAP_DUMB");
	m = map_shared(card, size, dm.offset);
	fill(m, size, 7);

	fd = shmem_fd(dc.handle);
	buf = malloc(size);
	CHECK(pread(fd, buf, size, 0) == (ssize_t)size && verify(buf, size, 7) == 0,
	      "the shmem fd reads what the GEM mapping wrote");
	c = census("dumb, GEM-mapped", fd, n, pages);
	CHECK(c.resident == (int)n && c.dma32 == (int)n && c.flags[1] == (int)n,
	      "all pages resident, DMA32, held by the GEM mapping");
	CHECK(c.flags[8] == 0, "PFN-mapped pages are not rmap-mapped");

	priv = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, card, dm.offset);
	CHECK(priv == MAP_FAILED && errno == EINVAL, "MAP_PRIVATE of a GEM object");
	CHECK(madvise(m, size, MADV_PAGEOUT) == -1 && errno == EINVAL,
	      "MADV_PAGEOUT on a VM_PFNMAP mapping");

	pid = fork();
	if (pid == 0)
		_exit(verify(m, size, 7) ? 1 : 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "a forked child reads the GEM mapping");

	/* A hole punched through the shmem fd, then a second mapping faults page 0. */
	m2 = map_shared(card, size, dm.offset);
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE) == 0,
	      "punch page 0");
	CHECK(m[0] == 7, "the old GEM mapping still shows the punched page (%u)", m[0]);
	CHECK(m2[0] == 0, "the new mapping faults a fresh page (%u)", m2[0]);
	CHECK(m[0] == 0, "which replaced the old page in every GEM mapping (%u)", m[0]);
	CHECK(memcmp(m + PAGE, m2 + PAGE, size - PAGE) == 0, "both mappings agree");

	/* PAGE_INFO writing into a GEM mapping of the object it walks. */
	page_info(fd, n, (struct drm_gma500_mock_page *)m2);
	CHECK(((struct drm_gma500_mock_page *)m2)[n - 1].state == GMA500_MOCK_PAGE_RESIDENT,
	      "PAGE_INFO can fill a GEM mapping of the same object");
	/* Split the VMAs (vm_open), then unmap the pieces (vm_close). */
	CHECK(munmap(m2 + 8 * PAGE, PAGE) == 0 && munmap(m + 3 * PAGE, 2 * PAGE) == 0,
	      "punching holes in the GEM mappings");
	c = census("dumb, mappings split", fd, n, pages);
	CHECK(c.flags[1] == (int)n, "still held while pieces stay mapped");
	munmap(m2, size);
	munmap(m, size);
	c = census("dumb, unmapped", fd, n, pages);
	CHECK(c.flags[1] == 0 && c.flags[3] == c.resident && c.resident == (int)n,
	      "unmapping released the pages, marked dirty");
	gem_close(dc.handle);
	close(fd);
	free(buf);
}

static void print_swap_entries(size_t n)
{
	size_t i, shown = 0;

	for (i = 0; i < n && shown < 4; i++) {
		if (pages[i].state != GMA500_MOCK_PAGE_SWAPPED)
			continue;
		printf("    page %zu: swap type %u offset %llu\n", i, pages[i].swap_type,
		       (unsigned long long)pages[i].swap_offset);
		shown++;
	}
}

/* PAGEOUT, read back through @m, check the data and where the pages went. */
static void pageout_and_back(const char *what, int fd, unsigned char *m,
			     size_t size, unsigned int seed)
{
	size_t i, n = size / PAGE, same = 0;
	static __u64 pfn[4096];
	struct census c;
	char label[64];

	for (i = 0; i < n; i++)
		pfn[i] = pages[i].pfn;
	CHECK(madvise(m, size, MADV_PAGEOUT) == 0, "MADV_PAGEOUT");
	snprintf(label, sizeof(label), "%s, PAGEOUT", what);
	c = census(label, fd, n, pages);
	CHECK(c.swapped > 0, "some pages swapped");
	print_swap_entries(n);
	CHECK(verify(m, size, seed) == 0, "data intact after swapin");
	snprintf(label, sizeof(label), "%s, read back", what);
	c = census(label, fd, n, pages);
	CHECK(c.resident == (int)n && c.dma32 == (int)n, "back in DMA32");
	for (i = 0; i < n; i++)
		same += pages[i].pfn == pfn[i];
	printf("    %zu of %zu pages came back at the same PFN (swap cache)\n", same, n);
}

void test_pin_and_pageout(void)
{
	struct drm_gma500_mock_pin a;
	size_t size = MIB(4), n = size / PAGE;
	unsigned char *m;
	struct census c;
	__u32 h, mflags;
	int fd;

	h = gem_create(size, 0);
	fd = shmem_fd(h);
	m = map_shared(fd, size, 0);
	fill(m, size, 3);
	c = census("GEM 4M, written via shmem fd", fd, n, pages);
	CHECK(c.resident == (int)n && c.dma32 == (int)n && c.flags[0] == 0,
	      "resident in DMA32, not pinned");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_PIN, h) == 1, "first pin");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_PIN, h) == 2, "second pin");
	mflags = page_info(fd, 0, pages);
	CHECK(mflags & GMA500_MOCK_MAPPING_UNEVICTABLE, "pinning made the mapping unevictable");
	if (have_swap)
		CHECK(madvise(m, size, MADV_PAGEOUT) == 0, "MADV_PAGEOUT while pinned");
	c = census("pinned twice (after PAGEOUT)", fd, n, pages);
	CHECK(c.resident == (int)n && c.flags[0] == (int)n, "all pinned and resident");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_UNPIN, h) == 1, "first unpin");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_UNPIN, h) == 0, "second unpin");
	a = (struct drm_gma500_mock_pin){ .handle = h };
	expect_err(DRM_IOCTL_GMA500_MOCK_UNPIN, &a, EINVAL, "UNPIN below zero");
	c = census("unpinned", fd, n, pages);
	CHECK(c.flags[0] == 0, "no page pinned");
	if (have_swap)
		pageout_and_back("GEM 4M unpinned", fd, m, size, 3);
	munmap(m, size);
	close(fd);
	gem_close(h);
}

void test_pinned_at_creation(void)
{
	size_t n = MIB(1) / PAGE;
	struct census c;
	__u32 h;
	int fd;

	h = gem_create(MIB(1), GMA500_MOCK_CREATE_PINNED);
	fd = shmem_fd(h);
	c = census("GEM 1M created pinned", fd, n, pages);
	CHECK(c.resident == (int)n && c.dma32 == (int)n && c.flags[0] == (int)n,
	      "pinned at creation: resident in DMA32");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_UNPIN, h) == 0, "its pin is dropped by UNPIN");
	CHECK(pin(DRM_IOCTL_GMA500_MOCK_PIN, h) == 1, "pinned again");
	gem_close(h);
	c = census("after GEM_CLOSE while pinned", fd, n, pages);
	CHECK(c.flags[0] == 0 && c.resident == (int)n, "freeing the object unpinned it");
	CHECK(!(page_info(fd, 0, pages) & (GMA500_MOCK_MAPPING_GEM |
					   GMA500_MOCK_MAPPING_UNEVICTABLE)),
	      "the shmem file outlives the object, as a plain file");
	close(fd);
}

static void set_dma32(int fd)
{
	struct drm_gma500_mock_set_dma32 d = { .fd = fd };

	CHECK(ioctl(card, DRM_IOCTL_GMA500_MOCK_SET_DMA32, &d) == 0, "SET_DMA32");
}

void test_memfd_and_tmpfs(void)
{
	size_t size = MIB(4), n = size / PAGE;
	unsigned char *m, *buf;
	struct census c;
	int fd;

	fd = memfd_create("plain", MFD_CLOEXEC);
	CHECK(ftruncate(fd, size) == 0, "ftruncate");
	m = map_shared(fd, size, 0);
	fill(m, size, 5);
	c = census("memfd 4M, no mask", fd, n, pages);
	CHECK(c.normal == (int)n, "an unconstrained memfd lands in Normal");
	munmap(m, size);
	close(fd);

	fd = memfd_create("dma32", MFD_CLOEXEC);
	CHECK(ftruncate(fd, size) == 0, "ftruncate");
	set_dma32(fd);
	m = map_shared(fd, size, 0);
	fill(m, size, 9);
	c = census("memfd 4M after SET_DMA32", fd, n, pages);
	CHECK(c.resident == (int)n && c.dma32 == (int)n, "all in DMA32");
	CHECK((page_info(fd, 0, pages) & (GMA500_MOCK_MAPPING_DMA32 | GMA500_MOCK_MAPPING_GEM)) ==
	      GMA500_MOCK_MAPPING_DMA32, "mapping flags: DMA32, not GEM");
	if (have_swap)
		pageout_and_back("memfd 4M DMA32", fd, m, size, 9);
	munmap(m, size);
	close(fd);

	fd = open("/tmp/f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	set_dma32(fd);
	buf = malloc(MIB(1));
	fill(buf, MIB(1), 11);
	CHECK(pwrite(fd, buf, MIB(1), 0) == (ssize_t)MIB(1), "pwrite tmpfs");
	c = census("tmpfs 1M after SET_DMA32", fd, MIB(1) / PAGE, pages);
	CHECK(c.dma32 == (int)(MIB(1) / PAGE), "tmpfs file in DMA32");
	close(fd);
	unlink("/tmp/f");
	free(buf);
}
