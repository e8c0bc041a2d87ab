// SPDX-License-Identifier: GPL-2.0
/*
 * A real client: io_uring registered buffers in a MAP_SHARED mapping of a
 * pinwbfs file. IORING_REGISTER_BUFFERS pins the pages with FOLL_WRITE |
 * FOLL_LONGTERM (io_uring/memmap.c: io_pin_pages()); IORING_OP_READ_FIXED
 * then copies file data into them through kernel mappings, behind the page
 * tables, and never dirties them: the device of the upstream threads. These
 * pins are not pinwb's: writeback sees them only as folio_maybe_dma_pinned().
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <liburing.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT	"/tmp/pinwbfs-uring"
#define SRC	"/tmp/pinwbfs-uring-src"	/* the data read, on the initramfs */
#define NBUF	8				/* registered buffers, a page each */
#define GENS	2				/* the source holds NBUF pages per generation */

static size_t psz;

/* The byte that generation @gen of the source holds for buffer @i. */
static char src_byte(unsigned int gen, unsigned int i)
{
	return 'A' + (gen * NBUF + i) % 26;
}

FIXTURE(uring)
{
	int dev, fd, src;
	char *map;
	struct io_uring ring;
	bool ring_ok, registered, reading;
	pthread_t reader;
	atomic_bool stop;
	atomic_ulong rounds;
	atomic_int read_error;	/* first failed read's -errno, or -ENODATA if short */
	struct pin_counters before;
};

PINWB_POLICY_VARIANTS(uring);

FIXTURE_SETUP(uring)
{
	struct iovec iov[NBUF];
	char opts[64], *page;
	unsigned int g, i;

	psz = sysconf(_SC_PAGESIZE);
	pin_counters(&self->before);
	/* No periodic flusher: the test drives writeback; IO slow enough to be torn. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 3000, 200));

	self->src = open(SRC, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, self->src);
	page = malloc(psz);
	ASSERT_NE(NULL, page);
	for (g = 0; g < GENS; g++)
		for (i = 0; i < NBUF; i++) {
			memset(page, src_byte(g, i), psz);
			ASSERT_EQ((ssize_t)psz, pwrite(self->src, page, psz, (g * NBUF + i) * psz));
		}
	free(page);

	snprintf(opts, sizeof(opts), "policy=%s", variant->name);
	ASSERT_EQ(0, pinwbfs_mount(MNT, opts));
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	self->fd = open(MNT "/u", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ftruncate(self->fd, NBUF * psz));
	self->map = mmap(NULL, NBUF * psz, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	memset(self->map, 'a', NBUF * psz);
	/* Clean and persisted before io_uring takes the pages. */
	ASSERT_EQ(0, fsync(self->fd));

	ASSERT_EQ(0, io_uring_queue_init(2 * NBUF, &self->ring, 0));
	self->ring_ok = true;
	for (i = 0; i < NBUF; i++) {
		iov[i].iov_base = self->map + i * psz;
		iov[i].iov_len = psz;
	}
	ASSERT_EQ(0, io_uring_register_buffers(&self->ring, iov, NBUF));
	self->registered = true;
}

FIXTURE_TEARDOWN(uring)
{
	if (self->reading) {
		atomic_store(&self->stop, true);
		pthread_join(self->reader, NULL);
	}
	if (self->registered)
		io_uring_unregister_buffers(&self->ring);
	if (self->ring_ok)
		io_uring_queue_exit(&self->ring);
	munmap(self->map, NBUF * psz);
	close(self->fd);
	close(self->dev);
	close(self->src);
	unlink(SRC);
	EXPECT_EQ(0, umount(MNT));
	pinwb_writeback_knobs_default();
}

/*
 * The "device": rounds of NBUF fixed-buffer reads, each round from the other
 * generation of the source, so every round changes every buffer.
 */
