// SPDX-License-Identifier: GPL-2.0
/*
 * The proposals of the upstream threads that pinwb runs beside Kara's skip,
 * wait and bounce and Hellwig's fail (Documentation/pinwb.rst, "Writeback
 * policies" and "The fsync contract"):
 *
 * - direct (Hellwig, seed 004): a long-term pinned folio is written at fsync
 *   straight from the pinned page, and left alone by cleaning writeback;
 * - defer (Wilcox, 2023): a pinned folio is never written while pinned and
 *   stays dirty, so the first sync after the unpin persists it;
 * - Kara's denial of service (seed 004): short-term pins taken again and
 *   again cannot keep a waiting fsync from returning: one wait budget per
 *   sync bounds it;
 * - a device that does not pin (Weiny, seed 002): PINWB_PIN_MIRROR, an
 *   mmu_interval_notifier and hmm_range_fault() instead of a pin;
 *
 * The oracle is the backing store read back with PINWBFS_IOC_READ_STORE,
 * compared with the page cache as the device left it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT	"/tmp/pinwbfs_proposals"
#define NPAGES	4

static size_t psz;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

FIXTURE(prop)
{
	int dev, fd;
	char *map, *store;
	struct pin_counters before;
};

FIXTURE_VARIANT(prop) { const char *opts; };
FIXTURE_VARIANT_ADD(prop, direct) { .opts = "policy=direct" };
FIXTURE_VARIANT_ADD(prop, defer) { .opts = "policy=defer" };

FIXTURE_SETUP(prop)
{
	psz = sysconf(_SC_PAGESIZE);
	/* The flusher only when kicked; a short wait budget. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
	ASSERT_EQ(0, pinwbfs_mount(MNT, variant->opts));
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	self->fd = open(MNT "/f", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, NPAGES * psz));
	self->map = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->store = malloc(NPAGES * psz);
	ASSERT_NE(NULL, self->store);
	memset(self->map, 'a', NPAGES * psz);
	ASSERT_EQ(0, fsync(self->fd));
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(prop)
{
	free(self->store);
	munmap(self->map, NPAGES * psz);
	close(self->fd);
	close(self->dev);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

/* Whether the store holds exactly what the page cache holds. */
static bool store_is_cache(struct __test_metadata *_metadata, FIXTURE_DATA(prop) *self)
{
	ssize_t n = pinwbfs_read_store(self->fd, self->store, NPAGES * psz, 0);

	EXPECT_EQ((ssize_t)(NPAGES * psz), n);
	return n == (ssize_t)(NPAGES * psz) && !memcmp(self->store, self->map, NPAGES * psz);
}

/* The simulated device writes one pass of @pattern into pin @h, then stops. */
static void device_pass(struct __test_metadata *_metadata, int dev, int h, char *watch, char old)
{
	struct pinwb_dma d = { .handle = h, .pattern = 'D', .interval_us = 1000 };
	long long t0 = now_ms();

	ASSERT_EQ(0, ioctl(dev, PINWB_IOC_DMA_START, &d));
	while (((volatile char *)watch)[0] == old && now_ms() - t0 < 10000)
		usleep(500);
	ASSERT_EQ(0, ioctl(dev, PINWB_IOC_DMA_STOP, &d));
	ASSERT_NE(old, watch[0]);
}

/*
 * direct: fsync persists what the device wrote into long-term pinned pages,
 * again at every fsync while they stay pinned (the folio is left dirty, as a
 * MAP_PRIVATE-like registration); cleaning writeback never writes them.
 */
