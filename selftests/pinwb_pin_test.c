// SPDX-License-Identifier: GPL-2.0
/*
 * The pin table of /dev/pinwb: PINWB_IOC_PIN, _UNPIN, _QUERY, _PAGE_STATE,
 * their errors, accounting, lifetime and concurrency.
 *
 * Every test checks, at its end, that nothing stays pinned: /proc/vmstat's
 * nr_foll_pin_acquired - nr_foll_pin_released, debugfs pins_active and
 * pages_pinned, and the process's VmPin are as they were.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

static size_t page_size;

static void *map(size_t pages, int prot, int flags, int fd)
{
	void *p = mmap(NULL, pages * page_size, prot, flags, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* --- flag combinations, on anonymous and shared file memory ---------------- */

FIXTURE(mem)
{
	int fd, memfd;
	char *buf;
	size_t pages;
	struct pin_counters before;
};

enum backing { ANON, MEMFD, PINWBFS };

FIXTURE_VARIANT(mem)
{
	enum backing backing;
};

FIXTURE_VARIANT_ADD(mem, anon_private)
{
	.backing = ANON,
};

FIXTURE_VARIANT_ADD(mem, memfd_shared)
{
	.backing = MEMFD,
};

/* The folio index covers only pinwbfs folios, whose writeback pinwb drives. */
FIXTURE_VARIANT_ADD(mem, pinwbfs_shared)
{
	.backing = PINWBFS,
};

#define PINWBFS_MNT "/tmp/pinwb-pin-test"

