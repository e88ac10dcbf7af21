/*
 * The runtime of the exported reproducers, in pieces (see runtime_decl.c): reporting,
 * expectations, data checks, the mock driver and the zone rule. Output lines other than
 * TAP's start with NOTE ("# " in a kselftest); exit statuses are EXIT_OK, EXIT_FAIL and
 * EXIT_SETUP.
 */
/* piece: write_file */
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

/* piece: core provides: setup begin finish needs: types write_file */
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

/* piece: step needs: core */
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

/* piece: expect provides: expect_ok expect_ok_or expect_errno needs: core */
/* Names as shmemfuzz's signatures spell them (protocol.rs: errno::name). */
static const char *errname(int e)
{
#define E(name) case name: return #name;
	switch (e) {
	E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(EAGAIN) E(ENOMEM) E(EACCES)
	E(EFAULT) E(EBUSY) E(ENODEV) E(EINVAL) E(ENOSPC) E(ENODATA) E(EOPNOTSUPP)
	E(ETIMEDOUT) E(EHWPOISON)
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

/* piece: expect_ok_or_any provides: in_list needs: expect */
/* ok, or any errno of the 0-terminated list `allowed` */
#define expect_ok_or_any(err, allowed, want) \
	expect_result(err, 1, in_list(err, allowed) ? err : 0, want)

static int in_list(int err, const int *allowed)
{
	for (; *allowed; allowed++)
		if (*allowed == err)
			return 1;
	return 0;
}

/* piece: skipped needs: core */
/* A touch the model skips (a page at or past end-of-file would raise SIGBUS). */
static void skipped(void)
{
	snprintf(cur.result, sizeof(cur.result), "skipped (past end-of-file)");
}

/* piece: expect_swapon needs: expect */
/* Results that depend on what happened before: swap devices on, GEM pins held. */
static void expect_swapon(int dev, int err)
{
	if (swap_on[dev]) {
		expect_errno(err, EBUSY);
		return;
	}
	swap_on[dev] = 1;
	expect_ok(err);
}

/* piece: expect_swapoff needs: expect */
static void expect_swapoff(int dev, int err)
{
	if (!swap_on[dev]) {
		expect_errno(err, EINVAL);
		return;
	}
	expect_ok_or(err, ENOMEM);
	swap_on[dev] = err != 0;	/* a failed swapoff leaves the device on */
}

/* piece: expect_gem_pinned needs: expect */
static void expect_gem_pinned(struct obj *o, int err)
{
	o->pins = 1;
	expect_ok_or(err, ENOMEM);	/* pinning at creation may run out of DMA32 */
	if (err)
		o->pins = 0;
}

/* piece: expect_pin needs: expect */
static void expect_pin(struct obj *o, int err)
{
	o->pins++;
	expect_ok_or(err, ENOMEM);
	if (err)
		o->pins--;
}

/* piece: expect_unpin needs: expect */
static void expect_unpin(struct obj *o, int err)
{
	if (!o->pins) {
		expect_errno(err, EINVAL);
		return;
	}
	o->pins--;
	expect_ok(err);
}

/* piece: pattern */
/* @pattern.c@ */
/* piece: got_buf */
#define CHUNK (1U << 20)	/* reads and writes go in 1 MiB pieces, as the agent's */
static unsigned char got_buf[CHUNK];

/* piece: want_buf needs: got_buf */
static unsigned char want_buf[CHUNK];

/* piece: expected_bytes needs: pattern types */

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

/* piece: data_check needs: core */
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

/* piece: write_pattern needs: pattern got_buf */
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

/* piece: check_file needs: types want_buf expected_bytes data_check */
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

/* piece: touch_read needs: types want_buf expected_bytes data_check */
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

/* piece: touch_write needs: types pattern got_buf */
static int touch_write(struct map *m, uint64_t off, uint64_t len, uint32_t seed)
{
	uint64_t done;

	if (!m->addr)
		return EBADF;
	for (done = 0; done < len; done += CHUNK) {
		size_t chunk = len - done < CHUNK ? len - done : CHUNK;

		pattern_fill(seed, m->file_off + off + done, got_buf, chunk);
		memcpy(m->addr + off + done, got_buf, chunk);
	}
	return 0;
}

/* piece: mapped needs: types */
/* The result of mmap(): 0, or its errno (and the mapping is absent). */
static int mapped(struct map *m)
{
	if (m->addr != MAP_FAILED)
		return 0;
	m->addr = NULL;
	return errno;
}

/* piece: advise needs: types */
static int advise(struct map *m, uint64_t off, uint64_t len, int advice)
{
	if (!m->addr)
		return EINVAL;
	return SYS(madvise(m->addr + off, len, advice));
}

/* piece: unmap needs: types */
static int unmap(struct map *m)
{
	unsigned char *addr = m->addr;

	if (!addr)
		return EINVAL;
	m->addr = NULL;
	return SYS(munmap(addr, m->len));
}

/* piece: card needs: core */
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

/* piece: setup_card needs: card */
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

/* piece: gem_create provides: GEM_PINNED needs: card */
#define GEM_PINNED 1	/* GMA500_MOCK_CREATE_PINNED: pinned at creation */
static int gem_create(struct obj *o, uint64_t size, int pinned)
{
	struct drm_gma500_mock_gem_create c = {
		.size = size, .flags = pinned ? GMA500_MOCK_CREATE_PINNED : 0,
	};
	struct drm_gma500_mock_shmem_fd f = { .flags = GMA500_MOCK_FD_CLOEXEC, .fd = -1 };

	if (ioctl(card, DRM_IOCTL_GMA500_MOCK_GEM_CREATE, &c))
		return errno;
	o->handle = c.handle;
	o->has_handle = 1;
	/* read, write, mmap and madvise go to the object's shmem file */
	f.handle = c.handle;
	if (ioctl(card, DRM_IOCTL_GMA500_MOCK_SHMEM_FD, &f))
		return errno;
	o->fd = f.fd;
	o->watched = 1;
	return 0;
}

/* piece: gem_mmap needs: card mapped */
/* A mapping through the DRM device (VM_PFNMAP; pages inserted by the driver's fault handler). */
static int gem_mmap(struct map *m)
{
	struct dumb_map a = { .handle = m->obj->handle };

	if (!m->obj->has_handle)
		return ENOENT;
	if (ioctl(card, IOCTL_MAP_DUMB, &a))
		return errno;
	m->addr = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, card, a.offset);
	return mapped(m);
}

/* piece: gem_pin needs: card */
static int gem_pin(struct obj *o)
{
	struct drm_gma500_mock_pin a = { .handle = o->handle };

	if (!o->has_handle)
		return ENOENT;
	return SYS(ioctl(card, DRM_IOCTL_GMA500_MOCK_PIN, &a));
}

/* piece: gem_unpin needs: card */
static int gem_unpin(struct obj *o)
{
	struct drm_gma500_mock_pin a = { .handle = o->handle };

	if (!o->has_handle)
		return ENOENT;
	return SYS(ioctl(card, DRM_IOCTL_GMA500_MOCK_UNPIN, &a));
}

/* piece: set_dma32 needs: card */
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

/* piece: anon_create needs: types */
/*
 * `memfd NAME size=S anon`: an anonymous shared mapping; its shmem file, opened through
 * /proc/self/map_files (root), is the object's descriptor, as the agent does. Mappings of
 * it duplicate the first one (anon_map()), so they are anonymous shmem VMAs.
 */
static int anon_create(struct obj *o, uint64_t size)
{
	uint64_t len = size < 4096 ? 4096 : (size + 4095) & ~4095ULL;
	char path[64];
	void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return errno;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)base, (unsigned long)base + (unsigned long)len);
	o->fd = open(path, O_RDWR | O_CLOEXEC);
	if (o->fd < 0) {
		int err = errno;

		munmap(base, len);
		return err;
	}
	o->anon_base = base;
	o->anon_len = len;
	return SYS(ftruncate(o->fd, size));
}

