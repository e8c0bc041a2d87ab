// SPDX-License-Identifier: GPL-2.0
/*
 * The real-filesystem lab as tests: what an unmodified 7.3 kernel does with
 * pinned MAP_SHARED file pages and pinwb's simulated device, on tmpfs, ext4
 * (1 KiB blocks), xfs and btrfs on loop devices over tmpfs files, and on
 * pinwbfs (mmwb and default) for comparison. Every cell of the matrix
 * fs x pin x event (selftests/pinwb_realfs.h: rf_cell) is asserted, so a
 * change of mainline's behaviour fails a test; the kernel function behind
 * each expected outcome is named in Documentation/pinwb.rst, "What mainline
 * 7.3 does". The anchors: the kernel's own gup_longterm and gup_test, run in
 * the same mounts, must agree with the pin-refusal column. Then seed 000's
 * paths on ext4: reclaim with buffer_heads_over_limit, an O_DIRECT write
 * over the pinned range, truncate.
 */
#include "pinwb_realfs.h"
#include "kselftest_harness.h"

/* mkfs and loop set-up count in each test's time: more than the harness's 30 s on slow kernels. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 180

#define B(o)	(1U << (o))
#define OK	B(RF_OK)
#define REF	B(RF_REFUSED)
#define LOST	B(RF_LOST)
#define TORN	B(RF_TORN)
#define CSUM	B(RF_CSUM)

/*
 * What 7.3 does, per fs, pin and event (during, kept, unpin); a set where
 * the outcome depends on timing (a tear needs the device inside the IO's
 * copy: not seen in 30 tries on a loop device, but nothing prevents it).
 */
static const unsigned int expect_block[RF_NR_PIN][RF_NR_EVENT] = {
	[RF_LT_RW] = { REF, REF, REF },		/* EFAULT: writable_file_mapping_allowed */
	[RF_LT_RO] = { REF, OK, OK },		/* EINVAL: pinwb's device needs a write pin */
	[RF_ST_RW] = { OK | TORN, LOST, LOST },	/* written in place; clean folio never written */
	[RF_DIO] = { OK, OK, OK },		/* bio_release_pages() dirties at completion */
};

static unsigned int expect(enum rf_fs fs, enum rf_pin pin, enum rf_event ev, const char *policy)
{
	switch (fs) {
	case RF_TMPFS:
		/* The page cache is the store: whatever the device wrote is the file. */
		return pin == RF_LT_RO && ev == RF_DURING ? REF : OK;
	case RF_BTRFS:
		/* btrfs_csum_one_bio() summed the pages before the device changed them. */
		if (pin == RF_ST_RW && ev == RF_DURING)
			return CSUM;
		return expect_block[pin][ev];
	case RF_EXT4_INTEGRITY:
		/* drivers/md/dm-integrity.c: integrity_metadata() summed the
		 * sectors when the bio passed; the loop driver then copied
		 * what the device had written since. */
		if (pin == RF_ST_RW && ev == RF_DURING)
			return CSUM;
		return expect_block[pin][ev];
	case RF_EXT4:
	case RF_XFS:
		return expect_block[pin][ev];
	case RF_PWB_MMWB:
		/* pinwbfs's store checks its crc32c on read (READ_STORE: EIO). */
		if (pin == RF_ST_RW && ev == RF_DURING)
			return CSUM;
		return expect_block[pin][ev];
	case RF_PWB_DEFAULT:
		if (pin == RF_ST_RW && ev == RF_DURING)
			return CSUM;
		/* A noop bdi and no page_mkwrite: R/W long-term pins are allowed. */
		if (pin == RF_LT_RW) {
			if (ev == RF_DURING)
				return CSUM;
			/* naive's pre-pass dirties long-term pinned folios at
			 * fsync (REVIEW S1); mainline writes only dirty ones. */
			if (ev == RF_KEPT)
				return strcmp(policy, "mainline") ? OK : LOST;
			return LOST;
		}
		return expect_block[pin][ev];
	default:
		return 0;
	}
}