TEST_F(prop, fsync_with_a_long_term_pin_held)
{
	bool direct = !strcmp(variant->opts, "policy=direct");
	char *pinned = self->map + psz;
	int h, i;

	h = pinwb_pin_range(self->dev, pinned, 2 * psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE,
			    NULL);
	ASSERT_LT(0, h);
	for (i = 0; i < 2; i++) {
		/* Clean folios, written by the device only: Kara's case, twice. */
		device_pass(_metadata, self->dev, h, pinned, pinned[0]);
		/* A cleaning pass writes nothing that is pinned, under either policy. */
		ASSERT_EQ(0, pinwb_knob("flush_kick", "1"));
		EXPECT_FALSE(store_is_cache(_metadata, self));
		EXPECT_EQ(0, fsync(self->fd));
		/* direct: persisted now; defer: not while pinned, and no error. */
		EXPECT_EQ(direct, store_is_cache(_metadata, self)) TH_LOG("pass %d", i);
	}
	/* After the unpin (without PINWB_UNPIN_DIRTY), one fsync persists it all. */
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	EXPECT_EQ(0, fsync(self->fd));
	EXPECT_TRUE(store_is_cache(_metadata, self));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * Wilcox's "mark it dirty on unpin", measured: a clean page pinned for
 * writing, written by the device, released without PINWB_UNPIN_DIRTY, then
 * fsync. gup dirtied the folio when it pinned it for writing (the pin's
 * write fault), and neither policy cleans a pinned folio, so the sync after
 * the unpin persists the device's bytes with no help from the unpin.
 */
TEST_F(prop, a_plain_unpin_loses_nothing)
{
	char *pinned = self->map + 2 * psz;
	int h;

	h = pinwb_pin_range(self->dev, pinned, psz, PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	device_pass(_metadata, self->dev, h, pinned, 'a');
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	EXPECT_EQ(0, fsync(self->fd));
	EXPECT_TRUE(store_is_cache(_metadata, self));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * A truncate of a pinned range succeeds: the pages leave the file and the
 * store (nothing past the new size comes back), the pin stays valid (the
 * device writes into pages no longer in the file) and is released normally.
 */
TEST_F(prop, truncate_of_a_pinned_range)
{
	char *pinned = self->map + 2 * psz, buf[16];
	int h;

	h = pinwb_pin_range(self->dev, pinned, 2 * psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE,
			    NULL);
	ASSERT_LT(0, h);
	device_pass(_metadata, self->dev, h, pinned, 'a');
	ASSERT_EQ(0, ftruncate(self->fd, psz));
	EXPECT_EQ(0, fsync(self->fd));
	/* READ_STORE is clamped to the size: one page, the unpinned one, intact. */
	EXPECT_EQ((ssize_t)psz, pinwbfs_read_store(self->fd, self->store, NPAGES * psz, 0));
	EXPECT_EQ('a', self->store[psz - 1]);
	EXPECT_EQ(0, pread(self->fd, buf, sizeof(buf), 2 * psz));
	/* Grown back: the truncated pages read as holes, not as the device's data. */
	ASSERT_EQ(0, ftruncate(self->fd, NPAGES * psz));
	ASSERT_EQ((ssize_t)sizeof(buf), pread(self->fd, buf, sizeof(buf), 2 * psz));
	EXPECT_EQ(0, buf[0]);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, PINWB_UNPIN_DIRTY));
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* --- Kara's denial of service --------------------------------------------- */

#define STORMERS	4

struct storm {
	int dev;
	char *page;
	atomic_bool stop;
	atomic_ulong pins;
	pthread_t th[STORMERS];
};

/*
 * Short-term pins for writing of one page, each taken before the previous
 * one is dropped: every pin is short, but the page is never unpinned.
 */
static void *stormer(void *arg)
{
	struct storm *s = arg;
	int prev = 0;

	while (!atomic_load(&s->stop)) {
		int h = pinwb_pin_range(s->dev, s->page, psz, PINWB_PIN_WRITE, NULL);

		if (prev > 0)
			pinwb_unpin_handle(s->dev, prev, 0);
		prev = h;
		if (h > 0)
			atomic_fetch_add(&s->pins, 1);
	}
	if (prev > 0)
		pinwb_unpin_handle(s->dev, prev, 0);
	return NULL;
}

FIXTURE(storm)
{
	int fd;
	char *map;
};

FIXTURE_VARIANT(storm) { const char *opts; };
FIXTURE_VARIANT_ADD(storm, wait) { .opts = "policy=wait" };
FIXTURE_VARIANT_ADD(storm, auto) { .opts = "policy=auto" };
FIXTURE_VARIANT_ADD(storm, wait_mmwb) { .opts = "policy=wait,mmwb" };

FIXTURE_SETUP(storm)
{
	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 1000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, variant->opts));
	self->fd = open(MNT "/s", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, NPAGES * psz));
	self->map = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
}

