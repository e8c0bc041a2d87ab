// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency stress under every policy: threads (and a child process) pin,
 * unpin, run the simulated device, fsync, syncfs, kick the flusher,
 * truncate, write and remap, all at once on shared pinwbfs files, for
 * PINWB_STRESS_SECONDS (default 1.5) per policy. Afterwards: no torn write
 * unless the policy is naive, nothing pinned, and once nothing is pinned a
 * sync persists every file byte for byte. CPU stores go through write(2)
 * only: stores through a default pinwbfs mapping are not held back during IO
 * (no write-notify) and would count as torn under any policy.
 */
#include <pthread.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT	"/tmp/pinwb-stress"
#define NFILES	2
#define NPAGES	32
#define NTHREADS 6

struct stress {
	size_t psz;
	int dev, fd[NFILES];
	char *map[NFILES];
	volatile int stop;
	unsigned long ops[NTHREADS];
};

struct worker {
	struct stress *s;
	int id;
};

static unsigned int rnd(unsigned int *seed)
{
	return rand_r(seed);
}

/*
 * With @dma, some pins get the simulated device, and are unpinned dirty after
 * it wrote. A process that is killed never unpins dirty: its device's last
 * bytes are legitimately lost, so the killed child pins without a device.
 */
static void *pinner(struct stress *s, int id, bool with_dma)
{
	unsigned int seed = id * 7919 + 17;

	while (!s->stop) {
		int f = rnd(&seed) % NFILES, h;
		size_t off = rnd(&seed) % NPAGES, n = 1 + rnd(&seed) % 4;
		unsigned int flags = PINWB_PIN_WRITE | (rnd(&seed) & 1 ? PINWB_PIN_LONGTERM : 0);

		if (off + n > NPAGES)
			n = NPAGES - off;
		h = pinwb_pin_range(s->dev, s->map[f] + off * s->psz, n * s->psz, flags, NULL);
		if (h > 0) {
			struct pinwb_dma d = { .handle = h, .pattern = rnd(&seed), .interval_us = 50 };
			bool dma = with_dma && rnd(&seed) % 3 == 0 &&
				   !ioctl(s->dev, PINWB_IOC_DMA_START, &d);

			usleep(rnd(&seed) % 5000);
			/* After its device wrote, a driver unpins dirty; otherwise either way. */
			pinwb_unpin_handle(s->dev, h, dma || rnd(&seed) & 1 ? PINWB_UNPIN_DIRTY : 0);
		}
		s->ops[id]++;
	}
	return NULL;
}

static void *syncer(struct stress *s, int id)
{
	unsigned int seed = id;

	while (!s->stop) {
		switch (rnd(&seed) % 4) {
		case 0:
			fsync(s->fd[rnd(&seed) % NFILES]);
			break;
		case 1:
			fdatasync(s->fd[rnd(&seed) % NFILES]);
			break;
		case 2:
			syncfs(s->fd[0]);
			break;
		default:
			pinwb_knob("flush_kick", "1");
			break;
		}
		s->ops[id]++;
	}
	return NULL;
}

static void *writer(struct stress *s, int id)
{
	unsigned int seed = id * 31;
	char buf[8192];

	while (!s->stop) {
		int f = rnd(&seed) % NFILES;
		size_t len = 1 + rnd(&seed) % sizeof(buf);
		off_t off = rnd(&seed) % (NPAGES * s->psz);

		memset(buf, rnd(&seed), len);
		if (off + len > NPAGES * s->psz)
			len = NPAGES * s->psz - off;
		if (rnd(&seed) % 16 == 0) {
			/* Shrink and grow back: truncation under pins, IO and writes. */
			ftruncate(s->fd[f], rnd(&seed) % (NPAGES * s->psz));
			ftruncate(s->fd[f], NPAGES * s->psz);
		} else {
			pwrite(s->fd[f], buf, len, off);
		}
		s->ops[id]++;
	}
	return NULL;
}

/*
 * Remaps part of a file's mapping (pins keep the old pages). It does not
 * touch the pages: a concurrent truncation may have put them beyond EOF
 * (SIGBUS); the pinners fault them in (or get EFAULT).
 */
