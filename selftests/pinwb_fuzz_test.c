// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded ioctl fuzzer for /dev/pinwb and pinwbfs files: random but
 * reproducible commands, flags, handles, ranges and argument pointers,
 * interleaved with munmap, mprotect, fork and close. Afterwards nothing may
 * stay pinned or charged. PINWB_FUZZ_CALLS and PINWB_FUZZ_SECONDS bound the
 * run (defaults: 1M calls or 10 s); PINWB_FUZZ_SEED picks the sequence.
 */
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT	"/tmp/pinwb-fuzz"
#define AREA	64		/* pages of each fuzzed area */

static unsigned long long xorshift(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static unsigned long long env_ull(const char *name, unsigned long long def)
{
	const char *v = getenv(name);

	return v ? strtoull(v, NULL, 0) : def;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

struct fuzz {
	unsigned long long seed;
	size_t psz;
	int dev, file;
	char *anon, *shared;		/* AREA pages each; may be unmapped at times */
	unsigned int handles[32];
	unsigned long calls, errors_by_errno[140];
};

/* AREA pages mapped as asked, between two PROT_NONE guard pages. */
static char *guarded(struct fuzz *f, int flags, int fd)
{
	char *g = mmap(NULL, (AREA + 2) * f->psz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (g == MAP_FAILED)
		return NULL;
	p = mmap(g + f->psz, AREA * f->psz, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A plausible-or-not user address: in an area, around it, bogus, kernel, NULL. */
static unsigned long fuzz_addr(struct fuzz *f)
{
	unsigned long long r = xorshift(&f->seed);
	char *base = r & 1 ? f->anon : f->shared;

	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return 0xffff888000000000UL + (r >> 20 & 0xffff000);
	case 2:
		return r;
	default:
		return (unsigned long)base + (r >> 8) % ((AREA + 2) * f->psz) - f->psz;
	}
}

static unsigned long long fuzz_len(struct fuzz *f)
{
	unsigned long long r = xorshift(&f->seed);

	switch (r % 6) {
	case 0:
		return 0;
	case 1:
		return r;			/* huge: E2BIG or overflow */
	default:
		return 1 + (r >> 8) % (AREA * f->psz);
	}
}

static unsigned int fuzz_handle(struct fuzz *f)
{
	unsigned long long r = xorshift(&f->seed);

	return r % 4 ? f->handles[r % 32] : (unsigned int)(r >> 32);
}

static void *fuzz_argp(struct fuzz *f, void *good)
{
	unsigned long long r = xorshift(&f->seed);

	switch (r % 16) {
	case 0:
		return NULL;
	case 1:
		return (void *)1;
	case 2:
		return (void *)0xffff888000001000UL;
	default:
		return good;
	}
}

static void fuzz_one(struct fuzz *f)
{
	unsigned long long r = xorshift(&f->seed);
	union {
		struct pinwb_pin pin;
		struct pinwb_unpin unpin;
		struct pinwb_query query;
		struct pinwb_page_state state;
		struct pinwb_dma dma;
		struct pinwbfs_read_store rs;
		char raw[128];
	} a;
	unsigned long cmd;
	int fd = f->dev, ret, i;
	char buf[256];

	memset(&a, 0, sizeof(a));
	/* Sometimes garbage in every byte, reserved fields included. */
	if (r % 7 == 0)
		for (i = 0; i < (int)sizeof(a.raw); i++)
			a.raw[i] = (char)xorshift(&f->seed);
	switch ((r >> 3) % 9) {
	case 0:
	case 1:
		cmd = PINWB_IOC_PIN;
		a.pin.addr = fuzz_addr(f);
		a.pin.len = fuzz_len(f);
		a.pin.flags = xorshift(&f->seed) % 8 ? xorshift(&f->seed) & PINWB_PIN_FLAGS :
			      (unsigned int)xorshift(&f->seed);
		break;
	case 2:
		cmd = PINWB_IOC_UNPIN;
		a.unpin.handle = fuzz_handle(f);
		a.unpin.flags = xorshift(&f->seed) % 3 == 0;
		break;
	case 3:
		cmd = PINWB_IOC_QUERY;
		a.query.handle = fuzz_handle(f);
		break;
	case 4:
		cmd = PINWB_IOC_PAGE_STATE;
		a.state.addr = fuzz_addr(f);
		break;
	case 5:
		cmd = PINWB_IOC_DMA_START;
		a.dma.handle = fuzz_handle(f);
		a.dma.bytes_per_pass = xorshift(&f->seed) % (2 * f->psz);
		a.dma.interval_us = xorshift(&f->seed) % 100;
		/* Now and then the full range of every field (EINVAL past the bounds). */
		if (xorshift(&f->seed) % 8 == 0) {
			a.dma.interval_us = xorshift(&f->seed) >> (xorshift(&f->seed) % 64);
			a.dma.bytes_per_pass = xorshift(&f->seed) >> (xorshift(&f->seed) % 64);
			a.dma.flags = xorshift(&f->seed) % 4;
		}
		break;
	case 6:
		cmd = PINWB_IOC_DMA_STOP;
		a.dma.handle = fuzz_handle(f);
		break;
	case 7:
		cmd = PINWBFS_IOC_READ_STORE;
		fd = xorshift(&f->seed) % 4 ? f->file : f->dev;
		a.rs.offset = xorshift(&f->seed) % (2 * AREA * f->psz);
		a.rs.len = xorshift(&f->seed) % sizeof(buf);
		a.rs.buf = (unsigned long)fuzz_argp(f, buf);
		break;
	default:
		/* Unknown or mis-sized commands. */
		cmd = _IOC(xorshift(&f->seed) & 3, PINWB_IOC_MAGIC, xorshift(&f->seed) & 0xff,
			   xorshift(&f->seed) & 0x1ff);
		break;
	}
	ret = ioctl(fd, cmd, fuzz_argp(f, &a));
	f->calls++;
	if (ret < 0 && errno < (int)(sizeof(f->errors_by_errno) / sizeof(f->errors_by_errno[0])))
		f->errors_by_errno[errno]++;
	if (cmd == PINWB_IOC_PIN && ret == 0)
		f->handles[xorshift(&f->seed) % 32] = a.pin.handle;
}

/* The rest of the world changing under the pins. */
static void fuzz_mm(struct fuzz *f)
{
	unsigned long long r = xorshift(&f->seed);
	char *base = r & 1 ? f->anon : f->shared;
	size_t off = (r >> 8) % AREA * f->psz, len = (1 + (r >> 16) % 8) * f->psz;
	pid_t pid;

	if (off + len > AREA * f->psz)
		len = AREA * f->psz - off;
	switch ((r >> 4) % 5) {
	case 0:		/* unmap and map again (pins keep the old pages) */
		munmap(base + off, len);
		mmap(base + off, len, PROT_READ | PROT_WRITE,
		     base == f->anon ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED : MAP_SHARED | MAP_FIXED,
		     base == f->anon ? -1 : f->file, off);
		break;
	case 1:
		mprotect(base + off, len, r & 0x100 ? PROT_READ : PROT_NONE);
		break;
	case 2:
		mprotect(base + off, len, PROT_READ | PROT_WRITE);
		memset(base + off, (int)r, len);
		break;
	case 3:		/* a child that pins with the inherited fd, then dies */
		pid = fork();
		if (pid == 0) {
			struct pinwb_pin p = { .addr = (unsigned long)base, .len = 4 * f->psz,
					       .flags = PINWB_PIN_LONGTERM };

			ioctl(f->dev, PINWB_IOC_PIN, &p);
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		break;
	default:	/* close and reopen: every pin of the file goes */
		close(f->dev);
		f->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
		break;
	}
}

/* The harness's default timeout (30 s) is shorter than a long fuzzing run. */
FIXTURE(fuzz)
{
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

TEST_F_TIMEOUT(fuzz, ioctls, 900)
{
	unsigned long long max_calls = env_ull("PINWB_FUZZ_CALLS", 1000000);
	double secs = env_ull("PINWB_FUZZ_SECONDS", 10), t0;
	struct pin_counters before;
	struct fuzz f = { .seed = env_ull("PINWB_FUZZ_SEED", 0x9e3779b97f4a7c15ULL) };
	int e;

	f.psz = sysconf(_SC_PAGESIZE);
	mkdir(MNT, 0755);
	ASSERT_EQ(0, mount("none", MNT, "pinwbfs", 0, "policy=auto"));
	f.file = open(MNT "/fuzz", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_LE(0, f.file);
	ASSERT_EQ(0, ftruncate(f.file, AREA * f.psz));
	/*
	 * Each area sits between PROT_NONE guard pages: fuzzed ranges reach a page
	 * beyond either end, and a write pin there plus the simulated device
	 * would scribble over whatever mapping happened to be adjacent.
	 */
	f.anon = guarded(&f, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	f.shared = guarded(&f, MAP_SHARED, f.file);
	ASSERT_NE(NULL, f.anon);
	ASSERT_NE(NULL, f.shared);
	memset(f.anon, 1, AREA * f.psz);
	memset(f.shared, 2, AREA * f.psz);
	pin_counters(&before);
	f.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, f.dev);

	TH_LOG("seed %#llx, at most %llu calls or %.0f s", f.seed, max_calls, secs);
	t0 = now_s();
	while (f.calls < max_calls && (f.calls & 1023 || now_s() - t0 < secs)) {
		fuzz_one(&f);
		if (xorshift(&f.seed) % 512 == 0)
			fuzz_mm(&f);
	}
	TH_LOG("%lu calls in %.1f s; EINVAL %lu EFAULT %lu ENOENT %lu E2BIG %lu ENOTTY %lu "
	       "EBUSY %lu ESRCH %lu ENOMEM %lu", f.calls, now_s() - t0, f.errors_by_errno[EINVAL],
	       f.errors_by_errno[EFAULT], f.errors_by_errno[ENOENT], f.errors_by_errno[E2BIG],
	       f.errors_by_errno[ENOTTY], f.errors_by_errno[EBUSY], f.errors_by_errno[ESRCH],
	       f.errors_by_errno[ENOMEM]);
	EXPECT_LT(10000UL, f.calls);
	/*
	 * Only the errors the ABI documents. EIO: READ_STORE of a page whose
	 * stored bytes fail their checksum (a CPU store through the mapping tore
	 * its IO: a default mount has no write-notify to hold it back).
	 */
	for (e = 1; e < (int)(sizeof(f.errors_by_errno) / sizeof(f.errors_by_errno[0])); e++) {
		if (e == EINVAL || e == EFAULT || e == ENOENT || e == E2BIG || e == ENOTTY ||
		    e == EBUSY || e == ESRCH || e == ENOMEM || e == ENOSPC || e == EIO)
			continue;
		EXPECT_EQ(0UL, f.errors_by_errno[e]) TH_LOG("errno %d", e);
	}
	close(f.dev);
	munmap(f.anon - f.psz, (AREA + 2) * f.psz);
	munmap(f.shared - f.psz, (AREA + 2) * f.psz);
	close(f.file);
	EXPECT_EQ(0, umount(MNT));
	ASSERT_NOTHING_LEAKED(&before);
}

PINWB_HARNESS_MAIN(true)