FIXTURE_TEARDOWN(storm)
{
	munmap(self->map, NPAGES * psz);
	close(self->fd);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

/*
 * Every sync returns within its wait budget (wait_timeout_ms, 1 s here) plus
 * the time to write the rest, however the pins come and go: ETIMEDOUT, as
 * the page is never free (0 or EBUSY would mean a gap: see the wake-up
 * rule in "The fsync contract"). Nothing is lost once the storm ends.
 */
TEST_F_TIMEOUT(storm, a_pin_storm_cannot_starve_fsync, 120)
{
	struct storm s = { .page = self->map };
	struct pin_counters before;
	char *store = malloc(NPAGES * psz);
	long long worst = 0;
	int i, r, results[3] = { 0 };

	ASSERT_NE(NULL, store);
	s.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, s.dev);
	pin_counters(&before);
	for (i = 0; i < STORMERS; i++)
		ASSERT_EQ(0, pthread_create(&s.th[i], NULL, stormer, &s));
	while (atomic_load(&s.pins) < 100)
		usleep(1000);
	for (i = 0; i < 10; i++) {
		long long t0 = now_ms(), t;

		memset(self->map, 'a' + i, NPAGES * psz);
		r = fsync(self->fd) ? -errno : 0;
		t = now_ms() - t0;
		worst = t > worst ? t : worst;
		EXPECT_TRUE(r == 0 || r == -EBUSY || r == -ETIMEDOUT) TH_LOG("fsync: %d", r);
		results[r == 0 ? 0 : r == -EBUSY ? 1 : 2]++;
		/* The budget (1 s) and a generous margin for a loaded TCG guest. */
		EXPECT_GT(4000, t);
	}
	atomic_store(&s.stop, true);
	for (i = 0; i < STORMERS; i++)
		pthread_join(s.th[i], NULL);
	TH_LOG("%s: %lu storm pins; fsync ok %d, EBUSY %d, ETIMEDOUT %d; slowest %lld ms",
	       variant->opts, atomic_load(&s.pins), results[0], results[1], results[2], worst);
	EXPECT_LT(100UL, atomic_load(&s.pins));
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_EQ((ssize_t)(NPAGES * psz), pinwbfs_read_store(self->fd, store, NPAGES * psz, 0));
	EXPECT_EQ(0, memcmp(store, self->map, NPAGES * psz));
	close(s.dev);
	free(store);
	ASSERT_NOTHING_LEAKED(&before);
}

/* --- a device that does not pin (Weiny, seed 002) ------------------------- */

#define MIRROR_PAGES	8

FIXTURE(mirror)
{
	int dev, fd;
	char *map, *store;
	struct pin_counters before;
};

FIXTURE_VARIANT(mirror) { const char *opts; bool stable; };
/* A disk-like mount: write-notify and stable pages. */
FIXTURE_VARIANT_ADD(mirror, mmwb) { .opts = "policy=mainline,mmwb", .stable = true };
/* No write-notify: a refault after writeback's write-protect does not wait for the IO. */
FIXTURE_VARIANT_ADD(mirror, default) { .opts = "policy=mainline", .stable = false };