FIXTURE(realfs)
{
	struct rf_mnt m;
	bool up;
};

FIXTURE_VARIANT(realfs)
{
	enum rf_fs fs;
};

FIXTURE_VARIANT_ADD(realfs, tmpfs) { .fs = RF_TMPFS };
FIXTURE_VARIANT_ADD(realfs, ext4) { .fs = RF_EXT4 };
FIXTURE_VARIANT_ADD(realfs, xfs) { .fs = RF_XFS };
FIXTURE_VARIANT_ADD(realfs, btrfs) { .fs = RF_BTRFS };
FIXTURE_VARIANT_ADD(realfs, pinwbfs_mmwb) { .fs = RF_PWB_MMWB };
FIXTURE_VARIANT_ADD(realfs, pinwbfs) { .fs = RF_PWB_DEFAULT };
FIXTURE_VARIANT_ADD(realfs, ext4_integrity) { .fs = RF_EXT4_INTEGRITY };

FIXTURE_SETUP(realfs)
{
	int ret;

	/* make check-debug: writing the whole dm-integrity device takes minutes under KASAN. */
	if (variant->fs == RF_EXT4_INTEGRITY && getenv("PINWB_REALFS_QUICK"))
		SKIP(return, "dm-integrity set-up is too slow here (PINWB_REALFS_QUICK)");
	ret = rf_up(&self->m, variant->fs);

	if (ret == 1)
		SKIP(return, "%s not in the guest", rf_fs_desc[variant->fs].tool ?: "a tool");
	ASSERT_EQ(0, ret) TH_LOG("mounting %s: %s", rf_fs_desc[variant->fs].name, strerror(-ret));
	self->up = true;
	if (rf_fs_desc[variant->fs].pinwbfs && strcmp(self->m.policy, "mainline"))
		TH_LOG("provisional: pinwbfs has no policy=mainline yet, using %s", self->m.policy);
}

FIXTURE_TEARDOWN(realfs)
{
	if (self->up)
		EXPECT_EQ(0, rf_down(&self->m));
}

static void check_cell(struct __test_metadata *_metadata, struct rf_mnt *m, enum rf_pin pin,
		       enum rf_event ev)
{
	unsigned int want = expect(m->fs, pin, ev, m->policy);
	struct rf_result r;

	rf_cell(m, pin, ev, &r);
	TH_LOG("%s %s %s: %s (err %d, fsync %d, trials %d torn %d csum %d lost %d, passes %llu, klog csum %d warn %d) %s",
	       rf_fs_desc[m->fs].name, rf_pin_name[pin], rf_event_name[ev],
	       rf_outcome_name[r.outcome], r.err, r.fsync_ret, r.trials, r.torn_trials,
	       r.csum_trials, r.lost_trials, r.passes, r.klog_csum, r.klog_warn, r.why);
	ASSERT_NE(RF_BROKEN, r.outcome) TH_LOG("the lab failed: %s", r.why);
	EXPECT_TRUE(want & B(r.outcome)) TH_LOG("outcome %s is not what 7.3 did (mask 0x%x)",
						rf_outcome_name[r.outcome], want);
	if (r.outcome == RF_REFUSED) {
		/* The pin: mm/gup.c EFAULT; the device on an R/O pin: pinwb's EINVAL. */
		EXPECT_EQ(pin == RF_LT_RO ? EINVAL : EFAULT, r.err);
	} else {
		/* fsync never reports any of it. */
		EXPECT_EQ(0, r.fsync_ret);
	}
	if (r.outcome == RF_CSUM) {
		/* btrfs: EIO, "BTRFS warning ... csum failed"; dm-integrity:
		 * BLK_STS_PROTECTION = EILSEQ, "integrity: ... Checksum failed". */
		EXPECT_EQ(m->fs == RF_EXT4_INTEGRITY ? EILSEQ : EIO, r.err);
		if (!rf_fs_desc[m->fs].pinwbfs)
			EXPECT_LT(0, r.klog_csum);
	}
	/* No cell makes the kernel warn. */
	EXPECT_EQ(0, r.klog_warn);
}

