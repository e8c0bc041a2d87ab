// SPDX-License-Identifier: GPL-2.0
/*
 * pinwbfs: writeback of pinned folios under each policy, with and without
 * the simulated DMA writer; what is persisted in the backing store.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT	"/tmp/pinwbfs"
#define NPAGES	8
#define PINNED	4	/* pages 2..5 of the file are pinned */

static size_t psz;

static unsigned long long ctr(const char *name)
{
	return pinwb_debugfs_u64(name);
}

static int dma_start(int dev, int handle, unsigned int pattern)
{
	struct pinwb_dma d = { .handle = handle, .pattern = pattern, .interval_us = 20 };

	return ioctl(dev, PINWB_IOC_DMA_START, &d) ? -errno : 0;
}

/*
 * Starts the device and returns once its first bytes are visible at @watch
 * (which held @before): under TCG the writer's work item may take a while to
 * run, and a test must not sync before the device wrote anything.
 */
static int dma_start_seen(int dev, int handle, unsigned int pattern, volatile char *watch,
			  char before)
{
	int ret = dma_start(dev, handle, pattern), i;

	if (ret)
		return ret;
	/*
	 * Decide on the read that saw the change: the writer cycles through
	 * all 256 byte values, so a second read may find @before again.
	 */
	for (i = 0; i < 20000; i++) {
		if (*watch != before)
			return 0;
		usleep(500);
	}
	return -ETIMEDOUT;
}

static long long dma_stop(int dev, int handle)
{
	struct pinwb_dma d = { .handle = handle };

	return ioctl(dev, PINWB_IOC_DMA_STOP, &d) ? -errno : (long long)d.passes;
}

/* --- the policy matrix ------------------------------------------------------- */

FIXTURE(policy)
{
	int dev, fd;
	char *map;
	struct pin_counters before;
};

PINWB_POLICY_VARIANTS(policy);
FIXTURE_VARIANT_ADD(policy, mainline) { .name = "mainline" };
/*
 * The same policies on mmwb mounts, the disk-filesystem configuration:
 * write-notify, a writeback-capable bdi, and mm refusing R/W long-term pins.
 */
FIXTURE_VARIANT_ADD(policy, mainline_mmwb) { .name = "mainline,mmwb" };
FIXTURE_VARIANT_ADD(policy, naive_mmwb) { .name = "naive,mmwb" };
FIXTURE_VARIANT_ADD(policy, skip_mmwb) { .name = "skip,mmwb" };
FIXTURE_VARIANT_ADD(policy, wait_mmwb) { .name = "wait,mmwb" };
FIXTURE_VARIANT_ADD(policy, bounce_mmwb) { .name = "bounce,mmwb" };
FIXTURE_VARIANT_ADD(policy, fail_mmwb) { .name = "fail,mmwb" };
FIXTURE_VARIANT_ADD(policy, auto_mmwb) { .name = "auto,mmwb" };
FIXTURE_VARIANT_ADD(policy, direct_mmwb) { .name = "direct,mmwb" };
FIXTURE_VARIANT_ADD(policy, defer_mmwb) { .name = "defer,mmwb" };

/* The variant's policy is @name, and whether it is an mmwb mount. */
static bool is_policy(const char *variant, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(variant, name, n) && (!variant[n] || variant[n] == ',');
}

static bool is_mmwb(const char *variant)
{
	return strstr(variant, ",mmwb");
}

FIXTURE_SETUP(policy)
{
	char opts[64];

	psz = sysconf(_SC_PAGESIZE);
	/* The flusher only when kicked; IO slow enough for a device to tear it. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 3000, 300));
	snprintf(opts, sizeof(opts), "policy=%s", variant->name);
	ASSERT_EQ(0, pinwbfs_mount(MNT, opts));
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	self->fd = open(MNT "/f", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, NPAGES * psz));
	self->map = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	memset(self->map, 'a', NPAGES * psz);
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(policy)
{
	munmap(self->map, NPAGES * psz);
	close(self->fd);
	close(self->dev);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

struct outcome {
	int ret;			/* fsync result (-errno), 0 for a kick */
	int pin;			/* the pin's result: 0, or -errno (then nothing ran) */
	unsigned long long torn, skipped, bounced, waited, timeouts, written, direct, deferred;
};

