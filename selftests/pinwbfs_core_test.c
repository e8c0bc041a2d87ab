// SPDX-License-Identifier: GPL-2.0
/*
 * pinwbfs writeback core: what a disk filesystem must get right, each case a
 * regression test of a 0.3.0 defect (Documentation/pinwb.rst, "The IO
 * model"): sparse truncate, IO held across waits, knob ranges, remount,
 * the wait budget and foreign-pin wakeups, error paths (errseq, checksums,
 * allocation failures), the device's bounds, READ_STORE's checks, and a
 * shadow-model stress test. Oracles are a userspace shadow of the file,
 * the backing store read back through READ_STORE, and reads after
 * drop_caches, never pinwb's own counters alone.
 */
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"
#include "mm/gup_test.h"

#define MNT	"/tmp/pinwbfs_core"

static size_t psz;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void drop_caches(struct __test_metadata *_metadata)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	ASSERT_LE(0, fd);
	ASSERT_EQ(1, write(fd, "3", 1));
	close(fd);
}

static int knob_u64(const char *name, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", v);
	return pinwb_knob(name, buf);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

/* Creates @path of @len bytes and maps it shared, read-write; the fd in *@fd. */
static char *create_mapped(struct __test_metadata *_metadata, const char *path, size_t len,
			   int *fd)
{
	char *map;

	*fd = open(path, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, *fd);
	ASSERT_EQ(0, ftruncate(*fd, len));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	return map;
}

static bool all_bytes(const char *p, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != c)
			return false;
	return true;
}

FIXTURE(core)
{
	int dev, fd;
	struct pin_counters before;
};

FIXTURE_VARIANT(core) { const char *opts; };
FIXTURE_VARIANT_ADD(core, mainline) { .opts = "policy=mainline" };
FIXTURE_VARIANT_ADD(core, mainline_mmwb) { .opts = "policy=mainline,mmwb" };

FIXTURE_SETUP(core)
{
	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 1000, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, variant->opts));
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	self->fd = open(MNT "/f", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(core)
{
	close(self->fd);
	close(self->dev);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

/* Issue "Writeback core" 1: truncating a sparse file drops every stored page. */
TEST_F(core, sparse_truncate_resurrects_nothing)
{
	char *buf = malloc(psz), *zero = calloc(1, psz);

	ASSERT_NE(NULL, buf);
	memset(buf, 'x', psz);
	ASSERT_EQ((ssize_t)psz, pwrite(self->fd, buf, psz, 0));
	ASSERT_EQ((ssize_t)psz, pwrite(self->fd, buf, psz, 20 * psz));
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ(0, ftruncate(self->fd, psz));
	ASSERT_EQ(0, ftruncate(self->fd, 21 * psz));
	/* From the page cache, from READ_STORE, and after the cache is gone. */
	ASSERT_EQ((ssize_t)psz, pread(self->fd, buf, psz, 20 * psz));
	EXPECT_EQ(0, memcmp(buf, zero, psz));
	ASSERT_EQ((ssize_t)psz, pinwbfs_read_store(self->fd, buf, psz, 20 * psz));
	EXPECT_EQ(0, memcmp(buf, zero, psz));
	ASSERT_EQ(0, fsync(self->fd));
	drop_caches(_metadata);
	ASSERT_EQ((ssize_t)psz, pread(self->fd, buf, psz, 20 * psz));
	EXPECT_EQ(0, memcmp(buf, zero, psz));
	ASSERT_EQ((ssize_t)psz, pread(self->fd, buf, psz, 0));
	EXPECT_TRUE(all_bytes(buf, psz, 'x'));
	free(buf);
	free(zero);
}

/* A tail cut inside a page reads back as zeroes, through mmap too. */
TEST_F(core, truncate_zeroes_the_straddling_tail)
{
	char *buf = malloc(2 * psz), *map;

	ASSERT_NE(NULL, buf);
	memset(buf, 'y', 2 * psz);
	ASSERT_EQ((ssize_t)(2 * psz), pwrite(self->fd, buf, 2 * psz, 0));
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ(0, ftruncate(self->fd, psz + 100));
	ASSERT_EQ(0, ftruncate(self->fd, 2 * psz));
	drop_caches(_metadata);
	map = mmap(NULL, 2 * psz, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	EXPECT_TRUE(all_bytes(map + psz, 100, 'y'));
	EXPECT_TRUE(all_bytes(map + psz + 100, psz - 100, 0));
	munmap(map, 2 * psz);
	ASSERT_EQ((ssize_t)psz, pinwbfs_read_store(self->fd, buf, psz, psz));
	EXPECT_TRUE(all_bytes(buf + 100, psz - 100, 0));
	free(buf);
}

/* READ_STORE: opened for reading, clamped to the file size. */
TEST_F(core, read_store_checks_mode_and_size)
{
	char buf[64];
	int wo;

	ASSERT_EQ(8, pwrite(self->fd, "abcdefgh", 8, 0));
	ASSERT_EQ(0, fsync(self->fd));
	wo = open(MNT "/f", O_WRONLY);
	ASSERT_LE(0, wo);
	EXPECT_EQ(-1, pinwbfs_read_store(wo, buf, 8, 0));
	EXPECT_EQ(EBADF, errno);
	close(wo);
	EXPECT_EQ(8, pinwbfs_read_store(self->fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, pinwbfs_read_store(self->fd, buf, sizeof(buf), 4096 * 10));
	EXPECT_EQ(3, pinwbfs_read_store(self->fd, buf, sizeof(buf), 5));
}

/* A stored page whose bytes fail their checksum reads as EIO, counted. */
TEST_F(core, corrupt_store_page_reads_eio)
{
	unsigned long long c0 = pinwb_debugfs_u64("csum_errors");
	char buf[4096], cmd[64];

	memset(buf, 'c', sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 0));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 4096));
	ASSERT_EQ(0, fsync(self->fd));
	snprintf(cmd, sizeof(cmd), "%lu 1", (unsigned long)ino_of(self->fd));
	ASSERT_EQ(0, pinwb_knob("corrupt_store", cmd));
	EXPECT_EQ(-ENOENT, pinwb_knob("corrupt_store", "1 0"));
	drop_caches(_metadata);
	EXPECT_EQ(-1, pread(self->fd, buf, sizeof(buf), 4096));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(-1, pinwbfs_read_store(self->fd, buf, sizeof(buf), 4096));
	EXPECT_EQ(EIO, errno);
	/* The good page still reads; a new write replaces the bad one. */
	EXPECT_EQ((ssize_t)sizeof(buf), pread(self->fd, buf, sizeof(buf), 0));
	EXPECT_LE(2ULL, pinwb_debugfs_u64("csum_errors") - c0);
	memset(buf, 'd', sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 4096));
	ASSERT_EQ(0, fsync(self->fd));
	drop_caches(_metadata);
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->fd, buf, sizeof(buf), 4096));
	EXPECT_TRUE(all_bytes(buf, sizeof(buf), 'd'));
}