#define CELL(pin, ev)								\
	TEST_F(realfs, pin##_##ev)						\
	{									\
		check_cell(_metadata, &self->m, RF_##pin, RF_##ev);		\
	}

CELL(LT_RW, DURING)
CELL(LT_RW, KEPT)
CELL(LT_RW, UNPIN)
CELL(LT_RO, DURING)
CELL(LT_RO, KEPT)
CELL(LT_RO, UNPIN)
CELL(ST_RW, DURING)
CELL(ST_RW, KEPT)
CELL(ST_RW, UNPIN)
CELL(DIO, DURING)
CELL(DIO, KEPT)
CELL(DIO, UNPIN)

/* Counts lines of @path that start with @prefix and contain @needle (or any). */
static int count_lines(const char *path, const char *prefix, const char *needle, const char *not)
{
	char line[512];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, prefix, strlen(prefix)) && (!needle || strstr(line, needle)) &&
		    (!not || !strstr(line, not)))
			n++;
	fclose(f);
	return n;
}

/*
 * The kernel's own verdict: tools/testing/selftests/mm/gup_longterm makes
 * its "local tmpfile" in the working directory, pins it R/W and R/O,
 * long-term, with gup_test and io_uring, and passes when mm refuses exactly
 * what fs_supports_writable_longterm_pinning() says (tmpfs and hugetlbfs
 * only); it skips a filesystem it does not know (pinwbfs).
 */
TEST_F(realfs, gup_longterm_agrees)
{
	char log[128], cmd[256], cwd[256];
	bool known = !rf_fs_desc[variant->fs].pinwbfs;
	int st, ok, notok, skip;

	if (access("/selftests/gup_longterm", X_OK))
		SKIP(return, "no gup_longterm");
	/* Its gup_test cases, half of what it checks, need CONFIG_GUP_TEST. */
	if (access("/sys/kernel/debug/gup_test", F_OK))
		SKIP(return, "no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST)");
	snprintf(log, sizeof(log), RF_DIR "/gup_longterm-%s.log", rf_fs_desc[variant->fs].name);
	snprintf(cmd, sizeof(cmd), "cd %s && /selftests/gup_longterm > %s 2>&1", self->m.dir, log);
	ASSERT_NE(NULL, getcwd(cwd, sizeof(cwd)));
	st = system(cmd);
	ok = count_lines(log, "ok ", "local tmpfile", "# SKIP");
	skip = count_lines(log, "ok ", "local tmpfile", NULL) - ok;
	notok = count_lines(log, "not ok ", NULL, NULL);
	TH_LOG("gup_longterm in %s: exit %d, local tmpfile: %d ok, %d skipped; %d not ok",
	       self->m.dir, WEXITSTATUS(st), ok, skip, notok);
	EXPECT_EQ(0, notok);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (known) {
		/* R/W and R/O, shared and private, gup_test and io_uring. */
		EXPECT_LE(4, ok);
	} else {
		EXPECT_EQ(0, ok);
		EXPECT_LE(1, skip);
	}
}

/*
 * gup_test's PIN_LONGTERM_BENCHMARK (FOLL_PIN | FOLL_LONGTERM) on a
 * MAP_SHARED file of this mount: refused with FOLL_WRITE exactly where the
 * lab's lt-rw pin is refused, allowed read-only everywhere.
 */