static void run_case(struct __test_metadata *_metadata, FIXTURE_DATA(policy) *self,
		     bool mmwb, bool integrity, bool longterm, bool dma, struct outcome *o)
{
	unsigned long long t0 = ctr("torn_writes"), s0 = ctr("skipped"), b0 = ctr("bounced");
	unsigned long long w0 = ctr("waited"), to0 = ctr("wait_timeouts"), f0 = ctr("folios_written");
	unsigned long long d0 = ctr("direct_writes"), df0 = ctr("deferred");
	unsigned int flags = PINWB_PIN_WRITE | (longterm ? PINWB_PIN_LONGTERM : 0);
	int h;

	h = pinwb_pin_range(self->dev, self->map + 2 * psz, PINNED * psz, flags, NULL);
	o->pin = h < 0 ? h : 0;
	if (h < 0)
		return;
	/* Dirty every page, pinned or not, through the CPU. */
	memset(self->map, 'b', NPAGES * psz);
	if (dma) {
		ASSERT_EQ(0, dma_start_seen(self->dev, h, 'A', self->map + 2 * psz, 'b'));
	}
	if (integrity) {
		o->ret = fsync(self->fd) ? -errno : 0;
	} else if (mmwb) {
		/* Cleaning writeback through the kernel's own path (WB_SYNC_NONE). */
		o->ret = sync_file_range(self->fd, 0, 0, SYNC_FILE_RANGE_WRITE) ? -errno : 0;
	} else {
		ASSERT_EQ(0, pinwb_knob("flush_kick", "1"));
		o->ret = 0;
	}
	if (dma)
		ASSERT_LT(0, dma_stop(self->dev, h));
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, dma ? PINWB_UNPIN_DIRTY : 0));
	o->torn = ctr("torn_writes") - t0;
	o->skipped = ctr("skipped") - s0;
	o->bounced = ctr("bounced") - b0;
	o->waited = ctr("waited") - w0;
	o->timeouts = ctr("wait_timeouts") - to0;
	o->written = ctr("folios_written") - f0;
	o->direct = ctr("direct_writes") - d0;
	o->deferred = ctr("deferred") - df0;
	/* Whatever the policy did, a sync with nothing pinned persists everything. */
	ASSERT_EQ(0, fsync(self->fd));
}

