/* The operations that move pages outside swap, in pieces (see runtime_decl.c). */
/* piece: thp_paths */
/* ---- operations that move pages outside swap ---- */

#define THP "/sys/kernel/mm/transparent_hugepage"
#define KHUGEPAGED THP "/khugepaged"

/* piece: memory_blocks */
#define MEMORY_BLOCKS "/sys/devices/system/memory"

/* piece: read_long_base */

static long read_long_base(const char *path, int base)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return r > 0 ? strtol(buf, NULL, base) : -1;
}

/* piece: read_long needs: read_long_base */
static long read_long(const char *path)
{
	return read_long_base(path, 10);
}

/* piece: khugepaged_pass needs: thp_paths read_long write_file */
/* One khugepaged pass: scanning made fast, then two more full scans, bounded by 5 s. */
static int khugepaged_pass(void)
{
	long start = read_long(KHUGEPAGED "/full_scans");
	int i, err;

	if (start < 0)
		return ENOENT;
	err = write_file(KHUGEPAGED "/scan_sleep_millisecs", "0");
	if (!err)
		err = write_file(KHUGEPAGED "/alloc_sleep_millisecs", "0");
	if (!err)
		err = write_file(KHUGEPAGED "/pages_to_scan", "4096");
	for (i = 0; !err && i < 500 && read_long(KHUGEPAGED "/full_scans") < start + 2; i++)
		usleep(10000);
	if (!err && read_long(KHUGEPAGED "/full_scans") < start + 2)
		err = ETIMEDOUT;
	write_file(KHUGEPAGED "/scan_sleep_millisecs", "10000");
	write_file(KHUGEPAGED "/alloc_sleep_millisecs", "60000");
	return err;
}

/* piece: set_thp needs: thp_paths write_file */
/* The shmem THP policy; anonymous THP follows as madvise unless shmem THP is off, since
 * khugepaged runs (and MADV_HUGEPAGE registers a process with it) only then. */
static int set_thp(const char *mode, int anon_madvise)
{
	int err = write_file(THP "/shmem_enabled", mode);

	return err ?: write_file(THP "/enabled", anon_madvise ? "madvise" : "never");
}

/* piece: set_thp_size needs: thp_paths write_file */
/* The per-size shmem THP policy (6.12; anonymous shmem mappings only): ENOENT elsewhere. */
static int set_thp_size(unsigned int size_kb, const char *mode)
{
	char path[96];

	snprintf(path, sizeof(path), THP "/hugepages-%ukB/shmem_enabled", size_kb);
	return write_file(path, mode);
}

/* piece: do_mbind needs: types mpol */
static int do_mbind(struct map *m, uint64_t off, uint64_t len, int node, int flags)
{
	unsigned long mask = 1UL << node;

	if (!m->addr)
		return EINVAL;
	return SYS(syscall(SYS_mbind, m->addr + off, len, MPOL_BIND_, &mask, 64, flags));
}

/* piece: do_move_pages needs: types mpol */
static int do_move_pages(struct map *m, uint64_t off, uint64_t len, int node)
{
	size_t i, n = (len + 4095) / 4096;
	void **pages;
	int *nodes, *status, err;

	if (!m->addr)
		return EINVAL;
	if (!n)
		return SYS(syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, MPOL_MF_MOVE_));
	pages = calloc(n, sizeof(*pages));
	nodes = calloc(n, sizeof(*nodes));
	status = calloc(n, sizeof(*status));
	if (!pages || !nodes || !status) {
		err = ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		pages[i] = m->addr + off + i * 4096;
		nodes[i] = node;
	}
	err = SYS(syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE_));
out:
	free(pages);
	free(nodes);
	free(status);
	return err;
}

/* piece: do_migrate_pages needs: types */
static int do_migrate_pages(int from, int to)
{
	unsigned long old = 1UL << from, new = 1UL << to;

	return SYS(syscall(SYS_migrate_pages, 0, 64, &old, &new));
}

/* piece: offline_block needs: zones memory_blocks read_long_base write_file */
static void on_alarm(int sig)
{
	(void)sig;
}

/* Offlines the memory block holding page `index` of the object; 3 s at most. */
static int offline_block(struct obj *o, uint64_t index)
{
	size_t n = 0;
	struct drm_gma500_mock_page *pg = page_info(o, &n);
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	unsigned long long pfn;
	/* block_size_bytes is hex without a prefix */
	long block = read_long_base(MEMORY_BLOCKS "/block_size_bytes", 16);
	char path[128];
	unsigned int left;
	int err;

	if (!pg)
		return EBADF;
	/* page_info() returns its own buffer, kept for the next call: not freed here */
	if (index >= n || pg[index].state != GMA500_MOCK_PAGE_RESIDENT)
		return ENODATA;
	pfn = pg[index].pfn;
	if (block <= 0)
		return ENOENT;
	snprintf(path, sizeof(path), MEMORY_BLOCKS "/memory%llu/state",
		 pfn * 4096 / (unsigned long long)block);
	/* offline_pages() retries migration until a signal: the alarm is the deadline (the
	 * step's own watchdog alarm is put back with what it had left). */
	sigaction(SIGALRM, &sa, &old);
	left = alarm(3);
	err = write_file(path, "offline");
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	if (left)
		alarm(left > 3 ? left - 3 : 1);
	return err;
}

/* piece: online_all needs: memory_blocks write_file */
/* Onlines every offline memory block. */
static int online_all(void)
{
	char path[128], state[16];
	int i, err = 0, fd;

	for (i = 0; i < 4096; i++) {
		snprintf(path, sizeof(path), MEMORY_BLOCKS "/memory%d/state", i);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(state, 0, sizeof(state));
		if (read(fd, state, sizeof(state) - 1) > 0 && !strncmp(state, "offline", 7))
			err = write_file(path, "online") ?: err;
		close(fd);
	}
	return err;
}

/* piece: hugetlb_pool needs: read_long write_file */
static int hugetlb_pool(unsigned int size_kb, unsigned int count)
{
	char path[128], value[16];
	int err;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%ukB/nr_hugepages", size_kb);
	snprintf(value, sizeof(value), "%u", count);
	err = write_file(path, value);
	/* the kernel gives what it can and the write succeeds anyway: short is ENOMEM */
	if (!err && read_long(path) < (long)count)
		err = ENOMEM;
	return err;
}