FIXTURE_SETUP(mirror)
{
	size_t len;
	int h;

	psz = sysconf(_SC_PAGESIZE);
	len = MIRROR_PAGES * psz;
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	/* A mirror of an unmapped page is made (and given back at once) where there is HMM. */
	h = pinwb_pin_range(self->dev, NULL, psz, PINWB_PIN_MIRROR, NULL);
	if (h == -EOPNOTSUPP)
		SKIP(return, "no CONFIG_HMM_MIRROR: no pinless device");
	ASSERT_LT(0, h);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	/* A slow store (1 ms per page), so that writeback and the device overlap. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 1000, 1000));
	ASSERT_EQ(0, pinwbfs_mount(MNT, variant->opts));
	self->fd = open(MNT "/m", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, len));
	self->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->store = malloc(len);
	ASSERT_NE(NULL, self->store);
	memset(self->map, 'a', len);
	ASSERT_EQ(0, fsync(self->fd));
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(mirror)
{
	free(self->store);
	munmap(self->map, MIRROR_PAGES * psz);
	close(self->fd);
	close(self->dev);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

/* Pages of @buf whose 64-bit words are not all the same: a torn page. */
static int mixed_pages(const char *buf, size_t pages)
{
	size_t i, w, words = psz / 8;
	int n = 0;

	for (i = 0; i < pages; i++) {
		const uint64_t *p = (const uint64_t *)(buf + i * psz);

		for (w = 1; w < words; w++)
			if (p[w] != p[0])
				break;
		n += w < words;
	}
	return n;
}

/* A mirror pins nothing and charges nothing; it takes no gup flag. */
TEST_F(mirror, a_mirror_pins_nothing)
{
	long long acq = vmstat("nr_foll_pin_acquired");
	struct pinwb_page_state st = { .addr = (unsigned long)self->map };
	struct pinwb_pin p;
	int h;

	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->dev, self->map, psz,
					   PINWB_PIN_MIRROR | PINWB_PIN_LONGTERM, NULL));
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->dev, self->map, psz,
					   PINWB_PIN_MIRROR | PINWB_PIN_GET, NULL));
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->dev, self->map, psz,
					   PINWB_PIN_MIRROR | PINWB_PIN_FAST, NULL));
	h = pinwb_pin_range(self->dev, self->map, MIRROR_PAGES * psz,
			    PINWB_PIN_MIRROR | PINWB_PIN_WRITE, &p);
	ASSERT_LT(0, h) TH_LOG("%s", strerror(-h));
	EXPECT_EQ((unsigned long long)MIRROR_PAGES, p.nr_pages);
	EXPECT_EQ(acq, vmstat("nr_foll_pin_acquired"));
	EXPECT_EQ(self->before.vm_pinned, vm_pinned_pages());
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_PAGE_STATE, &st));
	EXPECT_EQ(0U, st.flags & PINWB_PAGE_DMA_PINNED);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * The device keeps writing stamps into every page while fsync runs again
 * and again: each sync succeeds, the device was made to fault pages in again
 * (writeback write-protected them), and once it stops one more fsync
 * persists exactly what it wrote (nothing lost: the device dirtied every
 * folio it wrote). With stable pages no stored page mixes two passes; without
 * them (the default mount: no write-notify, so the refault does not wait for
 * the IO) a page may tear, like a CPU store: the test reports how many.
 */