TEST_F(policy, matrix)
{
	const char *p = variant->name;
	bool mmwb = is_mmwb(p);
	bool naive = is_policy(p, "naive") || is_policy(p, "mainline");	/* in place */
	bool skip = is_policy(p, "skip"), wait = is_policy(p, "wait");
	bool bounce = is_policy(p, "bounce"), fail = is_policy(p, "fail"), autop = is_policy(p, "auto");
	bool direct = is_policy(p, "direct"), defer = is_policy(p, "defer");
	int i;

	for (i = 0; i < 8; i++) {
		bool integrity = i & 1, longterm = i & 2, dma = i & 4;
		struct outcome o;
		int want_ret = 0;

		run_case(_metadata, self, mmwb, integrity, longterm, dma, &o);
		/* mm/gup.c: writable_file_mapping_allowed() refuses R/W long-term pins. */
		if (mmwb && longterm) {
			EXPECT_EQ(-EFAULT, o.pin);
			continue;
		}
		ASSERT_EQ(0, o.pin);
		TH_LOG("%s %s %s dma=%d: ret %d torn %llu skipped %llu bounced %llu waited %llu "
		       "timeouts %llu written %llu direct %llu deferred %llu", p,
		       integrity ? "fsync" : "kick", longterm ? "longterm" : "shortterm", dma, o.ret,
		       o.torn, o.skipped, o.bounced, o.waited, o.timeouts, o.written, o.direct,
		       o.deferred);

		/* The bug, reproduced: only naive writes a folio while a device writes it. */
		if (naive && dma) {
			EXPECT_LT(0ULL, o.torn);
		} else {
			EXPECT_EQ(0ULL, o.torn);
		}

		if (integrity) {
			if (skip || (fail && longterm))
				want_ret = -EBUSY;
			else if (wait || ((fail || autop || direct) && !longterm))
				want_ret = -ETIMEDOUT;	/* the pin outlives wait_timeout_ms */
		}
		EXPECT_EQ(want_ret, o.ret);

		/* Unpinned pages are always written. */
		EXPECT_LE((unsigned long long)(NPAGES - PINNED), o.written);
		if (naive) {
			EXPECT_EQ(0ULL, o.skipped + o.bounced + o.waited);
		}
		if (bounce || (autop && integrity && longterm)) {
			EXPECT_EQ((unsigned long long)PINNED, o.bounced);
		} else {
			EXPECT_EQ(0ULL, o.bounced);
		}
		if (want_ret == -ETIMEDOUT) {
			EXPECT_LE(1ULL, o.timeouts);
		}
		/* direct: written from the pinned pages at fsync, never when cleaning. */
		if (direct && integrity && longterm) {
			EXPECT_EQ((unsigned long long)PINNED, o.direct);
		} else {
			EXPECT_EQ(0ULL, o.direct);
		}
		/* defer: never written while pinned, and no error. */
		if (defer) {
			EXPECT_EQ((unsigned long long)PINNED, o.deferred);
			EXPECT_EQ(0ULL, o.skipped);
		} else {
			EXPECT_EQ(0ULL, o.deferred);
		}
		if (!integrity && !naive && !bounce && !defer) {
			EXPECT_EQ((unsigned long long)PINNED, o.skipped);
		}
	}
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * Seed 004: RDMA into an mmaped file, transfer complete, pages still pinned,
 * fsync. The device never dirtied the folios; the policies that claim to
 * persist data must write them anyway; skip and fail must say they did not.
 */
TEST_F(policy, fsync_persists_device_writes_into_pinned_folios)
{
	char *store = malloc(PINNED * psz);
	const char *p = variant->name;
	bool mmwb = is_mmwb(p), mainline = is_policy(p, "mainline");
	/*
	 * mmwb refuses R/W long-term pins: the same case with a short-term pin
	 * held across the sync, which wait, fail and auto wait for.
	 */
	bool persists = is_policy(p, "naive") || is_policy(p, "bounce") ||
			((is_policy(p, "auto") || is_policy(p, "direct")) && !mmwb) || mainline;
	int h, ret, want;

	ASSERT_NE(NULL, store);
	ASSERT_EQ(0, fsync(self->fd));		/* 'a' everywhere, clean */
	h = pinwb_pin_range(self->dev, self->map + 2 * psz, PINNED * psz,
			    PINWB_PIN_WRITE | (mmwb ? 0 : PINWB_PIN_LONGTERM), NULL);
	ASSERT_LT(0, h);
	/*
	 * A transfer, complete, the pin kept. The device's byte cycles through all
	 * values: repeat until its last pass left something the store does not hold.
	 */
	do {
		ASSERT_EQ(0, dma_start_seen(self->dev, h, 'D', self->map + 2 * psz, 'a'));
		usleep(2000);
		ASSERT_LT(0, dma_stop(self->dev, h));
	} while (self->map[2 * psz] == 'a');

	ret = fsync(self->fd) ? -errno : 0;
	ASSERT_EQ((ssize_t)(PINNED * psz), pinwbfs_read_store(self->fd, store, PINNED * psz, 2 * psz));
	if (persists) {
		/*
		 * mainline too, here: the pin's write fault dirtied the folios, so
		 * 7.3 writes them. It loses the device's bytes only when a sync
		 * cleaned them after the pin (pinwbfs_core_test: Kara's case).
		 */
		EXPECT_EQ(0, ret);
		EXPECT_EQ(0, memcmp(store, self->map + 2 * psz, PINNED * psz));
	} else {
		/*
		 * skip, fail: an error, not a false success; the waits time out with the
		 * pin held; defer: success without the pinned data (its rule: written
		 * after the unpin).
		 */
		want = is_policy(p, "skip") || (is_policy(p, "fail") && !mmwb) ? -EBUSY : -ETIMEDOUT;
		if (is_policy(p, "defer"))
			want = 0;
		EXPECT_EQ(want, ret);
		EXPECT_NE(0, memcmp(store, self->map + 2 * psz, PINNED * psz));
	}
	/* Nothing lost: once the pin goes (as a driver would: dirty), fsync persists it. */
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, PINWB_UNPIN_DIRTY));
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ((ssize_t)(PINNED * psz), pinwbfs_read_store(self->fd, store, PINNED * psz, 2 * psz));
	EXPECT_EQ(0, memcmp(store, self->map + 2 * psz, PINNED * psz));
	free(store);
	ASSERT_NOTHING_LEAKED(&self->before);
}