FIXTURE_SETUP(mem)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->pages = 8;
	self->fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	if (variant->backing == PINWBFS) {
		mkdir(PINWBFS_MNT, 0755);
		ASSERT_EQ(0, mount("none", PINWBFS_MNT, "pinwbfs", 0, NULL));
		self->memfd = open(PINWBFS_MNT "/f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	} else if (variant->backing == MEMFD) {
		self->memfd = memfd_create("pinwb-test", MFD_CLOEXEC);
	}
	if (variant->backing != ANON) {
		ASSERT_LE(0, self->memfd);
		ASSERT_EQ(0, ftruncate(self->memfd, self->pages * page_size));
		self->buf = map(self->pages, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd);
	} else {
		self->memfd = -1;
		self->buf = map(self->pages, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1);
	}
	ASSERT_NE(NULL, self->buf);
	memset(self->buf, 0x5a, self->pages * page_size);
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(mem)
{
	munmap(self->buf, self->pages * page_size);
	if (self->memfd >= 0)
		close(self->memfd);
	close(self->fd);
	if (variant->backing == PINWBFS)
		EXPECT_EQ(0, umount(PINWBFS_MNT));
}

static void page_state(struct __test_metadata *_metadata, int fd, void *addr,
		       struct pinwb_page_state *st)
{
	memset(st, 0, sizeof(*st));
	st->addr = (unsigned long)addr;
	ASSERT_EQ(0, ioctl(fd, PINWB_IOC_PAGE_STATE, st));
}

TEST_F(mem, every_flag_combination)
{
	/* An unaligned range over pages 1..4: 4 pages. */
	char *addr = self->buf + page_size + 123;
	size_t len = 3 * page_size;
	unsigned int flags;

	for (flags = 0; flags <= PINWB_PIN_FLAGS; flags++) {
		bool get = flags & PINWB_PIN_GET, lt = flags & PINWB_PIN_LONGTERM;
		bool mirror = flags & PINWB_PIN_MIRROR;
		/* A mirror holds nothing: no FOLL_PIN, no reference, no charge. */
		bool held = !mirror, pinned = !get && !mirror;
		bool indexed = pinned && variant->backing == PINWBFS;
		long long acq0 = vmstat("nr_foll_pin_acquired");
		long long rel0 = vmstat("nr_foll_pin_released");
		unsigned long long calls0 = pinwb_debugfs_u64("pin_calls");
		long vm0 = vm_pinned_pages();
		struct pinwb_page_state st;
		struct pinwb_query q = { 0 };
		struct pinwb_pin p;
		int h;

		h = pinwb_pin_range(self->fd, addr, len, flags, &p);
		EXPECT_EQ(calls0 + 1, pinwb_debugfs_u64("pin_calls"));
		if ((get && lt) || (mirror && (flags & ~(PINWB_PIN_MIRROR | PINWB_PIN_WRITE)))) {
			EXPECT_EQ(-EINVAL, h) TH_LOG("flags %#x", flags);
			continue;
		}
		/* A kernel without CONFIG_HMM_MIRROR has no pinless device. */
		if (mirror && h == -EOPNOTSUPP)
			continue;
		ASSERT_LT(0, h) TH_LOG("flags %#x: %s", flags, strerror(-h));
		EXPECT_EQ(4U, p.nr_pages);
		EXPECT_EQ(held ? 4 : 0, vm_pinned_pages() - vm0) TH_LOG("flags %#x", flags);
		/*
		 * Net pins held: gup-fast may take and drop a pin before it falls back to
		 * the slow path (FOLL_LONGTERM of a file page), moving both counters.
		 * Plain references do not move them at all.
		 */
		EXPECT_EQ(pinned ? 4 : 0, (vmstat("nr_foll_pin_acquired") - acq0) -
					  (vmstat("nr_foll_pin_released") - rel0)) TH_LOG("flags %#x", flags);
		if (!pinned) {
			EXPECT_EQ(0, vmstat("nr_foll_pin_acquired") - acq0);
		}

		q.handle = h;
		ASSERT_EQ(0, ioctl(self->fd, PINWB_IOC_QUERY, &q));
		EXPECT_EQ(flags, q.flags);
		EXPECT_EQ((unsigned long)addr, q.addr);
		EXPECT_EQ(len, q.len);
		EXPECT_EQ(4U, q.nr_pages);
		EXPECT_EQ(getpid(), q.owner_pid);

		page_state(_metadata, self->fd, addr, &st);
		EXPECT_EQ(indexed && lt ? 1U : 0U, st.longterm) TH_LOG("flags %#x", flags);
		EXPECT_EQ(indexed && !lt ? 1U : 0U, st.shortterm) TH_LOG("flags %#x", flags);
		EXPECT_EQ(pinned, !!(st.flags & PINWB_PAGE_DMA_PINNED)) TH_LOG("flags %#x", flags);
		EXPECT_EQ(variant->backing == ANON, !!(st.flags & PINWB_PAGE_ANON));

		ASSERT_EQ(0, pinwb_unpin_handle(self->fd, h, 0));
		EXPECT_EQ(vmstat("nr_foll_pin_acquired") - acq0, vmstat("nr_foll_pin_released") - rel0);
		if (!pinned) {
			EXPECT_EQ(0, vmstat("nr_foll_pin_released") - rel0);
		}
		EXPECT_EQ(vm0, vm_pinned_pages());
		page_state(_metadata, self->fd, addr, &st);
		EXPECT_EQ(0U, st.longterm);
		EXPECT_EQ(0U, st.shortterm);
		EXPECT_EQ(0U, st.flags & PINWB_PAGE_DMA_PINNED);
	}
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(mem, index_counts_overlapping_pins)
{
	unsigned int k = variant->backing == PINWBFS;	/* indexed: 1, else 0 */
	struct pinwb_page_state st;
	int a, b, c;

	a = pinwb_pin_range(self->fd, self->buf, 2 * page_size, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	b = pinwb_pin_range(self->fd, self->buf + page_size, page_size, PINWB_PIN_LONGTERM, NULL);
	c = pinwb_pin_range(self->fd, self->buf + page_size, page_size, PINWB_PIN_FAST, NULL);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	ASSERT_LT(0, c);
	page_state(_metadata, self->fd, self->buf, &st);
	EXPECT_EQ(1U * k, st.longterm);
	EXPECT_EQ(0U, st.shortterm);
	EXPECT_NE(0U, st.flags & PINWB_PAGE_DMA_PINNED);
	page_state(_metadata, self->fd, self->buf + page_size, &st);
	EXPECT_EQ(2U * k, st.longterm);
	EXPECT_EQ(1U * k, st.shortterm);
	EXPECT_EQ(3ULL, pinwb_debugfs_u64("pins_active") - self->before.pins_active);
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, b, 0));
	page_state(_metadata, self->fd, self->buf + page_size, &st);
	EXPECT_EQ(1U * k, st.longterm);
	EXPECT_EQ(1U * k, st.shortterm);
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, a, 0));
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, c, 0));
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(mem, unpin_dirty_is_counted)
{
	unsigned long long d0 = pinwb_debugfs_u64("pages_unpinned_dirty");
	int h = pinwb_pin_range(self->fd, self->buf, 3 * page_size,
				PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);

	ASSERT_LT(0, h);
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, h, PINWB_UNPIN_DIRTY));
	EXPECT_EQ(3ULL, pinwb_debugfs_u64("pages_unpinned_dirty") - d0);
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(mem, debugfs_lists_live_pins)
{
	char buf[8192], want[64];
	int h = pinwb_pin_range(self->fd, self->buf, page_size, PINWB_PIN_LONGTERM, NULL);

	ASSERT_LT(0, h);
	ASSERT_LT(0, read_file(PINWB_DEBUGFS "/pins", buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%6d %7d ", h, getpid());
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("pins:\n%s", buf);
	EXPECT_NE(NULL, strstr(buf, "longterm"));
	EXPECT_NE(NULL, strstr(buf, "pinwb_pin_test"));
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, h, 0));
	ASSERT_LT(0, read_file(PINWB_DEBUGFS "/pins", buf, sizeof(buf)));
	EXPECT_EQ(NULL, strstr(buf, want));
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* --- ranges ----------------------------------------------------------------- */

FIXTURE(dev)
{
	int fd;
	struct pin_counters before;
};

/*
 * Closes the test's file, which releases every pin it still holds (a
 * closed fd, -1, is fine), reopens it for the teardown, unmaps @len bytes
 * at @buf and checks that nothing stayed pinned or charged.
 */
#define CLOSE_AND_ASSERT_NOTHING_LEAKED(self, buf, len) do {			\
	close((self)->fd);							\
	(self)->fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);			\
	munmap((buf), (len));							\
	ASSERT_NOTHING_LEAKED(&(self)->before);					\
} while (0)