/*
 * A store write error keeps the data dirty and reaches every descriptor's
 * next fsync exactly once (errseq), and syncfs; the retry persists the data.
 */
TEST_F(core, store_write_errors_reach_fsync_once)
{
	char buf[4096];
	int other = open(MNT "/f", O_RDWR), third = open(MNT "/f", O_RDONLY), ret;

	ASSERT_LE(0, other);
	ASSERT_LE(0, third);
	memset(buf, 'e', sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, knob_u64("inject_store_errors", 1));
	/* Cleaning writeback meets the error (sync_file_range may report it). */
	if (strstr(variant->opts, "mmwb")) {
		ret = sync_file_range(self->fd, 0, 0, SYNC_FILE_RANGE_WRITE) ? -errno : 0;
		EXPECT_TRUE(ret == 0 || ret == -EIO) TH_LOG("sync_file_range: %d", ret);
	} else {
		ASSERT_EQ(0, pinwb_knob("flush_kick", "1"));
	}
	EXPECT_EQ(0ULL, pinwb_debugfs_u64("inject_store_errors"));
	/* Each descriptor learns it once; syncfs too; the retry persisted the data. */
	EXPECT_EQ(-EIO, fsync(self->fd) ? -errno : 0);
	EXPECT_EQ(0, fsync(self->fd) ? -errno : 0);
	EXPECT_EQ(-EIO, fsync(other) ? -errno : 0);
	EXPECT_EQ(0, fsync(other) ? -errno : 0);
	EXPECT_EQ(-EIO, syncfs(third) ? -errno : 0);
	EXPECT_EQ(0, syncfs(third) ? -errno : 0);
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pinwbfs_read_store(self->fd, buf, sizeof(buf), 0));
	EXPECT_TRUE(all_bytes(buf, sizeof(buf), 'e'));
	close(other);
	close(third);
}

