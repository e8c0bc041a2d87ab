// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_demo: the problem and its fixes on one screen (make run).
 *
 * For each policy: a pinwbfs file of 16 pages, pages 4..11 pinned long-term
 * for writing, the simulated device writing into them, every page dirtied by
 * the CPU. Then:
 *   fsync #1 while the device writes: result, time, torn writes, skipped,
 *            waited, bounced;
 *   fsync #2 after the device stopped, pin still held (seed 004): result,
 *            and the pinned bytes the store does not have ("lost");
 *   fsync #3 after the driver's unpin (dirty): the bytes still lost.
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

/* Pinned bytes whose stored copy differs from memory. */
static size_t lost(int fd, const char *map)
{
	char *store = malloc(PINNED * psz);
	size_t n = 0, i;

	if (!store ||
	    pinwbfs_read_store(fd, store, PINNED * psz, FIRST * psz) != (ssize_t)(PINNED * psz))
		return (size_t)-1;
	for (i = 0; i < PINNED * psz; i++)
		n += store[i] != map[FIRST * psz + i];
	free(store);
	return n;
}

static int run(int dev, const char *policy)
{
	struct pinwb_pin pin = { .len = PINNED * psz, .flags = PINWB_PIN_LONGTERM | PINWB_PIN_WRITE };
	struct pinwb_dma dma = { .pattern = 'A', .interval_us = 20 };
	struct pinwb_unpin un = { .flags = PINWB_UNPIN_DIRTY };
	unsigned long long torn, skipped, waited, bounced;
	int fd, r1, r2, r3, i;
	size_t l2, l3;
	char opts[32];
	double t;
	char *map;

	snprintf(opts, sizeof(opts), "policy=%s", policy);
	errno = -pinwbfs_mount(MNT, opts);
	if (errno)
		return perror("mount"), -1;
	fd = open(MNT "/data", O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, NPAGES * psz))
		return perror("create"), -1;
	map = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return perror("mmap"), -1;
	memset(map, 'a', NPAGES * psz);
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
	t = now_ms();
	r1 = fsync(fd) ? errno : 0;
	t = now_ms() - t;
	torn = ctr("torn_writes") - torn;
	skipped = ctr("skipped") - skipped;
	waited = ctr("waited") - waited;
	bounced = ctr("bounced_bytes") - bounced;

	ioctl(dev, PINWB_IOC_DMA_STOP, &dma);	/* the transfer is complete */
	r2 = fsync(fd) ? errno : 0;		/* pin still held */
	l2 = lost(fd, map);
	un.handle = pin.handle;
	ioctl(dev, PINWB_IOC_UNPIN, &un);
	r3 = fsync(fd) ? errno : 0;
	l3 = lost(fd, map);

	printf("%-7s %-10s %7.1f %5llu %7llu %6llu %8llu   %-10s %8zu   %-4s %8zu\n",
	       policy, res(r1), t, torn, skipped, waited, bounced / 1024, res(r2), l2, res(r3), l3);
	munmap(map, NPAGES * psz);
	close(fd);
	return umount(MNT);
}

int main(void)
{
	static const char *const policies[] = { "naive", "skip", "wait", "bounce", "fail", "auto" };
	int dev = open("/dev/pinwb", O_RDWR | O_CLOEXEC);
	size_t i;

	psz = sysconf(_SC_PAGESIZE);
	if (dev < 0)
		return perror("/dev/pinwb"), 1;
	if (pinwb_writeback_knobs(0, 3000, 200))
		return perror("knobs"), 1;
	printf("pinwbfs, %d pages, pages %d..%d pinned long-term, the simulated device writing;\n"
	       "io_delay_us=3000, wait_timeout_ms=200\n\n", NPAGES, FIRST, FIRST + PINNED - 1);
	printf("%-7s %-10s %7s %5s %7s %6s %8s   %-10s %8s   %-4s %8s\n", "", "fsync #1", "ms",
	       "torn", "skipped", "waited", "bounced", "fsync #2", "lost", "#3", "lost");
	printf("%-7s %-10s %7s %5s %7s %6s %8s   %-10s %8s   %-4s %8s\n", "policy",
	       "(writing)", "", "", "folios", "folios", "KiB", "(pinned)", "bytes", "", "bytes");
	for (i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		if (run(dev, policies[i]))
			return 1;
	printf("\nfsync #1: the device is writing; #2: it stopped, the pin is still held (seed 004);\n"
	       "#3: after the driver's unpin (dirty). lost: pinned bytes the store does not have.\n");
	return pinwb_writeback_knobs_default() ? 1 : 0;
}