TEST_F(realfs, gup_test_agrees)
{
	char file[128], log[128], cmd[320];
	bool refused = expect(variant->fs, RF_LT_RW, RF_KEPT, self->m.policy) == REF;
	int fd, w;

	if (access("/selftests/gup_test", X_OK))
		SKIP(return, "no gup_test");
	if (access("/sys/kernel/debug/gup_test", F_OK))
		SKIP(return, "no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST)");
	snprintf(file, sizeof(file), "%s/gup_test.dat", self->m.dir);
	fd = open(file, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 1 << 20));
	close(fd);
	for (w = 0; w < 2; w++) {
		snprintf(log, sizeof(log), RF_DIR "/gup_test-%s-%c.log", rf_fs_desc[variant->fs].name,
			 w ? 'w' : 'r');
		snprintf(cmd, sizeof(cmd), "/selftests/gup_test -L -S -m 1 %s -f %s > %s 2>&1",
			 w ? "-w" : "-W", file, log);
		ASSERT_EQ(0, WEXITSTATUS(system(cmd)));
		/* mm/gup_test.c: __gup_test_ioctl() stops at the first failed
		 * pin and reports the size pinned: "truncated (size: 0)". */
		EXPECT_EQ(1, count_lines(log, "ok 1 ", NULL, NULL)) TH_LOG("%s", log);
		if (w && refused) {
			EXPECT_EQ(1, count_lines(log, "#", "truncated (size: 0)", NULL)) TH_LOG("%s", log);
		} else {
			EXPECT_EQ(0, count_lines(log, "#", "truncated", NULL)) TH_LOG("%s", log);
		}
	}
	unlink(file);
}

/* --- seed 000 on 7.3: a pinned ext4 page losing its buffers ----------------- */

FIXTURE(seed)
{
	struct rf_mnt m;
	bool up;
	int fd, h;
	unsigned char *map;
	size_t len;
	char path[128];
};

FIXTURE_SETUP(seed)
{
	int ret = rf_up(&self->m, RF_EXT4);

	self->fd = -1;
	self->h = -1;
	self->map = MAP_FAILED;
	if (ret == 1)
		SKIP(return, "mkfs.ext4 not in the guest");
	ASSERT_EQ(0, ret);
	self->up = true;
	self->len = RF_NPAGES * rf_psz();
	snprintf(self->path, sizeof(self->path), "%s/seed", self->m.dir);
	unlink(self->path);
	self->fd = open(self->path, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, rf_fill_old(self->fd));
	self->map = mmap(NULL, self->len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	/* A short-term R/W pin: ext4 refuses the long-term one. */
	self->h = pinwb_pin_range(self->m.dev, self->map, self->len, PINWB_PIN_WRITE, NULL);
	ASSERT_LE(0, self->h);
	ASSERT_EQ(0, fsync(self->fd));	/* clean: buffers may now be stripped */
}

FIXTURE_TEARDOWN(seed)
{
	if (self->h >= 0)
		pinwb_unpin_handle(self->m.dev, self->h, 0);
	if (self->map != MAP_FAILED)
		munmap(self->map, self->len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->up)
		EXPECT_EQ(0, rf_down(&self->m));
}

/* The device writes one pass or more, then the pin goes with DIRTY, then fsync. */
static void device_then_dirty_unpin(struct __test_metadata *_metadata, FIXTURE_DATA(seed) *self)
{
	ASSERT_EQ(0, rf_dma_start(self->m.dev, self->h, RF_PATTERN, 200));
	usleep(5000);
	ASSERT_LE(1, rf_dma_stop(self->m.dev, self->h));
	ASSERT_EQ(0, pinwb_unpin_handle(self->m.dev, self->h, PINWB_UNPIN_DIRTY));
	self->h = -1;
	munmap(self->map, self->len);
	self->map = MAP_FAILED;
	ASSERT_EQ(0, fsync(self->fd));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, rf_remount(&self->m));
}

/* What the file holds after a remount: pages of device bytes, of RF_OLD, of @other. */
static void read_back(struct __test_metadata *_metadata, FIXTURE_DATA(seed) *self,
		      unsigned char *buf)
{
	int fd = open(self->path, O_RDONLY);

	ASSERT_LE(0, fd);
	memset(buf, 0x5a, self->len);
	EXPECT_LE(0, pread(fd, buf, self->len, 0));
	close(fd);
}