/* piece: anon_map needs: types */
/* A shared mapping of an anon object: mremap(old_size 0) duplicates the first mapping. */
static int anon_map(struct map *m, int shared)
{
	struct obj *o = m->obj;
	void *p;

	if (shared && o->anon_base && m->file_off % 4096 == 0 && m->file_off + m->len <= o->anon_len)
		p = mremap(o->anon_base + m->file_off, 0, m->len, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, m->len, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE,
			 o->fd, m->file_off);
	m->addr = p == MAP_FAILED ? NULL : p;
	return m->addr ? 0 : errno;
}

/* piece: hold_forever */
/*
 * Test only (`hold`): a copy of this process that sleeps forever keeps the object's pages
 * alive after the program ends, so the harness's leak check has something to find.
 */
static int hold_forever(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return errno;
	if (pid == 0)
		for (;;)
			pause();
	return 0;
}

/* piece: close_obj needs: card */
/* close() the object's descriptor; for a GEM object also GEM_CLOSE its handle. */
static int close_obj(struct obj *o)
{
	int fd = o->fd;

	if (fd < 0)
		return EBADF;
	o->fd = -1;
	if (o->anon_base) {
		munmap(o->anon_base, o->anon_len);
		o->anon_base = NULL;
	}
	if (close(fd))
		return errno;
	if (o->has_handle) {
		struct gem_close a = { .handle = o->handle };

		o->has_handle = 0;
		return SYS(ioctl(card, IOCTL_GEM_CLOSE, &a));
	}
	return 0;
}

/* piece: print_zones needs: core */
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

/* piece: zones needs: card */
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

/* piece: end_step needs: zones step */
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

/* piece: end_op needs: step */
/* Ends an operation of a program without GEM objects or dma32: nothing to observe. */
static void end_op(void)
{
	op_verdict();
}

/* piece: setup_tmpfs needs: core */
/* A tmpfs of its own for the program's tmpfs files (unmounted by finish()). */
static void setup_tmpfs(void)
{
	mkdir("/run", 0755);
	if (mkdir(TMPFS_DIR, 0755) && errno != EEXIST)
		die("mkdir " TMPFS_DIR);
	if (mount("tmpfs", TMPFS_DIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
		die("mounting a tmpfs on " TMPFS_DIR);
	tmpfs_mounted = 1;
}