struct fsync_thread {
	int fd, ret;
	pthread_t th;
};

static void *do_fsync(void *arg)
{
	struct fsync_thread *t = arg;

	t->ret = fsync(t->fd) ? -errno : 0;
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* wait: the unpin wakes the waiting fsync through the wait queue, long before the timeout. */
TEST(wait_is_woken_by_unpin_and_interruptible)
{
	struct { int dev, fd; char *map; struct pin_counters before; } s, *self = &s;
	struct fsync_thread t;
	struct timespec a, b;
	unsigned long long to0 = ctr("wait_timeouts");
	double secs;
	int h;

	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=wait"));
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	self->fd = open(MNT "/w", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, psz));
	self->map = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	pin_counters(&self->before);
	t.fd = self->fd;
	ASSERT_EQ(0, pinwb_knob("wait_timeout_ms", "10000"));
	h = pinwb_pin_range(self->dev, self->map, psz, PINWB_PIN_WRITE | PINWB_PIN_LONGTERM, NULL);
	ASSERT_LT(0, h);
	self->map[0] = 'w';
	clock_gettime(CLOCK_MONOTONIC, &a);
	ASSERT_EQ(0, pthread_create(&t.th, NULL, do_fsync, &t));
	usleep(200000);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	ASSERT_EQ(0, pthread_join(t.th, NULL));
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = b.tv_sec - a.tv_sec + (b.tv_nsec - a.tv_nsec) / 1e9;
	EXPECT_EQ(0, t.ret);
	EXPECT_GT(2.0, secs) TH_LOG("fsync took %.3f s", secs);
	EXPECT_EQ(to0, ctr("wait_timeouts"));

	/* A signal interrupts the wait: EINTR, the folio stays dirty. */
	signal(SIGUSR1, on_usr1);
	h = pinwb_pin_range(self->dev, self->map, psz, PINWB_PIN_WRITE | PINWB_PIN_LONGTERM, NULL);
	ASSERT_LT(0, h);
	self->map[0] = 'x';
	ASSERT_EQ(0, pthread_create(&t.th, NULL, do_fsync, &t));
	/*
	 * A signal that arrives before fsync waits only runs the handler: send
	 * one every 200 ms until the fsync returns (on a slow kernel it may take
	 * longer than that to start waiting).
	 */
	do {
		usleep(200000);
		pthread_kill(t.th, SIGUSR1);
	} while (pthread_tryjoin_np(t.th, NULL) == EBUSY);
	EXPECT_EQ(-EINTR, t.ret);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	ASSERT_EQ(0, fsync(self->fd));
	pinwb_writeback_knobs_default();
	munmap(self->map, psz);
	close(self->fd);
	close(self->dev);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* --- nothing lost: plain writes, mmap stores, the load-then-store trap -------- */

FIXTURE(fs)
{
	int fd;
};

FIXTURE_SETUP(fs)
{
	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=auto"));
	self->fd = open(MNT "/g", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(fs)
{
	close(self->fd);
	EXPECT_EQ(0, umount(MNT));
}

static void expect_store_equals(struct __test_metadata *_metadata, int fd, const char *want,
				size_t len)
{
	char *got = malloc(len);
	size_t i;

	ASSERT_NE(NULL, got);
	ASSERT_EQ((ssize_t)len, pinwbfs_read_store(fd, got, len, 0));
	for (i = 0; i < len && got[i] == want[i]; i++)
		;
	EXPECT_EQ(len, i) TH_LOG("first difference at byte %zu", i);
	free(got);
}

TEST_F(fs, write_fsync_persists_and_survives_drop_caches)
{
	char buf[3 * 4096 + 100], back[sizeof(buf)];
	size_t i;
	int dc;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7);
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(self->fd, buf, sizeof(buf), 0));
	/* Not persisted before a sync (the flusher is periodic; stop it for this). */
	ASSERT_EQ(0, fsync(self->fd));
	expect_store_equals(_metadata, self->fd, buf, sizeof(buf));
	/* Drop the page cache: reads now come from the backing store (read_folio). */
	dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
	ASSERT_LE(0, dc);
	ASSERT_EQ(1, write(dc, "3", 1));
	close(dc);
	ASSERT_EQ((ssize_t)sizeof(back), pread(self->fd, back, sizeof(back), 0));
	EXPECT_EQ(0, memcmp(buf, back, sizeof(buf)));
	/* A partial overwrite of a page read back from the store keeps the rest. */
	ASSERT_EQ(3, pwrite(self->fd, "xyz", 3, 4096 + 10));
	memcpy(buf + 4096 + 10, "xyz", 3);
	ASSERT_EQ(0, fdatasync(self->fd));
	expect_store_equals(_metadata, self->fd, buf, sizeof(buf));
	/* Truncation reaches the store. */
	ASSERT_EQ(0, ftruncate(self->fd, 100));
	ASSERT_EQ(0, ftruncate(self->fd, sizeof(buf)));
	memset(buf + 100, 0, sizeof(buf) - 100);
	expect_store_equals(_metadata, self->fd, buf, sizeof(buf));
}

TEST_F(fs, mmap_stores_are_never_lost)
{
	size_t len = 4 * psz;
	char *want = calloc(1, len), *map;
	volatile char sink;

	ASSERT_NE(NULL, want);
	ASSERT_EQ(0, ftruncate(self->fd, len));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);

	/* Store first: the write fault dirties the folio. */
	map[0] = 's';
	want[0] = 's';
	/* Load first, then store: no fault on the store, only the PTE's dirty bit. */
	sink = map[psz];
	(void)sink;
	map[psz] = 'l';
	want[psz] = 'l';
	ASSERT_EQ(0, msync(map, len, MS_SYNC));
	expect_store_equals(_metadata, self->fd, want, len);

	/* Stores after a completed writeback must fault again and be persisted. */
	map[0] = 'S';
	map[psz + 1] = 'L';
	map[3 * psz] = 'T';
	want[0] = 'S';
	want[psz + 1] = 'L';
	want[3 * psz] = 'T';
	ASSERT_EQ(0, fsync(self->fd));
	expect_store_equals(_metadata, self->fd, want, len);

	/* The cleaning flusher finds them too. */
	map[2 * psz] = 'K';
	want[2 * psz] = 'K';
	ASSERT_EQ(0, pinwb_knob("flush_kick", "1"));
	expect_store_equals(_metadata, self->fd, want, len);

	/* syncfs(2) */
	map[2 * psz + 1] = 'Y';
	want[2 * psz + 1] = 'Y';
	ASSERT_EQ(0, syncfs(self->fd));
	expect_store_equals(_metadata, self->fd, want, len);
	munmap(map, len);
	free(want);
}

