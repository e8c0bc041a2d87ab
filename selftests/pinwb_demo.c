// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_demo: the problem and its fixes on one screen (make run).
 *
 * For each policy: a pinwbfs file of 16 pages, pages 4..11 pinned long-term
 * for writing, the simulated device writing into them, every page dirtied by
 * the CPU. Then:
 *   fsync #1 while the device writes: result, time, torn writes, skipped,
 *            waited, bounced;
 *   fsync #2 after the device stopped, pin still held (Kara's case): result;
 *   the driver unpins without marking the pages dirty (as io_uring does),
 *   fsync #3, the page cache is dropped, and the pinned pages are read back
 *   from the store: bytes that are not what the device wrote last ("lost"),
 *   pages that fail their checksum (EIO), and a verdict in words.
 *
 * The last two rows run the device that does not pin (PINWB_PIN_MIRROR:
 * hmm_range_fault() and an mmu_interval_notifier), under mainline, on a
 * default mount and on an mmwb one (write-notify, stable pages).
 */
#include <time.h>
#include <sys/mman.h>

#include "pinwb_test.h"

#define MNT	"/tmp/pinwb-demo"
#define NPAGES	16
#define FIRST	4
#define PINNED	8

static size_t psz;

static unsigned long long ctr(const char *name)
{
	return pinwb_debugfs_u64(name);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static const char *res(int ret)
{
	static char buf[4][16];
	static int i;

	i = (i + 1) % 4;
	if (!ret)
		return "ok";
	snprintf(buf[i], sizeof(buf[i]), "%s", ret == EBUSY ? "EBUSY" : ret == ETIMEDOUT ?
		 "ETIMEDOUT" : strerror(ret));
	return buf[i];
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd >= 0 && write(fd, "3", 1) != 1)
		perror("drop_caches");
	if (fd >= 0)
		close(fd);
}

/*
 * Reads the pinned pages back after the cache was dropped: bytes that differ
 * from @want (the device's last data), and pages that fail their checksum.
 */
static void read_back(int fd, const char *want, size_t *lost, int *eio)
{
	char *page = malloc(psz);
	size_t i, j;

	*lost = 0;
	*eio = 0;
	for (i = 0; page && i < PINNED; i++) {
		if (pread(fd, page, psz, (FIRST + i) * psz) != (ssize_t)psz) {
			(*eio)++;
			continue;
		}
		for (j = 0; j < psz; j++)
			*lost += page[j] != want[i * psz + j];
	}
	free(page);
}

struct row {
	const char *name, *policy;
	bool mirror, mmwb;
};

static int run(int dev, const struct row *row)
{
	const char *policy = row->policy;
	struct pinwb_pin pin = { .len = PINNED * psz, .flags = PINWB_PIN_WRITE |
			       (row->mirror ? PINWB_PIN_MIRROR : PINWB_PIN_LONGTERM) };
	struct pinwb_dma dma = { .pattern = 'A', .interval_us = 20 };
	struct pinwb_unpin un = { 0 };
	unsigned long long torn, skipped, waited, bounced, direct;
	unsigned long long unres = ctr("unreserved_dirty");
	int fd, r1, r2, r3, i, eio;
	char opts[64], *want = malloc(PINNED * psz);
	const char *verdict;
	size_t lost, unsaved = 0, j;
	char *store = malloc(PINNED * psz);
	double t;
	char *map;

	/* A COW budget that never runs out: only unreserved writes are counted. */
	snprintf(opts, sizeof(opts), "policy=%s,cow,blocks=4096%s", policy,
		 row->mmwb ? ",mmwb" : "");
	errno = -pinwbfs_mount(MNT, opts);
	if (errno)
		return perror("mount"), -1;
	fd = open(MNT "/data", O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, NPAGES * psz))
		return perror("create"), -1;
	map = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return perror("mmap"), -1;
	/* Every page dirtied by write(2), which reserves its block. */
	memset(want, 'a', PINNED * psz);
	for (i = 0; i < NPAGES; i += PINNED)
		if (pwrite(fd, want, PINNED * psz, (off_t)i * psz) != (ssize_t)(PINNED * psz))
			return perror("write"), -1;
	pin.addr = (unsigned long)map + FIRST * psz;
	if (ioctl(dev, PINWB_IOC_PIN, &pin))
		return perror("pin"), -1;
	dma.handle = pin.handle;
	if (ioctl(dev, PINWB_IOC_DMA_START, &dma))
		return perror("dma start"), -1;
	/* Until the device's first bytes are visible (its work item may be slow to run). */
	for (i = 0; i < 2000 && ((volatile char *)map)[FIRST * psz] == 'a'; i++)
		usleep(500);

	torn = ctr("torn_writes");
	skipped = ctr("skipped");
	waited = ctr("waited");
	bounced = ctr("bounced_bytes");
	direct = ctr("direct_writes");
	t = now_ms();
	r1 = fsync(fd) ? errno : 0;
	t = now_ms() - t;
	torn = ctr("torn_writes") - torn;
	skipped = ctr("skipped") - skipped;
	waited = ctr("waited") - waited;
	bounced = ctr("bounced_bytes") - bounced + (ctr("direct_writes") - direct) * psz;

	ioctl(dev, PINWB_IOC_DMA_STOP, &dma);	/* the transfer is complete */
	r2 = fsync(fd) ? errno : 0;		/* pin still held */
	memcpy(want, map + FIRST * psz, PINNED * psz);
	/* What that sync left out of the store: the device's data it did not save. */
	if (store && pinwbfs_read_store(fd, store, PINNED * psz, FIRST * psz) ==
	    (ssize_t)(PINNED * psz))
		for (j = 0; j < PINNED * psz; j++)
			unsaved += store[j] != want[j];
	un.handle = pin.handle;			/* unpin without dirtying */
	ioctl(dev, PINWB_IOC_UNPIN, &un);
	munmap(map, NPAGES * psz);
	r3 = fsync(fd) ? errno : 0;
	unres = ctr("unreserved_dirty") - unres;
	drop_caches();
	read_back(fd, want, &lost, &eio);
	if (eio)
		verdict = "TORN: EIO at read";
	else if (lost && !r2)
		verdict = "SILENT LOSS";
	else if (unsaved && !r2)
		verdict = "ok after unpin; fsync #2 saved nothing";
	else if (lost)
		verdict = "lost";
	else if (torn)
		verdict = "torn, then rewritten";
	else if (r1 || r2)
		verdict = "ok (error while pinned)";
	else
		verdict = "ok";

	printf("%-11s %-10s %7.1f %5llu %7llu %6llu %7llu   %-10s %7zu %-4s %7zu %4d %5llu  %s\n",
	       row->name, res(r1), t, torn, skipped, waited, bounced / 1024, res(r2), unsaved, res(r3),
	       lost, eio, unres, verdict);
	free(store);
	free(want);
	close(fd);
	return umount(MNT);
}