/*
 * REVIEW 6.2 (a)/(b): mm/vmscan.c: shrink_active_list() calls
 * filemap_release_folio() without a pin check, but only while
 * buffer_heads_over_limit; fs/buffer.c: buffer_init() sets the limit to 10%
 * of nr_free_buffer_pages() worth of buffer_heads (PAGE_SIZE / 104 per
 * page), i.e. about 0.1 * 39 = 3.9 buffer_heads per page of lowmem: with 4
 * per cached page (1 KiB blocks) every page of RAM would have to be cached
 * ext4 data. On x86_64 that cannot happen, so memory pressure leaves the
 * pinned folio's buffers alone (shrink_folio_list() itself skips it:
 * folio_maybe_dma_pinned() -> activate_locked), the dirty unpin reaches
 * ext4_dirty_folio() with buffers, and the data persists. Nothing happens.
 */
TEST_F(seed, reclaim_keeps_buffers_of_pinned_folio)
{
	unsigned char *buf;
	int warn0;

	/* make check-debug: filling 80 % of memory with page cache is too slow under KASAN. */
	if (getenv("PINWB_REALFS_QUICK"))
		SKIP(return, "filling the page cache is too slow here (PINWB_REALFS_QUICK)");
	buf = malloc(self->len);
	warn0 = rf_klog_count(rf_klog_warn_lines);
	long avail = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");
	pid_t pid;
	int st;

	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemAvailable:", 13))
			avail = strtol(line + 13, NULL, 10);
	fclose(f);
	/* Fill memory with anonymous pages (no swap): reclaim scans the file LRUs. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		size_t n = (size_t)avail * 1024 / 10 * 8;
		char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		size_t i;

		if (p == MAP_FAILED)
			_exit(1);
		for (i = 0; i < n; i += 4096)
			p[i] = 1;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	device_then_dirty_unpin(_metadata, self);
	read_back(_metadata, self, buf);
	/* Every page holds a device pass: the dirty unpin was written. */
	EXPECT_EQ(RF_NPAGES, (int)rf_classify(buf, RF_NPAGES).writer);
	EXPECT_EQ(warn0, rf_klog_count(rf_klog_warn_lines));
	free(buf);
}

/*
 * REVIEW 6.2 (c): an O_DIRECT write over pinned page 0. mm/filemap.c:
 * kiocb_invalidate_pages() -> invalidate_inode_pages2_range() ->
 * mm/truncate.c: folio_unmap_invalidate(), which ignores the refcount: the
 * clean pinned folio loses its buffers (filemap_release_folio) and leaves
 * the page cache (__filemap_remove_folio). The pin now holds an orphan: the
 * device writes into it, the dirty unpin's folio_mark_dirty() finds no
 * mapping, the O_DIRECT data stays on disk. Silent loss of the device's
 * page 0, no warning (the invalidation succeeded, so no
 * dio_warn_stale_pagecache()); pages 1-3, not invalidated, persist, unless
 * they are in page 0's folio: with large folios (ext4 makes them with
 * CONFIG_TRANSPARENT_HUGEPAGE) the invalidation takes the whole folio, and
 * those pages are orphaned and lost too.
 */

/* The PFN behind @addr (root: /proc/self/pagemap), 0 if none. */
static uint64_t rf_pfn(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd >= 0 && pread(fd, &e, 8, (uintptr_t)addr / rf_psz() * 8) != 8)
		e = 0;
	if (fd >= 0)
		close(fd);
	return e & (1ULL << 63) ? e & ((1ULL << 55) - 1) : 0;
}