/* The periodic cleaning flusher writes without being asked. */
TEST_F(fs, periodic_flusher)
{
	char got[4];
	int i;

	ASSERT_EQ(0, pinwb_knob("flush_period_ms", "50"));
	ASSERT_EQ(4, pwrite(self->fd, "tick", 4, 0));
	/* Within 10 s (a period is 50 ms; the margin is for slow debug kernels). */
	for (i = 0; i < 500; i++) {
		usleep(20000);
		ASSERT_EQ(4, pinwbfs_read_store(self->fd, got, 4, 0));
		if (!memcmp(got, "tick", 4))
			break;
	}
	EXPECT_EQ(0, memcmp(got, "tick", 4));
	pinwb_writeback_knobs_default();
}

TEST(read_store_errors)
{
	struct pinwbfs_read_store r = { 0 };
	char buf[16];
	int fd;

	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwbfs_mount(MNT, NULL));
	fd = open(MNT "/h", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	r.buf = (unsigned long)buf;
	r.len = sizeof(buf);
	r.reserved[1] = 1;
	EXPECT_EQ(-1, ioctl(fd, PINWBFS_IOC_READ_STORE, &r));
	EXPECT_EQ(EINVAL, errno);
	r.reserved[1] = 0;
	r.offset = ~0ULL;
	EXPECT_EQ(-1, ioctl(fd, PINWBFS_IOC_READ_STORE, &r));
	EXPECT_EQ(EINVAL, errno);
	/* Clamped to the file size: nothing to copy from an empty file. */
	r.offset = 0;
	EXPECT_EQ(0, ioctl(fd, PINWBFS_IOC_READ_STORE, &r));
	ASSERT_EQ((ssize_t)sizeof(buf), pwrite(fd, buf, sizeof(buf), 0));
	r.buf = 1;
	EXPECT_EQ(-1, ioctl(fd, PINWBFS_IOC_READ_STORE, &r));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(fd, _IO(PINWB_IOC_MAGIC, 0x41)));
	EXPECT_EQ(ENOTTY, errno);
	/* Unknown mount options and policies are refused. */
	EXPECT_EQ(-EINVAL, mount("none", "/tmp", "pinwbfs", 0, "policy=bogus") ? -errno : 0);
	EXPECT_EQ(-EINVAL, mount("none", "/tmp", "pinwbfs", 0, "frobnicate") ? -errno : 0);
	close(fd);
	EXPECT_EQ(0, umount(MNT));
}