FIXTURE_SETUP(dev)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	pin_counters(&self->before);
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST_F(dev, range_across_vma_boundary)
{
	char *buf = map(4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	struct pinwb_pin p;

	ASSERT_NE(NULL, buf);
	memset(buf, 1, 4 * page_size);
	/* Two VMAs: read-write, then read-only. */
	ASSERT_EQ(0, mprotect(buf + 2 * page_size, 2 * page_size, PROT_READ));
	ASSERT_LT(0, pinwb_pin_range(self->fd, buf + 1, 4 * page_size - 2, PINWB_PIN_LONGTERM, &p));
	EXPECT_EQ(4U, p.nr_pages);
	ASSERT_EQ(0, pinwb_unpin_handle(self->fd, p.handle, 0));
	/* Writing needs the whole range writable. */
	EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, buf, 4 * page_size, PINWB_PIN_WRITE, NULL));
	munmap(buf, 4 * page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(dev, range_with_hole_fails_and_leaks_nothing)
{
	char *buf = map(5, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	unsigned int flags[] = { 0, PINWB_PIN_LONGTERM, PINWB_PIN_FAST | PINWB_PIN_WRITE,
				 PINWB_PIN_GET, PINWB_PIN_GET | PINWB_PIN_FAST };
	size_t i;

	ASSERT_NE(NULL, buf);
	memset(buf, 1, 5 * page_size);
	ASSERT_EQ(0, munmap(buf + 3 * page_size, page_size));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		unsigned int f = flags[i];

		EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, buf, 5 * page_size, f, NULL)) {
			TH_LOG("flags %#x", f);
		}
	}
	munmap(buf, 5 * page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/* --- the errno table (Documentation/pinwb.rst) ------------------------------ */

TEST_F(dev, einval_rows)
{
	char *buf = map(2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	struct pinwb_pin p = { .addr = (unsigned long)buf, .len = page_size };
	struct pinwb_unpin u = { 0 };
	struct pinwb_query q = { 0 };
	int h;

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->fd, buf, 0, 0, NULL));			/* len 0 */
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->fd, buf, page_size, 1U << 31, NULL));	/* flag */
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->fd, buf, page_size, PINWB_PIN_FLAGS + 1, NULL));
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->fd, buf, page_size,
					   PINWB_PIN_GET | PINWB_PIN_LONGTERM, NULL));
	EXPECT_EQ(-EINVAL, pinwb_pin_range(self->fd, (void *)-4096L, 2 * page_size, 0, NULL));
	p.reserved[2] = 1;									/* reserved */
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_PIN, &p));
	EXPECT_EQ(EINVAL, errno);

	h = pinwb_pin_range(self->fd, buf, page_size, 0, NULL);
	ASSERT_LT(0, h);
	u.handle = h;
	u.flags = 2;										/* unpin flag */
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_UNPIN, &u));
	EXPECT_EQ(EINVAL, errno);
	u.flags = 0;
	u.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_UNPIN, &u));
	EXPECT_EQ(EINVAL, errno);
	q.handle = h;
	q.reserved[3] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_QUERY, &q));
	EXPECT_EQ(EINVAL, errno);
	/* The failed calls left the pin alone. */
	EXPECT_EQ(0, pinwb_unpin_handle(self->fd, h, 0));
	munmap(buf, 2 * page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(dev, efault_rows)
{
	char *buf = map(2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *none = map(1, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *ro = map(1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *gone = map(1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	unsigned int kinds[] = { 0, PINWB_PIN_FAST, PINWB_PIN_GET, PINWB_PIN_GET | PINWB_PIN_FAST };
	size_t i;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, none);
	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, gone);
	ASSERT_EQ(0, munmap(gone, page_size));
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		unsigned int f = kinds[i];

		EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, gone, page_size, f, NULL)) TH_LOG("%#x", f);
		EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, none, page_size, f, NULL)) TH_LOG("%#x", f);
		EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, (void *)0xffff888000000000UL,
						   page_size, f, NULL)) TH_LOG("%#x", f);
		EXPECT_EQ(-EFAULT, pinwb_pin_range(self->fd, ro, page_size, f | PINWB_PIN_WRITE, NULL))
			TH_LOG("%#x", f);
	}
	/* Bad argument pointers. */
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_PIN, (void *)1));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_UNPIN, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_QUERY, gone));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_PAGE_STATE, none));
	EXPECT_EQ(EFAULT, errno);
	munmap(buf, 2 * page_size);
	munmap(none, page_size);
	munmap(ro, page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * The request is readable but the result cannot be written back: the pin is
 * undone, since userspace could never learn its handle.
 */
TEST_F(dev, efault_on_result_write_undoes_the_pin)
{
	char *buf = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *req = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	struct pinwb_pin *p = (struct pinwb_pin *)req;
	unsigned long long calls0 = pinwb_debugfs_u64("pin_calls");

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, req);
	p->addr = (unsigned long)buf;
	p->len = page_size;
	ASSERT_EQ(0, mprotect(req, page_size, PROT_READ));
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_PIN, p));
	EXPECT_EQ(EFAULT, errno);
	/* It did pin (the call got that far), then gave everything back. */
	EXPECT_EQ(calls0 + 1, pinwb_debugfs_u64("pin_calls"));
	EXPECT_EQ(self->before.pins_active, pinwb_debugfs_u64("pins_active"));
	munmap(req, page_size);
	munmap(buf, page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(dev, e2big_over_the_per_pin_limit)
{
	unsigned long long max = pinwb_debugfs_u64("max_pages_per_pin");
	char *buf = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);

	ASSERT_NE(NULL, buf);
	ASSERT_LT(0ULL, max);
	/* Checked before gup: the range need not be mapped. */
	EXPECT_EQ(-E2BIG, pinwb_pin_range(self->fd, buf, (max + 1) * page_size, 0, NULL));
	EXPECT_EQ(-E2BIG, pinwb_pin_range(self->fd, buf + 1, max * page_size, 0, NULL));
	munmap(buf, page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

/*
 * Fills the per-file limit (16384 pins by default): 0.2 s on the test kernel,
 * but about 25 s on the debug kernel (KASAN, debug_pagealloc), hence the
 * longer timeout.
 */
TEST_F_TIMEOUT(dev, enospc_over_the_per_file_limit, 300)
{
	unsigned long long max = pinwb_debugfs_u64("max_pins_per_file"), i;
	char *buf = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int other = open(PINWB_DEV, O_RDWR | O_CLOEXEC), h;

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, other);
	buf[0] = 1;
	for (i = 0; i < max; i++) {
		ASSERT_LT(0, pinwb_pin_range(self->fd, buf, 1, PINWB_PIN_FAST, NULL)) {
			TH_LOG("pin %llu", i);
		}
	}
	EXPECT_EQ(-ENOSPC, pinwb_pin_range(self->fd, buf, 1, PINWB_PIN_FAST, NULL));
	/* The limit is per file. */
	h = pinwb_pin_range(other, buf, 1, 0, NULL);
	EXPECT_LT(0, h);
	EXPECT_EQ(0, pinwb_unpin_handle(other, h, 0));
	/* One unpin makes room for one pin. */
	EXPECT_EQ(0, pinwb_unpin_handle(self->fd, 1, 0));
	EXPECT_LT(0, pinwb_pin_range(self->fd, buf, 1, 0, NULL));
	EXPECT_EQ(-ENOSPC, pinwb_pin_range(self->fd, buf, 1, 0, NULL));
	close(other);
	CLOSE_AND_ASSERT_NOTHING_LEAKED(self, buf, page_size);
}

TEST_F(dev, enoent_rows)
{
	char *buf = map(1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int other = open(PINWB_DEV, O_RDWR | O_CLOEXEC), h;
	struct pinwb_query q = { 0 };

	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, other);
	EXPECT_EQ(-ENOENT, pinwb_unpin_handle(self->fd, 0, 0));
	EXPECT_EQ(-ENOENT, pinwb_unpin_handle(self->fd, 12345, 0));
	h = pinwb_pin_range(self->fd, buf, page_size, 0, NULL);
	ASSERT_LT(0, h);
	/* Another open file cannot see or release this file's pins. */
	EXPECT_EQ(-ENOENT, pinwb_unpin_handle(other, h, 0));
	q.handle = h;
	EXPECT_EQ(-1, ioctl(other, PINWB_IOC_QUERY, &q));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(0, pinwb_unpin_handle(self->fd, h, 0));
	/* Already unpinned. */
	EXPECT_EQ(-ENOENT, pinwb_unpin_handle(self->fd, h, 0));
	EXPECT_EQ(-1, ioctl(self->fd, PINWB_IOC_QUERY, &q));
	EXPECT_EQ(ENOENT, errno);
	/* Handles are not reused at once. */
	EXPECT_NE(h, pinwb_pin_range(self->fd, buf, page_size, 0, NULL));
	close(other);
	CLOSE_AND_ASSERT_NOTHING_LEAKED(self, buf, page_size);
}

/* RLIMIT_MEMLOCK binds an unprivileged process; CAP_IPC_LOCK lifts it. */
TEST_F(dev, enomem_over_memlock_without_cap_ipc_lock)
{
	char *buf = map(16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	struct rlimit rl = { .rlim_cur = 8 * page_size, .rlim_max = 8 * page_size };
	int status, h;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	memset(buf, 1, 16 * page_size);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int a, b, ok = 1;

		/* The device is root-only: open it, then become nobody, losing every capability. */
		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgid(65534) || setuid(65534))
			_exit(2);
		a = pinwb_pin_range(self->fd, buf, 6 * page_size, PINWB_PIN_LONGTERM, NULL);
		b = pinwb_pin_range(self->fd, buf, 3 * page_size, PINWB_PIN_GET, NULL);
		ok &= a > 0 && b == -ENOMEM && vm_pinned_pages() == 6;
		ok &= pinwb_pin_range(self->fd, buf, 2 * page_size, PINWB_PIN_FAST, NULL) > 0;
		ok &= pinwb_unpin_handle(self->fd, a, 0) == 0;
		ok &= pinwb_pin_range(self->fd, buf, 6 * page_size, 0, NULL) > 0;
		ok &= vm_pinned_pages() == 8;
		_exit(ok ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Root keeps CAP_IPC_LOCK: the same limit does not bind. */
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	h = pinwb_pin_range(self->fd, buf, 16 * page_size, PINWB_PIN_LONGTERM, NULL);
	EXPECT_LT(0, h);
	EXPECT_EQ(0, pinwb_unpin_handle(self->fd, h, 0));

	/* The child's pins went with its exit (the fd was shared: close our copy too). */
	CLOSE_AND_ASSERT_NOTHING_LEAKED(self, buf, 16 * page_size);
}

/* --- lifetime ---------------------------------------------------------------- */

TEST_F(dev, sigkill_releases_pins)
{
	char *buf = map(32, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	int pipefd[2], status;
	char c;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = open(PINWB_DEV, O_RDWR);

		memset(buf, 1, 32 * page_size);
		if (fd < 0 || pinwb_pin_range(fd, buf, 32 * page_size, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL) <= 0 ||
		    pinwb_pin_range(fd, buf, 8 * page_size, PINWB_PIN_FAST, NULL) <= 0)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(2ULL, pinwb_debugfs_u64("pins_active") - self->before.pins_active);
	EXPECT_EQ(40ULL, pinwb_debugfs_u64("pages_pinned") - self->before.pages_pinned);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	munmap(buf, 32 * page_size);
	ASSERT_NOTHING_LEAKED(&self->before);
}

TEST_F(dev, fork_pins_live_until_last_close)
{
	char *buf = map(4, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	int go[2], done[2], status, h;
	char c;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	memset(buf, 1, 4 * page_size);
	h = pinwb_pin_range(self->fd, buf, 4 * page_size, PINWB_PIN_LONGTERM, NULL);
	ASSERT_LT(0, h);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct pinwb_query q = { .handle = h };

		/* Wait until the parent closed its copy; the pin must still be there. */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(ioctl(self->fd, PINWB_IOC_QUERY, &q) == 0 && q.nr_pages == 4 ? 0 : 1);
	}
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(1ULL, pinwb_debugfs_u64("pins_active") - self->before.pins_active);
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	CLOSE_AND_ASSERT_NOTHING_LEAKED(self, buf, 4 * page_size);
}

/* --- concurrency ------------------------------------------------------------- */

#define RACE_THREADS	4
#define RACE_SECONDS	2
#define RACE_SLOTS	64

/*
 * Threads pin, unpin and query on one fd. Handles that pins return go into
 * shared slots, and unpin/query pick from the slots, so most calls hit live
 * handles and race with each other for them.
 */
struct race {
	int fd;
	char *buf;
	volatile int stop;
	unsigned int slots[RACE_SLOTS];
	unsigned long pins[RACE_THREADS], unpins[RACE_THREADS], queries[RACE_THREADS];
	unsigned long errors[RACE_THREADS];
	int last_error[RACE_THREADS];
};

struct race_thread {
	struct race *r;
	int id;
};

static void *race_worker(void *arg)
{
	struct race_thread *t = arg;
	struct race *r = t->r;
	unsigned int seed = t->id * 7919 + 1;

	while (!r->stop) {
		unsigned int op = rand_r(&seed) % 4, slot = rand_r(&seed) % RACE_SLOTS;
		size_t off = rand_r(&seed) % 15, n = rand_r(&seed) % 4 + 1;
		unsigned int h = __atomic_load_n(&r->slots[slot], __ATOMIC_RELAXED);
		struct pinwb_query q = { .handle = h };
		int ret;

		if (!h) {
			unsigned int zero = 0;

			ret = pinwb_pin_range(r->fd, r->buf + off * page_size, n * page_size,
					      (rand_r(&seed) & 1 ? PINWB_PIN_LONGTERM : PINWB_PIN_FAST) |
					      PINWB_PIN_WRITE, NULL);
			if (ret > 0) {
				r->pins[t->id]++;
				/* Lost the slot to another thread: give the pin back at once. */
				if (!__atomic_compare_exchange_n(&r->slots[slot], &zero, ret, false,
								 __ATOMIC_RELAXED, __ATOMIC_RELAXED) &&
				    !pinwb_unpin_handle(r->fd, ret, 0))
					r->unpins[t->id]++;
			}
		} else if (op < 2) {
			ret = pinwb_unpin_handle(r->fd, h, rand_r(&seed) & 1);
			if (!ret) {
				__atomic_compare_exchange_n(&r->slots[slot], &h, 0, false,
							    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
				r->unpins[t->id]++;
			}
		} else {
			ret = ioctl(r->fd, PINWB_IOC_QUERY, &q) ? -errno : 0;
			if (!ret) {
				r->queries[t->id]++;
				if (q.handle != h || !q.nr_pages || q.nr_pages > 4)
					ret = -EIO;	/* a torn or foreign record */
			}
		}
		/* Expected failures: a handle unpinned by another thread, or the fd closed. */
		if (ret < 0 && ret != -ENOENT && ret != -EBADF) {
			r->errors[t->id]++;
			r->last_error[t->id] = ret;
		}
	}
	return NULL;
}

TEST_F(dev, threads_pin_unpin_query_and_close)
{
	struct race r = { .fd = dup(self->fd) };
	struct race_thread t[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	unsigned long pins = 0, unpins = 0, queries = 0;
	int i;

	r.buf = map(20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
	ASSERT_NE(NULL, r.buf);
	memset(r.buf, 1, 20 * page_size);
	for (i = 0; i < RACE_THREADS; i++) {
		t[i] = (struct race_thread){ .r = &r, .id = i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_worker, &t[i]));
	}
	sleep(RACE_SECONDS);
	/* Close the fd while the threads use it: their calls fail with EBADF from then on. */
	close(r.fd);
	usleep(100000);
	r.stop = 1;
	for (i = 0; i < RACE_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(th[i], NULL));
		EXPECT_EQ(0UL, r.errors[i]) {
			TH_LOG("thread %d: last error %d", i, r.last_error[i]);
		}
		pins += r.pins[i];
		unpins += r.unpins[i];
		queries += r.queries[i];
	}
	TH_LOG("%lu pins, %lu unpins, %lu queries from %d threads", pins, unpins, queries,
	       RACE_THREADS);
	EXPECT_LT(100UL, pins);
	EXPECT_LT(100UL, unpins);
	EXPECT_LT(100UL, queries);
	/* The pins that survived belong to the file, which self->fd still holds. */
	EXPECT_EQ(pins - unpins, pinwb_debugfs_u64("pins_active") - self->before.pins_active);
	CLOSE_AND_ASSERT_NOTHING_LEAKED(self, r.buf, 20 * page_size);
}

PINWB_HARNESS_MAIN(false)