/* Whether @pfn is a tail page of a large folio (/proc/kpageflags KPF_COMPOUND_TAIL). */
static bool rf_pfn_is_tail(uint64_t pfn)
{
	uint64_t f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd >= 0 && pread(fd, &f, 8, pfn * 8) != 8)
		f = 0;
	if (fd >= 0)
		close(fd);
	return f & (1ULL << 16);
}

/* Pages 1.. of @map (of @n) in the folio of page 0. */
static int rf_pages_sharing_folio_0(const unsigned char *map, int n)
{
	uint64_t pfn0 = rf_pfn(map);
	int i;

	for (i = 1; i < n; i++)
		if (!pfn0 || rf_pfn(map + i * rf_psz()) != pfn0 + i ||
		    !rf_pfn_is_tail(pfn0 + i))
			break;
	return i - 1;
}

TEST_F(seed, odirect_write_orphans_pinned_folio)
{
	size_t psz = rf_psz();
	unsigned char *buf = malloc(self->len);
	int warn0 = rf_klog_count(rf_klog_warn_lines);
	struct pinwb_page_state ps = { .addr = (unsigned long)self->map };
	int dfd, shared = rf_pages_sharing_folio_0(self->map, RF_NPAGES);
	void *d;

	TH_LOG("pages 1..%d share page 0's folio: %d", RF_NPAGES - 1, shared);
	ASSERT_EQ(0, posix_memalign(&d, 4096, psz));
	memset(d, 'D', psz);
	dfd = open(self->path, O_WRONLY | O_DIRECT);
	ASSERT_LE(0, dfd);
	ASSERT_EQ((ssize_t)psz, pwrite(dfd, d, psz, 0));
	close(dfd);
	/* The address now maps a fresh folio, not the pinned one. */
	ASSERT_EQ(0, ioctl(self->m.dev, PINWB_IOC_PAGE_STATE, &ps));
	EXPECT_EQ(0, ps.flags & PINWB_PAGE_DMA_PINNED);
	/* Page 1 is still the pinned folio, unless that was page 0's too. */
	ps = (struct pinwb_page_state){ .addr = (unsigned long)self->map + psz };
	ASSERT_EQ(0, ioctl(self->m.dev, PINWB_IOC_PAGE_STATE, &ps));
	EXPECT_EQ(!shared, !!(ps.flags & PINWB_PAGE_DMA_PINNED));
	device_then_dirty_unpin(_metadata, self);
	read_back(_metadata, self, buf);
	EXPECT_EQ('D', buf[0]);
	EXPECT_EQ('D', buf[psz - 1]);
	/* The device's passes persist in the pages that were not orphaned. */
	EXPECT_EQ(RF_NPAGES - 1 - shared, (int)rf_classify(buf + psz, RF_NPAGES - 1).writer);
	EXPECT_EQ(warn0, rf_klog_count(rf_klog_warn_lines));
	free(d);
	free(buf);
}

/*
 * truncate with live pins: mm/truncate.c: truncate_inode_pages_range() ->
 * truncate_cleanup_folio() -> folio_invalidate() (block_invalidate_folio
 * frees the buffers) and filemap_remove_folio(): every pinned folio is
 * orphaned, the device and the dirty unpin write into nothing, and the
 * re-extended file reads zeroes. Silent loss, no warning.
 */
TEST_F(seed, truncate_orphans_pinned_folios)
{
	unsigned char *buf = malloc(self->len);
	int warn0 = rf_klog_count(rf_klog_warn_lines);
	size_t i, zero = 0;

	ASSERT_EQ(0, ftruncate(self->fd, 0));
	ASSERT_EQ(0, ftruncate(self->fd, self->len));
	device_then_dirty_unpin(_metadata, self);
	read_back(_metadata, self, buf);
	for (i = 0; i < self->len; i++)
		zero += !buf[i];
	EXPECT_EQ(self->len, zero);
	EXPECT_EQ(warn0, rf_klog_count(rf_klog_warn_lines));
	free(buf);
}

PINWB_HARNESS_MAIN(true)