static void *remapper(struct stress *s, int id)
{
	unsigned int seed = id * 131;

	while (!s->stop) {
		int f = rnd(&seed) % NFILES;
		size_t off = rnd(&seed) % NPAGES, n = 1 + rnd(&seed) % 4;

		if (off + n > NPAGES)
			n = NPAGES - off;
		munmap(s->map[f] + off * s->psz, n * s->psz);
		mmap(s->map[f] + off * s->psz, n * s->psz, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_FIXED, s->fd[f], off * s->psz);
		s->ops[id]++;
	}
	return NULL;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;

	switch (w->id) {
	case 0:
	case 1:
		return pinner(w->s, w->id, true);
	case 2:
		return syncer(w->s, w->id);
	case 3:
	case 4:
		return writer(w->s, w->id);
	default:
		return remapper(w->s, w->id);
	}
}

FIXTURE(stress)
{
	struct stress s;
};

PINWB_POLICY_VARIANTS(stress);

FIXTURE_SETUP(stress)
{
	char opts[32], name[64];
	int f;

	self->s.psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwb_writeback_knobs(20, 200, 50));
	snprintf(opts, sizeof(opts), "policy=%s", variant->name);
	ASSERT_EQ(0, pinwbfs_mount(MNT, opts));
	self->s.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->s.dev);
	for (f = 0; f < NFILES; f++) {
		snprintf(name, sizeof(name), MNT "/s%d", f);
		self->s.fd[f] = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		ASSERT_LE(0, self->s.fd[f]);
		ASSERT_EQ(0, ftruncate(self->s.fd[f], NPAGES * self->s.psz));
		self->s.map[f] = mmap(NULL, NPAGES * self->s.psz, PROT_READ | PROT_WRITE,
				      MAP_SHARED, self->s.fd[f], 0);
		ASSERT_NE(MAP_FAILED, self->s.map[f]);
	}
}

FIXTURE_TEARDOWN(stress)
{
	int f;

	for (f = 0; f < NFILES; f++) {
		munmap(self->s.map[f], NPAGES * self->s.psz);
		close(self->s.fd[f]);
	}
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

TEST_F_TIMEOUT(stress, everything_at_once, 600)
{
	const char *env = getenv("PINWB_STRESS_SECONDS");
	unsigned int usecs = (env ? atof(env) : 1.5) * 1e6;
	unsigned long long torn0 = pinwb_debugfs_u64("torn_writes");
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	unsigned long ops = 0;
	struct pin_counters before;
	char *a, *b;
	int i, f, status;
	pid_t child;

	pin_counters(&before);
	/* A second process pinning the same files through its own fd. */
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		struct stress c = self->s;

		c.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
		alarm(usecs / 1000000 + 2);
		pinner(&c, NTHREADS, false);
		_exit(0);
	}
	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .s = &self->s, .id = i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, run_worker, &w[i]));
	}
	usleep(usecs);
	self->s.stop = 1;
	for (i = 0; i < NTHREADS; i++) {
		ASSERT_EQ(0, pthread_join(th[i], NULL));
		ops += self->s.ops[i];
	}
	kill(child, SIGKILL);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	TH_LOG("%s: %lu operations, %llu torn writes", variant->name, ops,
	       pinwb_debugfs_u64("torn_writes") - torn0);
	EXPECT_LT(100UL, ops);
	if (strcmp(variant->name, "naive")) {
		EXPECT_EQ(torn0, pinwb_debugfs_u64("torn_writes"));
	}

	/* Nothing stays pinned (the child's pins went with it). */
	close(self->s.dev);
	self->s.dev = -1;
	ASSERT_NOTHING_LEAKED(&before);

	/* With nothing pinned, a sync persists every byte. */
	a = malloc(NPAGES * self->s.psz);
	b = malloc(NPAGES * self->s.psz);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	for (f = 0; f < NFILES; f++) {
		ASSERT_EQ(0, fsync(self->s.fd[f]));
		ASSERT_EQ((ssize_t)(NPAGES * self->s.psz),
			  pread(self->s.fd[f], a, NPAGES * self->s.psz, 0));
		ASSERT_EQ((ssize_t)(NPAGES * self->s.psz),
			  pinwbfs_read_store(self->s.fd[f], b, NPAGES * self->s.psz, 0));
		EXPECT_EQ(0, memcmp(a, b, NPAGES * self->s.psz)) TH_LOG("file %d", f);
	}
	free(a);
	free(b);
}

PINWB_HARNESS_MAIN(true)