TEST_F_TIMEOUT(mirror, the_device_writes_through_writeback, 120)
{
	struct pinwb_dma d = { .pattern = 0x4d, .interval_us = 200,
			       .flags = PINWB_DMA_STAMP64 };
	unsigned long long inval = pinwb_debugfs_u64("mirror_invalidations");
	unsigned long long torn = pinwb_debugfs_u64("torn_writes");
	size_t len = MIRROR_PAGES * psz;
	int h, i, mixed = 0, eio = 0;
	ssize_t n;

	h = pinwb_pin_range(self->dev, self->map, len, PINWB_PIN_MIRROR | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h) TH_LOG("%s", strerror(-h));
	d.handle = h;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_START, &d));
	for (i = 0; i < 20; i++) {
		usleep(5000);
		EXPECT_EQ(0, fsync(self->fd) ? -errno : 0);
		n = pinwbfs_read_store(self->fd, self->store, len, 0);
		if (n >= 0 && n < (ssize_t)len) {
			/* A read stops short of a page that fails its checksum: the next one says EIO. */
			ASSERT_EQ(-1, pinwbfs_read_store(self->fd, self->store + n, len - n, n))
				TH_LOG("read_store stopped at %zd of %zu", n, len);
		}
		if (n < (ssize_t)len)
			n = -errno;
		/* EIO: a page stored torn, caught by its checksum. */
		ASSERT_TRUE(n == (ssize_t)len || n == -EIO) TH_LOG("read_store: %zd", n);
		if (n == -EIO)
			eio++;
		else
			mixed += mixed_pages(self->store, MIRROR_PAGES);
	}
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_STOP, &d));
	TH_LOG("%s: %llu passes, %llu invalidations; of 20 store reads, %d torn (EIO), %d mixed pages; %llu torn writes",
	       variant->opts, (unsigned long long)d.passes,
	       pinwb_debugfs_u64("mirror_invalidations") - inval, eio, mixed,
	       pinwb_debugfs_u64("torn_writes") - torn);
	EXPECT_LT(20ULL, d.passes);
	EXPECT_LT(inval, pinwb_debugfs_u64("mirror_invalidations"));
	if (variant->stable) {
		EXPECT_EQ(0, eio);
		EXPECT_EQ(0, mixed);
		EXPECT_EQ(torn, pinwb_debugfs_u64("torn_writes"));
	}
	/* The device's last pass, and every earlier one, reached the store. */
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_EQ((ssize_t)len, pinwbfs_read_store(self->fd, self->store, len, 0));
	EXPECT_EQ(0, memcmp(self->store, self->map, len));
	EXPECT_EQ(0, mixed_pages(self->store, MIRROR_PAGES));
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * A page that a mapping got by a read fault, on a mount without write-notify,
 * has a writable clean PTE: the device takes it without a fault, and only
 * its own dirty bit (folio_mark_dirty() after the write) tells writeback.
 * One fsync after the device stopped must persist what it wrote.
 */
TEST_F(mirror, a_page_only_the_device_wrote_is_saved)
{
	struct pinwb_dma d = { .pattern = 'M', .interval_us = 1000 };
	size_t len = MIRROR_PAGES * psz, i;
	volatile char *map;
	long long t0;
	int h, sum = 0;

	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (i = 0; i < len; i += psz)
		sum += map[i];
	EXPECT_EQ('a' * MIRROR_PAGES, sum);
	h = pinwb_pin_range(self->dev, (void *)map, len, PINWB_PIN_MIRROR | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	d.handle = h;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_START, &d));
	for (t0 = now_ms(); map[len - 1] == 'a' && now_ms() - t0 < 10000;)
		usleep(500);
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_STOP, &d));
	ASSERT_NE('a', map[len - 1]);
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_EQ((ssize_t)len, pinwbfs_read_store(self->fd, self->store, len, 0));
	EXPECT_EQ(0, memcmp(self->store, (const void *)map, len));
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));
	munmap((void *)map, len);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * The range goes while the device writes: munmap, then the process itself.
 * The device stops at the first page it cannot fault in; DMA_STOP, UNPIN and
 * the last close still work, and nothing stays behind.
 */