/* --- the simulated device's own errors ------------------------------------------ */

TEST(dma_errors)
{
	char *buf = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC), ro, rw;
	struct pinwb_dma d = { 0 };

	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_LE(0, dev);
	memset(buf, 1, 2 * 4096);
	ro = pinwb_pin_range(dev, buf, 4096, PINWB_PIN_LONGTERM, NULL);
	rw = pinwb_pin_range(dev, buf, 2 * 4096, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, ro);
	ASSERT_LT(0, rw);
	EXPECT_EQ(-EINVAL, dma_start(dev, ro, 0));	/* not pinned for writing */
	EXPECT_EQ(-ENOENT, dma_start(dev, 999, 0));
	EXPECT_EQ(-ESRCH, dma_stop(dev, rw));		/* none running */
	d.handle = rw;
	d.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(dev, PINWB_IOC_DMA_START, &d));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, dma_start(dev, rw, 0x10));
	EXPECT_EQ(-EBUSY, dma_start(dev, rw, 0x10));
	/* The device writes behind the page tables; the CPU sees it. */
	EXPECT_LE(0, dma_stop(dev, rw));	/* possibly before its first pass */
	EXPECT_EQ(0, dma_start_seen(dev, rw, 0x10, buf, buf[0]));
	/* Unpinning stops it; close would too. */
	EXPECT_EQ(0, pinwb_unpin_handle(dev, rw, 0));
	ro = pinwb_pin_range(dev, buf, 4096, PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, ro);
	EXPECT_EQ(0, dma_start(dev, ro, 0x20));
	close(dev);	/* with a writer running */
	munmap(buf, 2 * 4096);
}

/* --- mmwb: a writeback-capable bdi, as mainline sees it --------------------------- */

TEST(mmwb_refuses_rw_longterm_pins_and_kernel_fsync_reaches_writepages)
{
	int dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC), fd, h;
	unsigned long long all0;
	char *map, got[8];

	psz = sysconf(_SC_PAGESIZE);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, pinwbfs_mount(MNT, "mmwb,policy=auto"));
	fd = open(MNT "/m", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4 * psz));
	map = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	memset(map, 'm', 4 * psz);
	/* mm: vma_needs_dirty_tracking() -> no R/W FOLL_LONGTERM. */
	EXPECT_EQ(-EFAULT, pinwb_pin_range(dev, map, 4 * psz,
					    PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL));
	EXPECT_EQ(-EFAULT, pinwb_pin_range(dev, map, 4 * psz,
					    PINWB_PIN_LONGTERM | PINWB_PIN_WRITE | PINWB_PIN_FAST, NULL));
	/* Short-term, and long-term read-only, are allowed. */
	h = pinwb_pin_range(dev, map, 4 * psz, PINWB_PIN_WRITE, NULL);
	EXPECT_LT(0, h);
	EXPECT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	h = pinwb_pin_range(dev, map, 4 * psz, PINWB_PIN_LONGTERM, NULL);
	EXPECT_LT(0, h);
	EXPECT_EQ(0, pinwb_unpin_handle(dev, h, 0));
	/* fsync goes through file_write_and_wait_range() -> do_writepages(). */
	all0 = ctr("writepages_all");
	map[5] = 'M';
	ASSERT_EQ(0, fsync(fd));
	EXPECT_LT(all0, ctr("writepages_all"));
	ASSERT_EQ(8, pinwbfs_read_store(fd, got, 8, 0));
	EXPECT_EQ('M', got[5]);
	munmap(map, 4 * psz);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
}

PINWB_HARNESS_MAIN(true)