int main(void)
{
	static const struct row rows[] = {
#define PINNED_ROW(p)	{ .name = p, .policy = p }
		PINNED_ROW("mainline"), PINNED_ROW("naive"), PINNED_ROW("skip"),
		PINNED_ROW("wait"), PINNED_ROW("bounce"), PINNED_ROW("fail"),
		PINNED_ROW("auto"), PINNED_ROW("direct"), PINNED_ROW("defer"),
		{ .name = "mirror", .policy = "mainline", .mirror = true },
		{ .name = "mirror/mmwb", .policy = "mainline", .mirror = true, .mmwb = true },
	};
	int dev = open("/dev/pinwb", O_RDWR | O_CLOEXEC);
	size_t i;

	psz = sysconf(_SC_PAGESIZE);
	if (dev < 0)
		return perror("/dev/pinwb"), 1;
	if (pinwb_writeback_knobs(0, 3000, 200))
		return perror("knobs"), 1;
	printf("pinwbfs, %d pages, pages %d..%d pinned long-term, the simulated device writing;\n"
	       "io_delay_us=3000, wait_timeout_ms=200\n\n", NPAGES, FIRST, FIRST + PINNED - 1);
	printf("%-11s %-10s %7s %5s %7s %6s %7s   %-10s %7s %-4s %7s %4s %5s  %s\n", "",
	       "fsync #1", "ms", "torn", "skipped", "waited", "copied", "fsync #2", "unsaved", "#3",
	       "lost", "EIO", "unres", "");
	printf("%-11s %-10s %7s %5s %7s %6s %7s   %-10s %7s %-4s %7s %4s %5s  %s\n", "policy",
	       "(writing)", "", "", "folios", "folios", "KiB", "(pinned)", "bytes", "", "bytes",
	       "pages", "folio", "verdict");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (run(dev, &rows[i]))
			return 1;
	printf("\nfsync #1: the device is writing; #2: it stopped, the pin is still held (Kara's\n"
	       "case); #3: after an unpin that does not dirty the pages. copied: bounce and\n"
	       "direct copies; unsaved: bytes of the device's data not in the store after #2;\n"
	       "lost: bytes of it missing after the page cache was dropped; EIO: pages whose\n"
	       "stored checksum fails (a write torn in flight); unres: folios written without\n"
	       "the reservation a COW filesystem takes when a folio becomes dirty (cow mounts,\n"
	       "Chinner's objection). mainline is what 7.3 does. mirror: the device pins\n"
	       "nothing and mirrors the range (hmm_range_fault(), an mmu_interval_notifier),\n"
	       "under mainline; mirror/mmwb on a mount with write-notify and stable pages.\n");
	return pinwb_writeback_knobs_default() ? 1 : 0;
}