static void *reader(void *arg)
{
	FIXTURE_DATA(uring) *self = arg;
	unsigned long round;

	for (round = 0; !atomic_load(&self->stop); round++) {
		unsigned int gen = round % GENS, i;
		struct io_uring_cqe *cqe;

		/* The ring has 2 * NBUF entries, and each round is reaped in full. */
		for (i = 0; i < NBUF; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&self->ring);

			io_uring_prep_read_fixed(sqe, self->src, self->map + i * psz, psz,
						 (gen * NBUF + i) * psz, i);
		}
		if (io_uring_submit_and_wait(&self->ring, NBUF) != NBUF) {
			atomic_store(&self->read_error, -EIO);
			break;
		}
		for (i = 0; i < NBUF; i++) {
			int err;

			if (io_uring_wait_cqe(&self->ring, &cqe))
				break;
			err = cqe->res < 0 ? cqe->res : cqe->res != (int)psz ? -ENODATA : 0;
			io_uring_cqe_seen(&self->ring, cqe);
			if (err && !atomic_load(&self->read_error))
				atomic_store(&self->read_error, err);
		}
		atomic_store(&self->rounds, round + 1);
	}
	return NULL;
}

static int sync_result(const char *policy)
{
	if (!strcmp(policy, "skip") || !strcmp(policy, "fail"))
		return -EBUSY;
	if (!strcmp(policy, "wait"))
		return -ETIMEDOUT;	/* io_uring never unpins by itself */
	return 0;
}

TEST_F_TIMEOUT(uring, fixed_buffer_reads_under_writeback, 120)
{
	const char *p = variant->name;
	bool naive = !strcmp(p, "naive"), autop = !strcmp(p, "auto");
	bool bounce = !strcmp(p, "bounce"), wait = !strcmp(p, "wait");
	bool direct = !strcmp(p, "direct"), defer = !strcmp(p, "defer");
	unsigned long long direct0 = pinwb_debugfs_u64("direct_writes");
	unsigned long long deferred0 = pinwb_debugfs_u64("deferred");
	unsigned long long torn0 = pinwb_debugfs_u64("torn_writes");
	unsigned long long foreign0 = pinwb_debugfs_u64("foreign_seen");
	unsigned long long bounced0 = pinwb_debugfs_u64("bounced");
	unsigned long long timeouts0 = pinwb_debugfs_u64("wait_timeouts");
	unsigned long long torn, foreign, bounced, timeouts;
	struct pinwb_page_state st = { .addr = (unsigned long)self->map };
	unsigned int syncs = 0, unexpected = 0, last_gen, i;
	time_t deadline = time(NULL) + 60;
	char *store = malloc(NBUF * psz);
	int ret, first_unexpected = 0, want = sync_result(p);

	ASSERT_NE(NULL, store);
	/* mm sees the pin; pinwb's index has none: a foreign pin. */
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_PAGE_STATE, &st));
	EXPECT_EQ(PINWB_PAGE_DMA_PINNED, st.flags & PINWB_PAGE_DMA_PINNED);
	EXPECT_EQ(0ULL, st.longterm + st.shortterm);

	ASSERT_EQ(0, pthread_create(&self->reader, NULL, reader, self));
	self->reading = true;
	while (atomic_load(&self->rounds) < 1 && !atomic_load(&self->read_error))
		usleep(1000);
	/*
	 * Data-integrity syncs (each marks the clean, pinned folios possibly
	 * dirty) and cleaning kicks, while at least 64 rounds of reads land.
	 * Under naive, go on until a torn write is seen (or the deadline fails
	 * the test).
	 */
	do {
		ret = fsync(self->fd) ? -errno : 0;
		if (ret != want && !unexpected++)
			first_unexpected = ret;
		pinwb_knob("flush_kick", "1");
		syncs++;
	} while ((syncs < 8 || atomic_load(&self->rounds) < 64 ||
		  (naive && pinwb_debugfs_u64("torn_writes") == torn0)) &&
		 time(NULL) < deadline && !atomic_load(&self->read_error));
	atomic_store(&self->stop, true);
	ASSERT_EQ(0, pthread_join(self->reader, NULL));
	self->reading = false;
	EXPECT_EQ(0, atomic_load(&self->read_error));
	EXPECT_EQ(0U, unexpected) {
		TH_LOG("fsync returned %d, not %d, %u times of %u", first_unexpected, want,
		       unexpected, syncs);
	}

	torn = pinwb_debugfs_u64("torn_writes") - torn0;
	foreign = pinwb_debugfs_u64("foreign_seen") - foreign0;
	bounced = pinwb_debugfs_u64("bounced") - bounced0;
	timeouts = pinwb_debugfs_u64("wait_timeouts") - timeouts0;
	TH_LOG("%s: %u syncs, %lu read rounds: torn %llu foreign %llu bounced %llu timeouts %llu",
	       p, syncs, atomic_load(&self->rounds), torn, foreign, bounced, timeouts);

	/* Every sync met the foreign pins. */
	EXPECT_LE((unsigned long long)syncs, foreign);
	if (naive) {
		EXPECT_LT(0ULL, torn);
	} else {
		EXPECT_EQ(0ULL, torn);
	}
	if (autop || bounce) {
		EXPECT_LE((unsigned long long)syncs, bounced);
	} else {
		EXPECT_EQ(0ULL, bounced);
	}
	if (wait) {
		EXPECT_LE((unsigned long long)syncs, timeouts);
	}
	/* A foreign pin counts as long-term: direct writes it at every sync, defer never. */
	if (direct) {
		EXPECT_LE((unsigned long long)syncs, pinwb_debugfs_u64("direct_writes") - direct0);
	}
	if (defer) {
		EXPECT_LE((unsigned long long)syncs, pinwb_debugfs_u64("deferred") - deferred0);
	}

	/* The reads really landed in pinwbfs's page cache. */
	last_gen = (atomic_load(&self->rounds) - 1) % GENS;
	for (i = 0; i < NBUF; i++)
		EXPECT_EQ(src_byte(last_gen, i), self->map[i * psz + psz - 1]);

	/*
	 * With the reads over and the buffers still registered, a sync gives the
	 * policy's answer once more (naive, bounce and auto write the final data
	 * now); then io_uring lets go, and a sync persists everything.
	 */
	EXPECT_EQ(want, fsync(self->fd) ? -errno : 0);
	ASSERT_EQ(0, io_uring_unregister_buffers(&self->ring));
	self->registered = false;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_PAGE_STATE, &st));
	EXPECT_EQ(0U, st.flags & PINWB_PAGE_DMA_PINNED);
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ((ssize_t)(NBUF * psz), pinwbfs_read_store(self->fd, store, NBUF * psz, 0));
	EXPECT_EQ(0, memcmp(store, self->map, NBUF * psz));
	free(store);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * A pinwbfs mounted with mmwb asks for dirty tracking (page_mkwrite), so mm
 * refuses io_uring's R/W long-term pin of it, as it does for any
 * writeback-capable file mapping (mm/gup.c: writable_file_mapping_allowed()).
 */