/* Every allocation of PINWB_IOC_PIN fails once; each failure undoes everything. */
TEST_F(core, pin_allocation_failures_leave_nothing_behind)
{
	char *map, buf[16];
	int nth, fd, i, injected = 0;
	struct pinwb_page_state st;

	if (access("/proc/thread-self/fail-nth", W_OK))
		SKIP(return, "no fault injection (CONFIG_FAULT_INJECTION)");
	ASSERT_EQ(0, ftruncate(self->fd, 4 * psz));
	map = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	memset(map, 'p', 4 * psz);
	for (i = 0; i < 2; i++) {
		char path[64];
		const char *f = i ? "fail_page_alloc" : "failslab";

		snprintf(path, sizeof(path), "/sys/kernel/debug/%s/ignore-gfp-wait", f);
		fd = open(path, O_WRONLY);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1, write(fd, "N", 1));
		close(fd);
		snprintf(path, sizeof(path), "/sys/kernel/debug/%s/verbose", f);
		fd = open(path, O_WRONLY);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1, write(fd, "0", 1));
		close(fd);
	}
	fd = open("/sys/kernel/debug/fail_page_alloc/min-order", O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, write(fd, "0", 1));
	close(fd);
	nth = open("/proc/thread-self/fail-nth", O_RDWR);
	ASSERT_LE(0, nth);
	for (i = 1; i < 200; i++) {
		unsigned int flags = PINWB_PIN_LONGTERM | PINWB_PIN_WRITE;
		int h, len = snprintf(buf, sizeof(buf), "%d", i);

		if (strstr(variant->opts, "mmwb"))
			flags = PINWB_PIN_WRITE;
		ASSERT_EQ(len, pwrite(nth, buf, len, 0));
		h = pinwb_pin_range(self->dev, map, 4 * psz, flags, NULL);
		memset(buf, 0, sizeof(buf));
		ASSERT_LT(0, pread(nth, buf, sizeof(buf) - 1, 0));
		/* Not injected: disarm it before anything else allocates. */
		ASSERT_EQ(1, pwrite(nth, "0", 1, 0));
		if (h > 0) {
			ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
		} else {
			EXPECT_TRUE(h == -ENOMEM || h == -EFAULT) TH_LOG("fail-nth %d: %d", i, h);
		}
		/* Nothing counted, nothing pinned, whatever failed. */
		memset(&st, 0, sizeof(st));
		st.addr = (unsigned long)map;
		ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_PAGE_STATE, &st));
		EXPECT_EQ(0ULL, st.longterm + st.shortterm) TH_LOG("fail-nth %d", i);
		EXPECT_EQ(self->before.pins_active, pinwb_debugfs_u64("pins_active"))
			TH_LOG("fail-nth %d", i);
		if (atoi(buf))	/* not injected: every allocation of a pin was tried */
			break;
		injected++;
	}
	close(nth);
	EXPECT_LT(2, injected);
	munmap(map, 4 * psz);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* Knobs: in range at once, out of range EINVAL and unchanged. */
TEST(knobs_refuse_out_of_range_values)
{
	static const struct { const char *name; unsigned long long max; } k[] = {
		{ "io_delay_us", 1000000 },
		{ "flush_period_ms", 3600000 },
		{ "wait_timeout_ms", 600000 },
	};
	static const char *const bad[] = { "", "-1", "x", "1 2", "0x10", "18446744073709551616" };
	unsigned int i, j;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, knob_u64(k[i].name, 7));
		EXPECT_EQ(-EINVAL, knob_u64(k[i].name, k[i].max + 1)) TH_LOG("%s", k[i].name);
		EXPECT_EQ(-EINVAL, knob_u64(k[i].name, 1ULL << 63)) TH_LOG("%s", k[i].name);
		EXPECT_EQ(-EINVAL, knob_u64(k[i].name, ~0ULL)) TH_LOG("%s", k[i].name);
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
			EXPECT_EQ(-EINVAL, pinwb_knob(k[i].name, bad[j])) TH_LOG("%s '%s'", k[i].name, bad[j]);
		EXPECT_EQ(7ULL, pinwb_debugfs_u64(k[i].name)) TH_LOG("%s", k[i].name);
		EXPECT_EQ(0, knob_u64(k[i].name, k[i].max)) TH_LOG("%s", k[i].name);
	}
	EXPECT_EQ(-EINVAL, pinwb_knob("policy", "bogus"));
	EXPECT_EQ(0, pinwb_knob("policy", "mainline"));
	EXPECT_EQ(0, pinwb_knob("policy", "naive"));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* Lowering flush_period_ms takes effect now, not after the old period. */