TEST_F(mirror, the_device_stops_when_the_range_goes)
{
	struct pinwb_dma d = { .pattern = 0x6d, .interval_us = 100 };
	unsigned long long errs = pinwb_debugfs_u64("mirror_write_errors");
	size_t len = MIRROR_PAGES * psz;
	char *map;
	pid_t pid;
	int h, status;

	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	h = pinwb_pin_range(self->dev, map, len, PINWB_PIN_MIRROR | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, h);
	d.handle = h;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_START, &d));
	usleep(20000);
	ASSERT_EQ(0, munmap(map, len));
	for (int i = 0; i < 1000 && pinwb_debugfs_u64("mirror_write_errors") == errs; i++)
		usleep(1000);
	EXPECT_EQ(errs + 1, pinwb_debugfs_u64("mirror_write_errors"));
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_STOP, &d));
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, h, 0));

	/* A process that exits with its device running. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
		struct pinwb_dma c = { .pattern = 0x6e, .interval_us = 100 };

		c.handle = pinwb_pin_range(dev, m, len, PINWB_PIN_MIRROR | PINWB_PIN_WRITE, NULL);
		if (m == MAP_FAILED || (int)c.handle <= 0 || ioctl(dev, PINWB_IOC_DMA_START, &c))
			_exit(1);
		usleep(20000);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* --- Chinner's objection: COW reservations --------------------------------- */

#include <sys/statvfs.h>

/* Free blocks of the mount's budget, as statfs(2) reports them. */
static long long bfree(void)
{
	struct statvfs st;

	return statvfs(MNT, &st) ? -errno : (long long)st.f_bfree;
}

/* Writes page @i of @fd full of @c: 0 or -errno. */
static int put_page(int fd, int i, char c)
{
	char *buf = malloc(psz);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	memset(buf, c, psz);
	n = pwrite(fd, buf, psz, (off_t)i * psz);
	free(buf);
	return n == (ssize_t)psz ? 0 : n < 0 ? -errno : -EIO;
}

/* The mount options of the model, and the ones it refuses. */
TEST(cow_mount_options)
{
	static const char *const bad[] = { "cow", "blocks=4", "cow_fixup", "cow,blocks=0",
					   "cow,blocks=-1", "cow,blocks=x", "cow_fixup,blocks=4" };
	char buf[4096];
	size_t i;

	psz = sysconf(_SC_PAGESIZE);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, pinwbfs_mount(MNT, bad[i])) TH_LOG("%s", bad[i]);
	ASSERT_EQ(0, pinwbfs_mount(MNT, "cow,blocks=5,cow_fixup"));
	ASSERT_LT(0, read_file("/proc/mounts", buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "cow,blocks=5,cow_fixup"));
	EXPECT_EQ(5, bfree());
	/* The budget is the mount's: a remount cannot change it. */
	EXPECT_NE(0, mount("none", MNT, "pinwbfs", MS_REMOUNT, "cow,blocks=6"));
	EXPECT_EQ(0, mount("none", MNT, "pinwbfs", MS_REMOUNT, "policy=auto"));
	EXPECT_EQ(0, umount(MNT));
}

/*
 * A write reserves its block when the folio becomes dirty, so a full budget
 * fails the write(2), never the writeback: COW needs a free block even to
 * overwrite a stored page.
 */