TEST(mmwb_refuses_buffer_registration)
{
	struct io_uring ring;
	struct iovec iov;
	char *map, *anon;
	int fd;

	psz = sysconf(_SC_PAGESIZE);
	ASSERT_EQ(0, pinwbfs_mount(MNT, "mmwb"));
	fd = open(MNT "/m", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, NBUF * psz));
	map = mmap(NULL, NBUF * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	memset(map, 'm', NBUF * psz);
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	iov.iov_base = map;
	iov.iov_len = NBUF * psz;
	EXPECT_EQ(-EFAULT, io_uring_register_buffers(&ring, &iov, 1));
	/* The same ring takes anonymous memory: the refusal is the mapping's. */
	anon = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	iov.iov_base = anon;
	iov.iov_len = psz;
	EXPECT_EQ(0, io_uring_register_buffers(&ring, &iov, 1));
	EXPECT_EQ(0, io_uring_unregister_buffers(&ring));
	io_uring_queue_exit(&ring);
	munmap(anon, psz);
	munmap(map, NBUF * psz);
	close(fd);
	EXPECT_EQ(0, umount(MNT));
}

int main(int argc, char **argv)
{
	pinwb_skip_unless_loaded(argc, argv, true);
	/* With io_uring, zero entries are EINVAL; without it, ENOSYS. */
	if (syscall(__NR_io_uring_setup, 0, NULL) < 0 && errno == ENOSYS)
		ksft_exit_skip("no io_uring in this kernel (CONFIG_IO_URING)\n");
	return test_harness_run(argc, argv);
}