TEST(lower_flush_period_takes_effect_at_once)
{
	char buf[4096];
	long long t0;
	int fd;

	ASSERT_EQ(0, pinwb_writeback_knobs(3600000, 0, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=mainline"));
	fd = open(MNT "/p", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	/* Let the flusher requeue itself with the hour-long period. */
	usleep(1500 * 1000);
	memset(buf, 'q', sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, knob_u64("flush_period_ms", 100));
	t0 = now_ms();
	do {
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ((ssize_t)sizeof(buf), pinwbfs_read_store(fd, buf, sizeof(buf), 0));
		if (all_bytes(buf, sizeof(buf), 'q'))
			break;
		usleep(50 * 1000);
	} while (now_ms() - t0 < 5000);
	EXPECT_TRUE(all_bytes(buf, sizeof(buf), 'q')) TH_LOG("not flushed in 5 s");
	close(fd);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

static bool mounts_show(const char *what)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/mounts", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, MNT) && strstr(line, what))
			found = true;
	fclose(f);
	return found;
}

/* Remount applies policy= (shown in /proc/mounts), refuses mmwb, logs bad values. */
TEST(remount_applies_or_refuses)
{
	char *map, log[1 << 16];
	int dev, fd, h, n;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=naive"));
	EXPECT_TRUE(mounts_show("policy=naive"));
	ASSERT_EQ(0, mount("none", MNT, "pinwbfs", MS_REMOUNT, "policy=skip"));
	EXPECT_TRUE(mounts_show("policy=skip"));
	EXPECT_FALSE(mounts_show("mmwb"));
	/* What skip does: a pinned dirty folio makes fsync fail. */
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	map = create_mapped(_metadata, MNT "/r", psz, &fd);
	h = pinwb_pin_range(dev, map, psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	map[0] = 1;
	EXPECT_EQ(-1, fsync(fd));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	EXPECT_EQ(0, fsync(fd));
	munmap(map, psz);
	close(fd);
	close(dev);
	EXPECT_EQ(-1, mount("none", MNT, "pinwbfs", MS_REMOUNT, "mmwb"));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mount("none", MNT, "pinwbfs", MS_REMOUNT, "policy=bogus"));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(mounts_show("policy=skip"));
	EXPECT_EQ(0, umount(MNT));
	EXPECT_EQ(-1, mount("none", MNT, "pinwbfs", 0, "policy=bogus"));
	EXPECT_EQ(EINVAL, errno);
	n = klogctl(3, log, sizeof(log) - 1);
	ASSERT_LT(0, n);
	log[n] = 0;
	EXPECT_NE(NULL, strstr(log, "bad option 'policy=bogus'"));
	EXPECT_NE(NULL, strstr(log, "mmwb, cow, cow_fixup and blocks= cannot be changed on remount"));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* --- waits ---------------------------------------------------------------- */

struct syncer {
	int fd, ret;
	bool fs;
	long long done_ms;
};

static void *do_sync(void *arg)
{
	struct syncer *s = arg;

	s->ret = (s->fs ? syncfs(s->fd) : fsync(s->fd)) ? -errno : 0;
	s->done_ms = now_ms();
	return NULL;
}

/*
 * While fsync waits on one pinned folio, the file's other pages are not held
 * under writeback: write(2) to one and a pin of another return at once, and
 * the unpin that follows lets the fsync succeed.
 */
TEST(wait_holds_no_io_while_it_waits)
{
	struct syncer s = { 0 };
	pthread_t t;
	char *map, buf[64];
	long long t0;
	int dev, fd, h, h2;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 1000, 20000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=wait"));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	map = create_mapped(_metadata, MNT "/w", 4 * psz, &fd);
	memset(map, 'w', 4 * psz);
	/* The last page is pinned, so pages 0-2 are submitted before the wait. */
	h = pinwb_pin_range(dev, map + 3 * psz, psz, PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	s.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, do_sync, &s));
	usleep(500 * 1000);
	EXPECT_EQ(0, s.done_ms) TH_LOG("fsync did not wait");
	t0 = now_ms();
	memset(buf, 'v', sizeof(buf));
	EXPECT_EQ((ssize_t)sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	h2 = pinwb_pin_range(dev, map + psz, psz, PINWB_PIN_WRITE, NULL);
	EXPECT_LT(0, h2);
	/* Each needs one IO to complete at most (1 ms): 2 s is far from 20. */
	EXPECT_GT(2000, now_ms() - t0);
	EXPECT_EQ(0, s.done_ms);
	if (h2 > 0)
		ASSERT_EQ(0, pinwb_unpin_handle(dev, h2, 0));
	t0 = now_ms();
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	pthread_join(t, NULL);
	EXPECT_EQ(0, s.ret);
	EXPECT_GT(2000, s.done_ms - t0);
	ASSERT_EQ(0, fsync(fd));
	ASSERT_EQ((ssize_t)sizeof(buf), pinwbfs_read_store(fd, buf, sizeof(buf), 0));
	EXPECT_TRUE(all_bytes(buf, sizeof(buf), 'v'));
	munmap(map, 4 * psz);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/*
 * A pin of a folio under writeback returns only once its IO is done: a device
 * may write as soon as PIN returns, and must not write into a page under IO.
 * (pinwb_folios_wait_writeback() orders the pin against writepages's "not
 * pinned -> start writeback" without taking the folio lock.) The oracle is
 * the kernel's PG_writeback of the page, from /proc/kpageflags.
 */
static bool under_writeback(unsigned long long pfn)
{
	return pfn_kpageflags(pfn) & (1ULL << PINWB_KPF_WRITEBACK);
}

TEST(pin_waits_for_writeback_in_flight)
{
	struct syncer s = { 0 };
	unsigned long long pfn;
	pthread_t t;
	char *map;
	int dev, fd, h, i;

	if (access("/proc/kpageflags", R_OK))
		SKIP(return, "no /proc/kpageflags (CONFIG_PROC_PAGE_MONITOR)");
	/* One folio's IO takes io_delay_us: 1 s. No flusher. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 1000000, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, NULL));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	map = create_mapped(_metadata, MNT "/wb", psz, &fd);
	memset(map, 'a', psz);
	pfn = page_pfn(map);
	ASSERT_TRUE(pfn != 0);
	EXPECT_FALSE(under_writeback(pfn));
	s.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, do_sync, &s));
	for (i = 0; i < 500 && !under_writeback(pfn); i++)
		usleep(1000);
	ASSERT_TRUE(under_writeback(pfn))
		TH_LOG("the fsync never put the folio under writeback");
	h = pinwb_pin_range(dev, map, psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	EXPECT_FALSE(under_writeback(pfn))
		TH_LOG("PIN returned while its folio was still under writeback");
	pthread_join(t, NULL);
	EXPECT_EQ(0, s.ret);
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	munmap(map, psz);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* syncfs of several files waits wait_timeout_ms in all, not per file. */
TEST(wait_budget_is_per_sync)
{
	struct syncer s = { 0 };
	char *map[3];
	int dev, fd[3], h[3], i;
	long long t0;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 1000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=wait"));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	for (i = 0; i < 3; i++) {
		char name[64];

		snprintf(name, sizeof(name), MNT "/b%d", i);
		fd[i] = open(name, O_RDWR | O_CREAT, 0644);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, ftruncate(fd[i], psz));
		map[i] = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd[i], 0);
		ASSERT_NE(MAP_FAILED, map[i]);
		map[i][0] = 1;
		h[i] = pinwb_pin_range(dev, map[i], psz, PINWB_PIN_WRITE, NULL);
		ASSERT_LT(0, h[i]);
	}
	s.fd = fd[0];
	s.fs = true;
	t0 = now_ms();
	do_sync(&s);
	EXPECT_EQ(-ETIMEDOUT, s.ret);
	/* One budget: ~1 s; per file it would be 3 s. */
	EXPECT_LE(900, s.done_ms - t0);
	EXPECT_GT(2500, s.done_ms - t0);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pinwb_unpin_handle(dev, h[i], 0));
		munmap(map[i], psz);
		EXPECT_EQ(0, fsync(fd[i]));
		close(fd[i]);
	}
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/*
 * A wait on someone else's pin (gup_test's long-term pin, as RDMA's or
 * io_uring's) notices its release promptly, though nobody tells pinwb.
 */
TEST(wait_notices_a_foreign_release)
{
	struct pin_longterm_test p = { 0 };
	struct syncer s = { 0 };
	pthread_t t;
	char *map;
	long long t0;
	int gup, fd;

	gup = open("/sys/kernel/debug/gup_test", O_RDWR);
	if (gup < 0)
		SKIP(return, "no /sys/kernel/debug/gup_test (CONFIG_GUP_TEST)");
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 20000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=wait"));
	map = create_mapped(_metadata, MNT "/g", psz, &fd);
	map[0] = 1;
	p.addr = (unsigned long)map;
	p.size = psz;
	p.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE;
	ASSERT_EQ(0, ioctl(gup, PIN_LONGTERM_TEST_START, &p));
	s.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, do_sync, &s));
	usleep(500 * 1000);
	EXPECT_EQ(0, s.done_ms) TH_LOG("fsync did not wait for the foreign pin");
	t0 = now_ms();
	ASSERT_EQ(0, ioctl(gup, PIN_LONGTERM_TEST_STOP));
	pthread_join(t, NULL);
	EXPECT_EQ(0, s.ret);
	/* Polled every 16 ms at most: far below the 20 s budget. */
	EXPECT_GT(1000, s.done_ms - t0);
	munmap(map, psz);
	close(fd);
	close(gup);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* --- mainline, read-only pins, stamps --------------------------------------- */

static long long dma_run(int dev, int h, unsigned int flags, unsigned long long interval)
{
	struct pinwb_dma d = { .handle = h, .pattern = 'M', .interval_us = interval, .flags = flags };

	if (ioctl(dev, PINWB_IOC_DMA_START, &d))
		return -errno;
	return 0;
}

static long long dma_halt(int dev, int h)
{
	struct pinwb_dma d = { .handle = h };

	return ioctl(dev, PINWB_IOC_DMA_STOP, &d) ? -errno : (long long)d.passes;
}

/*
 * Kara's case: the device wrote into a clean pinned folio, the pin is kept,
 * fsync. mainline (7.3) writes only dirty folios: fsync returns 0 and the
 * device's bytes are gone once the cache is. naive persists them.
 */
static void karas_case(struct __test_metadata *_metadata, const char *policy, bool lost)
{
	char *map, *buf = malloc(psz);
	int dev, fd, h;
	long long t0;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, policy));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = open(MNT "/k", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	memset(buf, 'o', psz);
	ASSERT_EQ((ssize_t)psz, pwrite(fd, buf, psz, 0));
	ASSERT_EQ(0, fsync(fd));
	map = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ('o', map[0]);
	h = pinwb_pin_range(dev, map, psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	ASSERT_EQ(0, fsync(fd));	/* clean now: nothing dirty under the pin */
	ASSERT_EQ(0, dma_run(dev, h, 0, 1000));
	t0 = now_ms();
	while (((volatile char *)map)[0] == 'o' && now_ms() - t0 < 10000)
		usleep(1000);
	ASSERT_LT(0, dma_halt(dev, h));
	ASSERT_NE('o', map[0]);
	EXPECT_EQ(0, fsync(fd));
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	munmap(map, psz);
	drop_caches(_metadata);
	ASSERT_EQ((ssize_t)psz, pread(fd, buf, psz, 0));
	EXPECT_EQ(lost, all_bytes(buf, psz, 'o')) TH_LOG("%s", policy);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
	free(buf);
}

TEST(mainline_loses_device_writes_into_clean_pinned_folios)
{
	karas_case(_metadata, "policy=mainline", true);
}

TEST(naive_persists_device_writes_into_clean_pinned_folios)
{
	karas_case(_metadata, "policy=naive", false);
}

/* A read-only long-term pin cannot be written by a device: no EBUSY. */
TEST(read_only_pins_are_not_possibly_dirty)
{
	static const char *const policies[] = { "policy=skip", "policy=fail", "policy=wait" };
	char *map;
	int dev, fd, h, i;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pinwbfs_mount(MNT, policies[i]));
		dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, dev);
		map = create_mapped(_metadata, MNT "/ro", psz, &fd);
		h = pinwb_pin_range(dev, map, psz, PINWB_PIN_LONGTERM, NULL);
		ASSERT_LT(0, h);
		EXPECT_EQ(0, fsync(fd) ? -errno : 0) TH_LOG("%s, clean", policies[i]);
		map[0] = 'r';	/* a CPU store: written in place, a device cannot tear it */
		EXPECT_EQ(0, fsync(fd) ? -errno : 0) TH_LOG("%s, dirty", policies[i]);
		ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
		munmap(map, psz);
		close(fd);
		close(dev);
		EXPECT_EQ(0, umount(MNT));
	}
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* The device: bounded interval, prompt stop, 64-bit stamps. */
TEST(dma_interval_bounds_and_prompt_stop)
{
	char *buf = aligned_alloc(4096, 4 * 4096);
	unsigned long long *w = (unsigned long long *)buf;
	long long t0, passes;
	int dev, h;
	size_t i;

	ASSERT_NE(NULL, buf);
	memset(buf, 0, 4 * 4096);
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	h = pinwb_pin_range(dev, buf, 4 * 4096, PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	EXPECT_EQ(-EINVAL, dma_run(dev, h, 0, PINWB_DMA_MAX_INTERVAL_US + 1));
	EXPECT_EQ(-EINVAL, dma_run(dev, h, 0, ~0ULL));
	EXPECT_EQ(-EINVAL, dma_run(dev, h, 1U << 5, 100));
	/* The longest interval: a stop still returns at once. */
	ASSERT_EQ(0, dma_run(dev, h, PINWB_DMA_STAMP64, PINWB_DMA_MAX_INTERVAL_US));
	t0 = now_ms();
	while (!w[0] && now_ms() - t0 < 10000)
		usleep(1000);
	usleep(100 * 1000);
	t0 = now_ms();
	passes = dma_halt(dev, h);
	EXPECT_GT(300, now_ms() - t0);
	EXPECT_EQ(1, passes);
	for (i = 0; i < 4 * 4096 / 8; i++)
		ASSERT_EQ(PINWB_DMA_STAMP('M', 0), w[i]) TH_LOG("word %zu", i);
	/* The shortest: it sleeps between passes and stops. */
	ASSERT_EQ(0, dma_run(dev, h, PINWB_DMA_STAMP64, 0));
	usleep(200 * 1000);
	EXPECT_LT(1, dma_halt(dev, h));
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	close(dev);
	free(buf);
}

/* Unmount and unlink with pins still held: no splat, the pins release later. */
TEST(umount_and_unlink_while_pinned)
{
	struct pin_counters before;
	char *map;
	int dev, fd, h;

	pin_counters(&before);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=skip"));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	map = create_mapped(_metadata, MNT "/u", 2 * psz, &fd);
	memset(map, 'u', 2 * psz);
	h = pinwb_pin_range(dev, map, 2 * psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	ASSERT_EQ(0, dma_run(dev, h, 0, 100));
	ASSERT_EQ(0, unlink(MNT "/u"));
	munmap(map, 2 * psz);
	close(fd);
	/* skip kept the pinned pages dirty: they go with the inode, counted. */
	EXPECT_EQ(0, umount(MNT));
	usleep(50 * 1000);
	EXPECT_LE(0, dma_halt(dev, h));
	EXPECT_EQ(0, pinwb_unpin_handle(dev, h, PINWB_UNPIN_DIRTY));
	close(dev);
	ASSERT_NOTHING_LEAKED(&before);
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* --- size ----------------------------------------------------------------- */

static unsigned long env_mb(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v ? strtoul(v, NULL, 10) : dflt;
}

static void write_big(struct __test_metadata *_metadata, int fd, size_t bytes, char c)
{
	size_t chunk = 1 << 20, done;
	char *buf = malloc(chunk);

	ASSERT_NE(NULL, buf);
	memset(buf, c, chunk);
	for (done = 0; done < bytes; done += chunk)
		ASSERT_EQ((ssize_t)chunk, pwrite(fd, buf, chunk, done));
	free(buf);
}

/*
 * Writeback is batched: a file of PINWB_LARGE_MB (2048) dirty fsyncs, and one
 * of PINWB_LARGE_PINNED_MB (1024) long-term pinned under bounce, with at most
 * IO_BATCH (64) folios in flight; no splat (vm.sh scans the log).
 */
/* Tests that need more than the harness's 30 s on the debug kernel. */
FIXTURE(slow) {};
FIXTURE_SETUP(slow) {}
FIXTURE_TEARDOWN(slow) {}

TEST_F_TIMEOUT(slow, large_files_fsync_in_bounded_batches, 1500)
{
	size_t big = env_mb("PINWB_LARGE_MB", 2048) << 20;
	size_t pinned = env_mb("PINWB_LARGE_PINNED_MB", 1024) << 20;
	char probe[4096];
	char *map;
	int dev, fd, h;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 5000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=bounce"));
	fd = open(MNT "/big", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	write_big(_metadata, fd, big, 'B');
	EXPECT_EQ(0, fsync(fd) ? -errno : 0);
	ASSERT_EQ((ssize_t)sizeof(probe), pinwbfs_read_store(fd, probe, sizeof(probe), big - 4096));
	EXPECT_TRUE(all_bytes(probe, sizeof(probe), 'B'));
	close(fd);
	ASSERT_EQ(0, unlink(MNT "/big"));

	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = open(MNT "/pinned", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, pinned));
	map = mmap(NULL, pinned, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	h = pinwb_pin_range(dev, map, pinned, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	memset(map, 'P', pinned);
	EXPECT_EQ(0, fsync(fd) ? -errno : 0);
	ASSERT_EQ((ssize_t)sizeof(probe),
		  pinwbfs_read_store(fd, probe, sizeof(probe), pinned - 4096));
	EXPECT_TRUE(all_bytes(probe, sizeof(probe), 'P'));
	EXPECT_GE(64ULL, pinwb_debugfs_u64("io_inflight_peak"));
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	munmap(map, pinned);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
}

/* --- the shadow model ------------------------------------------------------ */

#define SHADOW_PAGES	48

static unsigned int rnd_state = 12345;

static unsigned int rnd(unsigned int n)
{
	rnd_state = rnd_state * 1103515245 + 12345;
	return (rnd_state >> 8) % n;
}

/*
 * Random write/pwrite, mmap stores, truncate down and up (holes), fsync,
 * pins and unpins with and without DIRTY, against a userspace shadow of the
 * file: after every fsync that succeeded the store must equal the shadow,
 * and after dropping the cache so must every read.
 */
static void shadow_run(struct __test_metadata *_metadata, const char *opts, int ops)
{
	size_t max = SHADOW_PAGES * psz, size = 0;
	char *shadow = calloc(1, max), *got = malloc(max), *buf = malloc(max);
	char *map;
	int dev, fd, h[4] = { 0 }, i, checks = 0;

	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 2000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, opts));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = open(MNT "/shadow", O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	map = mmap(NULL, max, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (i = 0; i < ops; i++) {
		unsigned int op = rnd(100);
		size_t off = rnd(max), len = 1 + rnd(3 * psz), k;

		if (op < 30) {			/* pwrite, extending or not */
			len = off + len > max ? max - off : len;
			for (k = 0; k < len; k++)
				buf[k] = (char)rnd(256);
			ASSERT_EQ((ssize_t)len, pwrite(fd, buf, len, off));
			memcpy(shadow + off, buf, len);
			if (off + len > size)
				size = off + len;
		} else if (op < 50 && size) {	/* stores through the mapping */
			off = rnd(size);
			len = off + len > size ? size - off : len;
			if (rnd(2))
				(void)*(volatile char *)(map + off);	/* load first: no write fault */
			for (k = 0; k < len; k++)
				map[off + k] = shadow[off + k] = (char)rnd(256);
		} else if (op < 60) {		/* truncate, down or up */
			size_t to = rnd(max + 1);
			int j;

			for (j = 0; j < 4; j++)	/* pins of cut pages would orphan them */
				if (h[j]) {
					ASSERT_EQ(0, pinwb_unpin_handle(dev, h[j], 0));
					h[j] = 0;
				}
			ASSERT_EQ(0, ftruncate(fd, to));
			if (to < size)
				memset(shadow + to, 0, size - to);
			size = to;
		} else if (op < 70 && size >= psz) {	/* pin a range the file covers */
			int j = rnd(4);
			size_t pages = size / psz, first = rnd(pages), n = 1 + rnd(pages - first);
			unsigned int flags = rnd(2) ? PINWB_PIN_WRITE : 0;

			/*
			 * Pins that every fsync gets past: auto waits for short-term
			 * pins for writing (they would time out here), mmwb refuses
			 * long-term ones for writing.
			 */
			if (strstr(opts, "auto") && (flags & PINWB_PIN_WRITE))
				flags |= PINWB_PIN_LONGTERM;
			else if (!(flags & PINWB_PIN_WRITE) && rnd(2))
				flags |= PINWB_PIN_LONGTERM;
			if (h[j])
				ASSERT_EQ(0, pinwb_unpin_handle(dev, h[j], rnd(2) ? PINWB_UNPIN_DIRTY : 0));
			h[j] = pinwb_pin_range(dev, map + first * psz, n * psz, flags, NULL);
			ASSERT_LT(0, h[j]);
		} else if (op < 80) {		/* unpin, with or without DIRTY */
			int j = rnd(4);

			if (h[j])
				ASSERT_EQ(0, pinwb_unpin_handle(dev, h[j], rnd(2) ? PINWB_UNPIN_DIRTY : 0));
			h[j] = 0;
		} else {			/* sync, then check the store and the reads */
			int ret = fsync(fd) ? -errno : 0;

			EXPECT_EQ(0, ret) TH_LOG("op %d", i);
			if (ret)
				continue;
			ASSERT_EQ((ssize_t)size, pinwbfs_read_store(fd, got, max, 0));
			ASSERT_EQ(0, memcmp(got, shadow, size)) TH_LOG("store, op %d", i);
			if (rnd(3) == 0) {
				drop_caches(_metadata);
				ASSERT_EQ((ssize_t)size, pread(fd, got, max, 0));
				ASSERT_EQ(0, memcmp(got, shadow, size)) TH_LOG("read, op %d", i);
			}
			checks++;
		}
	}
	for (i = 0; i < 4; i++)
		if (h[i])
			ASSERT_EQ(0, pinwb_unpin_handle(dev, h[i], 0));
	ASSERT_EQ(0, fsync(fd));
	drop_caches(_metadata);
	ASSERT_EQ((ssize_t)size, pread(fd, got, max, 0));
	ASSERT_EQ(0, memcmp(got, shadow, size));
	EXPECT_LT(ops / 20, checks);
	munmap(map, max);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_EQ(0, pinwb_writeback_knobs_default());
	free(shadow);
	free(got);
	free(buf);
}

TEST_F_TIMEOUT(slow, shadow_model_mainline, 300)
{
	psz = sysconf(_SC_PAGESIZE);
	shadow_run(_metadata, "policy=mainline", 1500);
}

TEST_F_TIMEOUT(slow, shadow_model_auto, 300)
{
	psz = sysconf(_SC_PAGESIZE);
	shadow_run(_metadata, "policy=auto", 1500);
}

TEST_F_TIMEOUT(slow, shadow_model_bounce_mmwb, 300)
{
	psz = sysconf(_SC_PAGESIZE);
	shadow_run(_metadata, "policy=bounce,mmwb", 1500);
}

int main(int argc, char **argv)
{
	psz = sysconf(_SC_PAGESIZE);
	pinwb_skip_unless_loaded(argc, argv, true);
	return test_harness_run(argc, argv);
}