TEST(cow_a_write_reserves_or_fails_at_once)
{
	unsigned long long unres = pinwb_debugfs_u64("unreserved_dirty");
	unsigned long long late = pinwb_debugfs_u64("enospc_at_writeback");
	char *store;
	int fd, i;

	psz = sysconf(_SC_PAGESIZE);
	store = malloc(8 * psz);
	ASSERT_NE(NULL, store);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=naive,cow,blocks=5"));
	fd = open(MNT "/c", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, put_page(fd, i, 'a' + i));
	EXPECT_EQ(0, bfree());
	EXPECT_EQ(-ENOSPC, put_page(fd, 5, 'x'));
	/* A second write into a dirty, reserved page needs nothing more. */
	EXPECT_EQ(0, put_page(fd, 4, 'E'));
	EXPECT_EQ(0, fsync(fd));
	EXPECT_EQ(0, bfree());
	/* Every block holds a page now: an overwrite has no block to go to. */
	EXPECT_EQ(-ENOSPC, put_page(fd, 0, 'A'));
	/* A truncate frees the blocks of the pages it drops. */
	ASSERT_EQ(0, ftruncate(fd, 2 * psz));
	EXPECT_EQ(3, bfree());
	EXPECT_EQ(0, put_page(fd, 0, 'A'));
	EXPECT_EQ(2, bfree());
	EXPECT_EQ(0, fsync(fd));
	EXPECT_EQ(3, bfree());
	ASSERT_EQ((ssize_t)(2 * psz), pinwbfs_read_store(fd, store, 8 * psz, 0));
	EXPECT_EQ('A', store[0]);
	EXPECT_EQ('b', store[psz]);
	EXPECT_EQ(unres, pinwb_debugfs_u64("unreserved_dirty"));
	EXPECT_EQ(late, pinwb_debugfs_u64("enospc_at_writeback"));
	close(fd);
	/* Unlink gives every block back. */
	ASSERT_EQ(0, unlink(MNT "/c"));
	EXPECT_EQ(5, bfree());
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
	free(store);
}

/*
 * On an mmwb mount a store through the mapping reserves in page_mkwrite: with
 * the budget spent, the faulting store gets SIGBUS (as a disk filesystem's
 * ENOSPC at fault), and nothing was dirtied unreserved.
 */
TEST(cow_mmwb_a_store_reserves_in_page_mkwrite)
{
	unsigned long long unres = pinwb_debugfs_u64("unreserved_dirty");
	char *map, *store;
	int fd, status;
	pid_t child;

	psz = sysconf(_SC_PAGESIZE);
	store = malloc(psz);
	ASSERT_NE(NULL, store);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
	ASSERT_EQ(0, pinwbfs_mount(MNT, "policy=naive,mmwb,cow,blocks=2"));
	fd = open(MNT "/m", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, put_page(fd, 0, 'a'));
	ASSERT_EQ(0, put_page(fd, 1, 'b'));
	ASSERT_EQ(0, fsync(fd));
	map = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ('a', map[0]);
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		map[0] = 'X';	/* no block for it: SIGBUS */
		_exit(0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) TH_LOG("status %#x", status);
	/* Freed by a truncate, a block lets the store fault in and persist. */
	ASSERT_EQ(0, ftruncate(fd, psz));
	map[0] = 'Y';
	EXPECT_EQ(0, msync(map, psz, MS_SYNC));
	ASSERT_EQ((ssize_t)psz, pinwbfs_read_store(fd, store, psz, 0));
	EXPECT_EQ('Y', store[0]);
	EXPECT_EQ(unres, pinwb_debugfs_u64("unreserved_dirty"));
	munmap(map, 2 * psz);
	close(fd);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
	free(store);
}

FIXTURE(cow) {};
FIXTURE_VARIANT(cow)
{
	const char *opts;	/* policy=..., cow_fixup */
	bool fixup;
};
FIXTURE_VARIANT_ADD(cow, bounce) { .opts = "policy=bounce", .fixup = false };
FIXTURE_VARIANT_ADD(cow, bounce_fixup) { .opts = "policy=bounce,cow_fixup", .fixup = true };
FIXTURE_VARIANT_ADD(cow, direct) { .opts = "policy=direct", .fixup = false };
FIXTURE_VARIANT_ADD(cow, direct_fixup) { .opts = "policy=direct,cow_fixup", .fixup = true };
FIXTURE_SETUP(cow)
{
	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 0, 300));
}
FIXTURE_TEARDOWN(cow)
{
	pinwb_writeback_knobs_default();
}

/*
 * Seed 004, Chinner: a folio that bounce (or direct) keeps dirty skips the
 * clean->dirty transition where a COW filesystem reserves, so its next write
 * finds no reservation. 8 pages written (reserved), pages 2-3 long-term
 * pinned, the device writing, three fsyncs. @blocks: the budget. Returns the
 * fsync results in @ret.
 */
static void keep_dirty(struct __test_metadata *_metadata, const char *opts, int blocks,
		       int ret[3], unsigned long long *unres, unsigned long long late[3])
{
	unsigned long long u0 = pinwb_debugfs_u64("unreserved_dirty");
	unsigned long long l0 = pinwb_debugfs_u64("enospc_at_writeback");
	char o[96], *map, *store = malloc(8 * psz);
	int dev, fd, h, i;

	ASSERT_NE(NULL, store);
	snprintf(o, sizeof(o), "%s,cow,blocks=%d", opts, blocks);
	ASSERT_EQ(0, pinwbfs_mount(MNT, o));
	dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	fd = open(MNT "/k", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, put_page(fd, i, 'a'));
	map = mmap(NULL, 8 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	/* Dirty and reserved already: the pin's write fault changes nothing. */
	h = pinwb_pin_range(dev, map + 2 * psz, 2 * psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE,
			    NULL);
	ASSERT_LT(0, h);
	for (i = 0; i < 3; i++) {
		device_pass(_metadata, dev, h, map + 2 * psz, map[2 * psz]);
		ret[i] = fsync(fd) ? -errno : 0;
		late[i] = pinwb_debugfs_u64("enospc_at_writeback") - l0;
	}
	*unres = pinwb_debugfs_u64("unreserved_dirty") - u0;
	TH_LOG("%s: fsync %d %d %d, unreserved_dirty %llu, enospc_at_writeback %llu %llu %llu",
	       o, ret[0], ret[1], ret[2], *unres, late[0], late[1], late[2]);
	/* With room, nothing is lost: after the unpin a sync persists it all. */
	ASSERT_EQ(0, pinwb_unpin_handle(dev, h, PINWB_UNPIN_DIRTY));
	if (blocks > 8) {
		EXPECT_EQ(0, fsync(fd));
		ASSERT_EQ((ssize_t)(8 * psz), pinwbfs_read_store(fd, store, 8 * psz, 0));
		EXPECT_EQ(0, memcmp(store, map, 8 * psz));
	}
	munmap(map, 8 * psz);
	close(fd);
	close(dev);
	EXPECT_EQ(0, umount(MNT));
	free(store);
}

/* With room in the budget: unreserved writes unless the fixup re-reserves. */
TEST_F(cow, keep_dirty_with_room)
{
	unsigned long long unres, late[3];
	int ret[3];

	keep_dirty(_metadata, variant->opts, 64, ret, &unres, late);
	EXPECT_EQ(0, ret[0]);
	EXPECT_EQ(0, ret[1]);
	EXPECT_EQ(0, ret[2]);
	if (variant->fixup) {
		EXPECT_EQ(0ULL, unres);
	} else {
		/* Pages 2 and 3 at the 2nd and 3rd fsync. */
		EXPECT_LE(4ULL, unres);
	}
	EXPECT_EQ(0ULL, late[2]);
}

/*
 * With no spare block (8 pages, 8 blocks): without the fixup the model breaks
 * at writeback, one sync later (ENOSPC for data that was accepted and can no
 * longer be saved); with it, the first sync that keeps the folios dirty
 * fails where it takes the reservation. The folios stay dirty either way, now
 * unreserved: the later syncs fail at writeback too.
 */
TEST_F(cow, keep_dirty_with_no_room)
{
	unsigned long long unres, late[3];
	int ret[3];

	keep_dirty(_metadata, variant->opts, 8, ret, &unres, late);
	if (variant->fixup) {
		EXPECT_EQ(-ENOSPC, ret[0]);
		EXPECT_EQ(0ULL, late[0]);
	} else {
		EXPECT_EQ(0, ret[0]);
		EXPECT_EQ(0ULL, late[0]);
		EXPECT_EQ(-ENOSPC, ret[1]);
		EXPECT_LT(0ULL, late[1]);
	}
}

PINWB_HARNESS_MAIN(true)
