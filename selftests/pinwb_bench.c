// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_bench: what pinwb costs, measured in the guest against anchors
 * measured in the same run. Every goal of issue 15 ("Performance"), and the
 * pin storm of issue 14, ends as
 * one "goal" line: the figure and its spread, the anchor it is a ratio to,
 * the bound, and "goal met" or "NOT met". Medians everywhere; the spread is
 * p10..p90 of the repetitions. Benchmarks, not tests: nothing here asserts
 * a time.
 *
 * 0. The machine: guest CPU flags, clock source, and which crc32c() the
 *    kernel runs (lib/crc/x86/crc32.h picks it at boot from the CPU flags;
 *    7.3 shows no driver name for it: /proc/crypto says "crc32c-lib"), with
 *    the cost of a 4 KiB crc32c in guest userspace, byte table and crc32q.
 * 1. Pin + unpin per page, 4 KiB .. 1 GiB (quick: .. 16 MiB), on anonymous
 *    memory, a tmpfs file and a pinwbfs file (MAP_SHARED), pre-faulted.
 *    pinwb: PINWB_IOC_PIN + PINWB_IOC_UNPIN, timed from userspace around
 *    both. Anchors, both with FOLL_WRITE:
 *      long-term: gup_test's PIN_LONGTERM_TEST_START + _STOP, timed the same
 *                 way: two ioctls, the pin held between them, a kvcalloc'ed
 *                 page array, no verification pass;
 *      fast:      PIN_FAST_BENCHMARK (pin_user_pages_fast(), short-term),
 *                 its in-kernel get + put time: the ioctl also allocates a
 *                 zeroed array and checks every page, untimed by gup_test
 *                 but not by us (the ioctl time is shown too: it flatters
 *                 pinwb by that pass).
 *    pinwb and its anchor alternate rep by rep; the ratio is the median of
 *    the per-rep ratios. Goal 1 (<= 1.05 at 1 GiB).
 * 2. Fixed cost: a 4 KiB long-term pin + unpin against START + STOP, many
 *    reps. Goal 2 (<= 1.3).
 * 3. fsync of a 64 MiB (quick: 8 MiB) pinwbfs file dirtied by write(2),
 *    io_delay_us = 0: unpinned (mapped, and not mapped), every page pinned
 *    long-term with policy bounce, and with policy auto; the memcpy of the
 *    same bytes between two anonymous buffers. Goal 3 (unpinned <= 2x
 *    memcpy; bounce and auto <= 1.3x unpinned).
 * 4. Wake-up latency, one waiter process and one releaser process: a pipe
 *    read woken by a write (the anchor); an fsync under policy wait woken
 *    by PINWB_IOC_UNPIN; an fsync woken by the release of a foreign pin
 *    (gup_test's PIN_LONGTERM_TEST_STOP). The releaser sleeps ~5 ms, takes
 *    a timestamp and releases; latency = the waiter's return - that
 *    timestamp. The three alternate run by run. Goal 4 (p50 and p99
 *    <= 1.2x the pipe's).
 * 5. Memory: N pins of P pages (P = 1, 64, 512, 4096 and, full mode, one
 *    1 GiB pin; N x P = 1 GiB, or N = 16384 one-page pins), on each kind of
 *    memory; the growth of slab in use (/proc/meminfo's Slab less the free
 *    objects /proc/slabinfo counts) and vmalloc (VmallocUsed), folded
 *    through /proc/sys/vm/stat_refresh, while a second such set is pinned, the
 *    first one held (it uses up the free objects slabs already had), minus
 *    the 8-byte page pointer every pin of the kernel needs. E(P), the bytes per pin beyond the page array, is
 *    F + b * P: F = E(1) per pin, b = (E(P) - E(1)) / (P - 1) per page.
 *    Goal 5 (b <= 1 for P >= 64, F <= 128); and writeback's memory in
 *    flight (see 6).
 * 6. Scale: one page pinned and unpinned (each timed), then START + STOP
 *    of the same page (the anchor, against drift), while 1 .. 16384 other
 *    one-page pins are live in the same file; fsync of 1 MiB .. 1 GiB
 *    (quick: .. 16 MiB) dirty, unpinned and bounced. Goal 6 (pin and unpin
 *    per anchor at 16384 live pins <= 1.2x at 1; fsync per MiB at the
 *    largest size <= 1.2x at 64 MiB, quick: 4 MiB). For the largest fsync, pinwb is reloaded first so
 *    that io_inflight_peak counts that fsync alone, and a thread samples
 *    MemFree: its dip is the memory in flight (goal 5: bounce <= unpinned
 *    + 4 MiB).
 * 7. A pin storm (issue 14, Kara's denial of service): 4 threads re-pin one
 *    of 16 dirty pages short-term, each pin taken before the last is
 *    dropped, while fsync runs 30 (quick: 8) times under policy wait and
 *    auto, wait_timeout_ms = 250; the anchor is the same fsync with no
 *    storm. Goal 14-storm (the slowest <= 1.5x the budget + the slowest
 *    calm fsync).
 *
 * Usage: pinwb_bench [-q] [-o FILE] [-s SECTION]
 *   -q       quick mode (small sizes, few repetitions)
 *   -s SECTION  run only that section (pin, fixed, wb, wake, mem,
 *            scale_pins, scale_fsync, storm) after the machine's; the goals
 *            of the others print as not met
 *   -o FILE  CSV output (default /tmp/pinwb-bench.csv), rows of
 *            section,case,param,reps,metric,value: param is a size in bytes,
 *            or the number of live pins in section scale_pin.
 *
 * Runs as root with pinwb loaded (PINWB_KO names the module, for reloads)
 * and debugfs mounted. Sets flush_period_ms to 0 (no cleaning writeback
 * under the measurements), io_delay_us to 0 and wait_timeout_ms, and
 * restores them at the end. Any failing ioctl or system call ends the
 * program with status 1 after cleaning up.
 */
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pinwb_test.h"
#include "mm/gup_test.h"

#define MNT		"/tmp/bench-fs"
#define TMPFS_DIR	"/tmp"		/* the guest's /tmp is a tmpfs */
#define GUP_TEST_FILE	"/sys/kernel/debug/gup_test"
#define DEFAULT_CSV	"/tmp/pinwb-bench.csv"

/* A kernel-internal gup flag, copied as tools/testing/selftests/mm/gup_test.c does. */
#define GUP_FOLL_WRITE	0x01

#define KiB		(1024UL)
#define MiB		(1024UL * KiB)
#define GiB		(1024UL * MiB)


/* The bounds of issue 15. */
#define GOAL_PIN	1.05	/* x the like-for-like gup_test anchor, at 1 GiB */
#define GOAL_FIXED	1.3	/* x START + STOP, one 4 KiB pin */
#define GOAL_FSYNC	2.0	/* x memcpy of the same bytes */
#define GOAL_BOUNCE	1.3	/* x the unpinned fsync */
#define GOAL_WAKE	1.2	/* x the pipe wake-up, p50 and p99 */
#define GOAL_PER_PAGE	1.0	/* bytes per page beyond the page array, pins >= 64 pages */
#define GOAL_PER_PIN	128.0	/* bytes per pin beyond the page array */
#define GOAL_INFLIGHT	4.0	/* MiB: MemFree dip of a bounce beyond the unpinned one */
#define GOAL_FLAT	1.2	/* x: at 16384 live pins against 1; fsync per MiB */

/* The bound of issue 14's pin storm (Kara's denial of service). */
#define GOAL_STORM	1.5	/* x (the wait budget + the slowest calm fsync) */

static struct {
	bool quick;
	size_t psz;
	int dev;		/* /dev/pinwb */
	const char *only;	/* -s: the one section to run */
	int dev2;		/* a second open file, for pins beyond one file's limit */
	int gup;		/* /sys/kernel/debug/gup_test, -1 if unavailable */
	FILE *csv;
	const char *csv_path;
	unsigned long long max_pages_per_pin, max_pins_per_file;
	bool mounted;
	bool knobs_saved;
	unsigned long long io_delay_us, flush_period_ms, wait_timeout_ms;
	unsigned long long cur_wait_timeout_ms;	/* set again after a reload */
	bool reloads_ok;	/* PINWB_KO given: the module can be reloaded */
} b = { .dev = -1, .dev2 = -1, .gup = -1 };

/* --- errors and cleanup ------------------------------------------------------ */

/* Mappings and files made by map_track() and file_track(), undone by cleanup(). */
static struct {
	void *addr;
	size_t len;
} maps[8];

static struct {
	int fd;
	char path[96];
} files[4] = { [0 ... 3] = { .fd = -1 } };

static void restore_knob(const char *name, unsigned long long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", value);
	if (pinwb_knob(name, buf))
		fprintf(stderr, "pinwb_bench: cannot restore %s to %s\n", name, buf);
}

static void close_devs(void)
{
	/* Closing the device releases every pin this program still holds. */
	if (b.dev >= 0)
		close(b.dev);
	if (b.dev2 >= 0)
		close(b.dev2);
	b.dev = -1;
	b.dev2 = -1;
}

/* Idempotent: releases whatever is still held. */
static void cleanup(void)
{
	unsigned int i;

	close_devs();
	if (b.gup >= 0) {
		/* A foreign pin left by section 4, if any (EINVAL if none). */
		ioctl(b.gup, PIN_LONGTERM_TEST_STOP);
		close(b.gup);
	}
	b.gup = -1;
	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		if (maps[i].addr)
			munmap(maps[i].addr, maps[i].len);
		maps[i].addr = NULL;
	}
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		if (files[i].fd < 0)
			continue;
		close(files[i].fd);
		unlink(files[i].path);
		files[i].fd = -1;
	}
	if (b.mounted && umount(MNT)) {
		fprintf(stderr, "pinwb_bench: umount %s: %s; detaching it\n", MNT,
			strerror(errno));
		umount2(MNT, MNT_DETACH);
	}
	b.mounted = false;
	if (b.knobs_saved) {
		restore_knob("io_delay_us", b.io_delay_us);
		restore_knob("flush_period_ms", b.flush_period_ms);
		restore_knob("wait_timeout_ms", b.wait_timeout_ms);
	}
	b.knobs_saved = false;
	if (b.csv)
		fclose(b.csv);
	b.csv = NULL;
}

/* Prints the error (with strerror(err) if err > 0), cleans up and exits 1. */
static void __attribute__((noreturn, format(printf, 2, 3)))
die(int err, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "pinwb_bench: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err > 0)
		fprintf(stderr, ": %s", strerror(err));
	fprintf(stderr, "\n");
	cleanup();
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		die(ENOMEM, "calloc(%zu, %zu)", n, size);
	return p;
}

static void *map_track(size_t len, int flags, int fd)
{
	unsigned int i;
	void *p;

	for (i = 0; i < ARRAY_SIZE(maps); i++)
		if (!maps[i].addr)
			break;
	if (i == ARRAY_SIZE(maps))
		die(0, "internal: too many mappings");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		die(errno, "mmap of %zu bytes", len);
	maps[i].addr = p;
	maps[i].len = len;
	return p;
}

static void *map_anon(size_t len)
{
	return map_track(len, MAP_PRIVATE | MAP_ANONYMOUS, -1);
}

static void map_release(void *addr)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		if (maps[i].addr == addr) {
			if (munmap(addr, maps[i].len))
				die(errno, "munmap");
			maps[i].addr = NULL;
			return;
		}
	}
	die(0, "internal: unmapping an untracked mapping");
}

/* Creates @dir/@name of @len bytes; returns its descriptor. */
static int file_create(const char *dir, const char *name, size_t len)
{
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i].fd < 0)
			break;
	if (i == ARRAY_SIZE(files))
		die(0, "internal: too many files");
	snprintf(files[i].path, sizeof(files[i].path), "%s/%s", dir, name);
	fd = open(files[i].path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(errno, "create %s", files[i].path);
	files[i].fd = fd;
	if (ftruncate(fd, len))
		die(errno, "ftruncate %s to %zu bytes", files[i].path, len);
	return fd;
}

static void file_remove(int fd)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		if (files[i].fd != fd)
			continue;
		if (close(fd))
			die(errno, "close %s", files[i].path);
		files[i].fd = -1;
		if (unlink(files[i].path))
			die(errno, "unlink %s", files[i].path);
		return;
	}
	die(0, "internal: removing an untracked file");
}

/* --- small helpers ------------------------------------------------------------ */

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec t = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median and spread (p10..p90) of a set of repetitions. */
struct stats {
	double p50, p10, p90, p99, min, max;
	size_t n;
};

/* Nearest rank of a sorted v[0..n). */
static double rank(const double *v, size_t n, unsigned int pct)
{
	size_t r = (n * pct + 99) / 100;

	return v[r < 1 ? 0 : r - 1];
}

/* Sorts v[0..n). */
static struct stats stats_of(double *v, size_t n)
{
	struct stats s = { .n = n };

	if (!n)
		die(0, "internal: statistics of nothing");
	qsort(v, n, sizeof(*v), cmp_double);
	s.p50 = rank(v, n, 50);
	s.p10 = rank(v, n, 10);
	s.p90 = rank(v, n, 90);
	s.p99 = rank(v, n, 99);
	s.min = v[0];
	s.max = v[n - 1];
	return s;
}

static const char *fmt_size(size_t bytes)
{
	static char buf[4][32];
	static unsigned int i;

	i = (i + 1) % 4;
	if (bytes >= GiB && !(bytes % GiB))
		snprintf(buf[i], sizeof(buf[i]), "%zu GiB", bytes / GiB);
	else if (bytes >= MiB && !(bytes % MiB))
		snprintf(buf[i], sizeof(buf[i]), "%zu MiB", bytes / MiB);
	else
		snprintf(buf[i], sizeof(buf[i]), "%zu KiB", bytes / KiB);
	return buf[i];
}

/* A field of /proc/meminfo in bytes. */
static unsigned long long meminfo_bytes(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	unsigned long long kb = 0;
	bool found = false;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		die(errno, "/proc/meminfo");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, n) && line[n] == ':') {
			kb = strtoull(line + n + 1, NULL, 10);
			found = true;
		}
	}
	fclose(f);
	if (!found)
		die(0, "no %s in /proc/meminfo", name);
	return kb * 1024;
}

/* A counter of pinwb's debugfs directory; fatal if missing. */
static unsigned long long ctr(const char *name)
{
	unsigned long long v = pinwb_debugfs_u64(name);

	if (v == ~0ULL)
		die(0, "cannot read %s/%s (is pinwb loaded and debugfs mounted?)",
		    PINWB_DEBUGFS, name);
	return v;
}

static void knob(const char *name, unsigned long long value)
{
	char buf[32];
	int ret;

	snprintf(buf, sizeof(buf), "%llu", value);
	ret = pinwb_knob(name, buf);
	if (ret)
		die(-ret, "writing %s to %s/%s", buf, PINWB_DEBUGFS, name);
	if (!strcmp(name, "wait_timeout_ms"))
		b.cur_wait_timeout_ms = value;
}

static void csv_row(const char *section, const char *name, size_t param, size_t reps,
		    const char *metric, double value)
{
	fprintf(b.csv, "%s,%s,%zu,%zu,%s,%.6g\n", section, name, param, reps, metric, value);
}

/* A figure with its spread, as CSV rows metric_{p50,p10,p90}. */
static void csv_stats(const char *section, const char *name, size_t param,
		      const char *metric, const struct stats *s)
{
	char m[96];

	snprintf(m, sizeof(m), "%s_p50", metric);
	csv_row(section, name, param, s->n, m, s->p50);
	snprintf(m, sizeof(m), "%s_p10", metric);
	csv_row(section, name, param, s->n, m, s->p10);
	snprintf(m, sizeof(m), "%s_p90", metric);
	csv_row(section, name, param, s->n, m, s->p90);
}

/* --- the goal lines ------------------------------------------------------------ */

static struct {
	char id[48];
	char line[400];
} goals[40];
static unsigned int nr_goals, nr_goals_met;

/* Whether section @name runs (-s names another). */
static bool section_runs(const char *name)
{
	return !b.only || !strcmp(b.only, name);
}

/*
 * One goal line: "goal <id>: <what the caller says>; bound <= <bound>: goal met".
 * Met when figure <= bound; a NaN figure (not measured) is not met, nor is the
 * goal of a section that did not run (its figures are 0).
 */
static void __attribute__((format(printf, 5, 6)))
add_goal(const char *section, const char *id, double figure, double bound, const char *fmt, ...)
{
	bool met;
	char text[320];
	va_list ap;

	if (nr_goals == ARRAY_SIZE(goals))
		die(0, "internal: too many goals");
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!section_runs(section)) {
		figure = NAN;
		snprintf(text, sizeof(text), "not run (-s %s)", b.only);
	}
	met = figure <= bound;
	snprintf(goals[nr_goals].id, sizeof(goals[0].id), "%s", id);
	snprintf(goals[nr_goals].line, sizeof(goals[0].line), "goal %s: %s; bound <= %g: %s",
		 id, text, bound, met ? "goal met" : "NOT met");
	nr_goals++;
	nr_goals_met += met;
	csv_row("goal", id, 0, 0, "figure", figure);
	csv_row("goal", id, 0, 0, "bound", bound);
	csv_row("goal", id, 0, 0, "met", met);
}

/* --- pinwb, gup_test and the module ----------------------------------------------- */

static void mount_fs(const char *policy)
{
	char opts[32];

	if (mkdir(MNT, 0755) && errno != EEXIST)
		die(errno, "mkdir %s", MNT);
	snprintf(opts, sizeof(opts), "policy=%s", policy);
	if (mount("none", MNT, "pinwbfs", 0, opts))
		die(errno, "mount -t pinwbfs -o %s none %s", opts, MNT);
	b.mounted = true;
}

static void umount_fs(void)
{
	if (umount(MNT))
		die(errno, "umount %s", MNT);
	b.mounted = false;
}

static void pwrite_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, buf + done, len - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die(n < 0 ? errno : EIO, "write(2) to the pinwbfs file");
		done += n;
	}
}

static const char *pin_flags_str(unsigned int flags)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s%s%s", flags & PINWB_PIN_LONGTERM ? "LONGTERM " : "",
		 flags & PINWB_PIN_FAST ? "FAST " : "", flags & PINWB_PIN_WRITE ? "WRITE" : "");
	return buf;
}

/* PINWB_IOC_PIN on @dev of [addr, addr + len), which must be exactly @pages pages. */
static unsigned int pin_on(int dev, void *addr, size_t len, unsigned int flags, size_t pages)
{
	struct pinwb_pin p;
	int h = pinwb_pin_range(dev, addr, len, flags, &p);

	if (h < 0)
		die(-h, "PINWB_IOC_PIN of %zu pages (%s)", pages, pin_flags_str(flags));
	if (p.nr_pages != pages)
		die(0, "PINWB_IOC_PIN pinned %llu pages, not %zu", (unsigned long long)p.nr_pages,
		    pages);
	return h;
}

static unsigned int pin(void *addr, size_t len, unsigned int flags, size_t pages)
{
	return pin_on(b.dev, addr, len, flags, pages);
}

static void unpin_on(int dev, unsigned int handle, unsigned int flags)
{
	int ret = pinwb_unpin_handle(dev, handle, flags);

	if (ret)
		die(-ret, "PINWB_IOC_UNPIN of handle %u", handle);
}

static void unpin(unsigned int handle, unsigned int flags)
{
	unpin_on(b.dev, handle, flags);
}

/*
 * Pins @pages pages at @addr in pins of @chunk pages (the last may be
 * shorter); returns the handles (*nr_handles of them).
 */
static unsigned int *pin_chunks_on(int dev, char *addr, size_t pages, size_t chunk,
				   unsigned int flags, size_t *nr_handles)
{
	size_t n = (pages + chunk - 1) / chunk, i, done = 0;
	unsigned int *h = xcalloc(n, sizeof(*h));

	for (i = 0; i < n; i++) {
		size_t this = pages - done < chunk ? pages - done : chunk;

		h[i] = pin_on(dev, addr + done * b.psz, this * b.psz, flags, this);
		done += this;
	}
	*nr_handles = n;
	return h;
}

static unsigned int *pin_chunks(char *addr, size_t pages, size_t chunk, unsigned int flags,
				size_t *nr_handles)
{
	return pin_chunks_on(b.dev, addr, pages, chunk, flags, nr_handles);
}

static void unpin_chunks_on(int dev, unsigned int *h, size_t n, unsigned int flags)
{
	size_t i;

	for (i = 0; i < n; i++)
		unpin_on(dev, h[i], flags);
	free(h);
}

static void unpin_chunks(unsigned int *h, size_t n, unsigned int flags)
{
	unpin_chunks_on(b.dev, h, n, flags);
}

/* gup_test's long-term pin, held until gup_stop(): the anchor and the foreign pin. */
static void gup_start(void *addr, size_t size)
{
	struct pin_longterm_test t = {
		.addr = (unsigned long)addr,
		.size = size,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};

	if (ioctl(b.gup, PIN_LONGTERM_TEST_START, &t))
		die(errno, "%s PIN_LONGTERM_TEST_START of %s", GUP_TEST_FILE, fmt_size(size));
}

static void gup_stop(void)
{
	if (ioctl(b.gup, PIN_LONGTERM_TEST_STOP))
		die(errno, "%s PIN_LONGTERM_TEST_STOP", GUP_TEST_FILE);
}

static void open_devs(void)
{
	int ver;

	b.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (b.dev < 0)
		die(errno, "open %s", PINWB_DEV);
	b.dev2 = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (b.dev2 < 0)
		die(errno, "open %s", PINWB_DEV);
	ver = ioctl(b.dev, PINWB_IOC_VERSION);
	if (ver < 0)
		die(errno, "PINWB_IOC_VERSION");
	if (ver != PINWB_ABI_VERSION)
		die(0, "pinwb ABI %d, this program was built for %d", ver, PINWB_ABI_VERSION);
}

/* The knobs of the measurements: no cleaning writeback, no device delay. */
static void set_knobs(void)
{
	knob("flush_period_ms", 0);
	knob("io_delay_us", 0);
	if (b.cur_wait_timeout_ms)
		knob("wait_timeout_ms", b.cur_wait_timeout_ms);
}

/*
 * Reloads pinwb, so that its peak counters (io_inflight_peak) start from 0.
 * Nothing of pinwb may be in use: no pin, no pinwbfs mount. Returns false,
 * with pinwb still loaded, when the module cannot be reloaded.
 */
static bool reload_module(void)
{
	int ret = -EBUSY, i;

	if (!b.reloads_ok)
		return false;
	close_devs();
	/* The last fput of the device may be deferred: retry for a while. */
	for (i = 0; i < 50 && ret; i++) {
		ret = pinwb_unload();
		if (ret)
			sleep_us(20000);
	}
	if (ret) {
		fprintf(stderr, "pinwb_bench: warning: cannot unload pinwb: %s\n",
			strerror(-ret));
		b.reloads_ok = false;
		open_devs();
		return false;
	}
	ret = pinwb_load();
	if (ret)
		die(-ret, "reloading %s", pinwb_ko());
	open_devs();
	set_knobs();
	return true;
}

/* --- memory kinds ----------------------------------------------------------------- */

enum mem { MEM_ANON, MEM_TMPFS, MEM_PINWBFS, NR_MEMS };
static const char *const mem_names[NR_MEMS] = { "anon", "tmpfs", "pinwbfs" };

struct region {
	enum mem mem;
	char *addr;
	size_t len;
	int fd;		/* -1 for anonymous memory */
};

/* @len bytes of @mem, mapped (MAP_SHARED for files) and pre-faulted. */
static void region_map(struct region *r, enum mem kind, size_t len)
{
	r->mem = kind;
	r->len = len;
	r->fd = -1;
	if (kind == MEM_ANON) {
		r->addr = map_anon(len);
	} else {
		if (kind == MEM_PINWBFS && !b.mounted)
			mount_fs("naive");
		r->fd = file_create(kind == MEM_TMPFS ? TMPFS_DIR : MNT, "pinwb-bench-region",
				    len);
		r->addr = map_track(len, MAP_SHARED, r->fd);
	}
	memset(r->addr, 0x5a, len);
}

static void region_unmap(struct region *r)
{
	map_release(r->addr);
	if (r->fd >= 0)
		file_remove(r->fd);
	if (r->mem == MEM_PINWBFS)
		umount_fs();
}

/* Whether a buffer of @bytes leaves the guest enough room. */
static bool fits(size_t bytes)
{
	return bytes / 4 * 5 + 64 * MiB <= meminfo_bytes("MemAvailable");
}

/* --- 0. the machine ------------------------------------------------------------------ */

static char crc_impl[160];
static double crc_table_ns, crc_insn_ns;

static uint32_t crc32c_table[256];

static uint32_t crc32c_bytes(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[(crc ^ *p++) & 0xff];
	return crc;
}

/* One stream of crc32q, as crc32c_arch() does below 512 bytes. */
static __attribute__((target("sse4.2"))) uint32_t crc32c_insn(uint32_t crc, const uint8_t *p,
							       size_t len)
{
	uint64_t c = crc, v;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	return c;
}

/* Whether /proc/cpuinfo's first "flags" line has @flag. */
static bool cpu_flag(const char *flags, const char *flag)
{
	size_t n = strlen(flag);
	const char *p = flags;

	while ((p = strstr(p, flag))) {
		if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

/* Whether the running kernel has the symbol @sym (/proc/kallsyms, names only). */
static bool ksym(const char *sym)
{
	char line[256], name[128];
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %127s", name) == 1 && !strcmp(name, sym);
	fclose(f);
	return found;
}

static double time_crc(uint32_t (*fn)(uint32_t, const uint8_t *, size_t), const uint8_t *buf)
{
	int reps = b.quick ? 51 : 201, r;
	double *t = xcalloc(reps, sizeof(double));
	uint32_t sink = 0;
	struct stats s;

	for (r = 0; r < reps; r++) {
		double t0 = now_ns();

		sink += fn(~0U, buf, b.psz);
		/* The result must be computed: sink escapes. */
		__asm__ __volatile__("" : : "r"(sink) : "memory");
		t[r] = now_ns() - t0;
	}
	s = stats_of(t, reps);
	free(t);
	return s.p50;
}

static void section_env(void)
{
	char flags[8192] = "", model[256] = "?", clk[64] = "?", crypto[64] = "?", line[8192];
	bool sse42, pclmul, vpclmul, avx512, arch;
	uint8_t *buf = xcalloc(1, b.psz);
	FILE *f = fopen("/proc/cpuinfo", "r");
	unsigned int i, k;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "flags", 5) && !flags[0])
			snprintf(flags, sizeof(flags), "%s", strchr(line, ':') + 1);
		if (!strncmp(line, "model name", 10) && !strcmp(model, "?")) {
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
			model[strcspn(model, "\n")] = '\0';
		}
	}
	if (f)
		fclose(f);
	if (read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		      clk, sizeof(clk)) > 0)
		clk[strcspn(clk, "\n")] = '\0';
	f = fopen("/proc/crypto", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char name[64];

		/* "name : crc32c" is followed by its "driver : ..." line. */
		if (sscanf(line, "name : %63s", name) == 1 && !strcmp(name, "crc32c") &&
		    fgets(line, sizeof(line), f) && sscanf(line, "driver : %63s", name) == 1)
			snprintf(crypto, sizeof(crypto), "%s", name);
	}
	if (f)
		fclose(f);

	sse42 = cpu_flag(flags, "sse4_2");
	pclmul = cpu_flag(flags, "pclmulqdq");
	vpclmul = cpu_flag(flags, "vpclmulqdq") && cpu_flag(flags, "avx2");
	avx512 = cpu_flag(flags, "avx512f") && cpu_flag(flags, "avx512vl");
	/* Built only with CONFIG_CRC_OPTIMIZATIONS (CONFIG_CRC32_ARCH). */
	arch = ksym("crc32c_x86_3way");
	/* lib/crc/x86/crc32.h: crc32_mod_init_arch() and crc32c_arch(), for 4 KiB. */
	if (!arch)
		snprintf(crc_impl, sizeof(crc_impl),
			 "crc32c_base (generic byte table: no arch code in this kernel)");
	else if (!sse42)
		snprintf(crc_impl, sizeof(crc_impl),
			 "crc32c_base (generic byte table: the CPU has no SSE4.2)");
	else if (pclmul && vpclmul && avx512)
		snprintf(crc_impl, sizeof(crc_impl),
			 "crc32_lsb_vpclmul_avx512, or crc32c_x86_3way if AVX-512 is slow here");
	else if (pclmul)
		snprintf(crc_impl, sizeof(crc_impl),
			 "crc32c_x86_3way (3 streams of crc32q + PCLMULQDQ, len >= 512)");
	else
		snprintf(crc_impl, sizeof(crc_impl), "crc32q loop (SSE4.2, no PCLMULQDQ)");

	for (i = 0; i < 256; i++) {
		uint32_t c = i;

		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78 : c >> 1;
		crc32c_table[i] = c;
	}
	for (i = 0; i < b.psz; i++)
		buf[i] = i * 7;
	crc_table_ns = time_crc(crc32c_bytes, buf);
	crc_insn_ns = sse42 ? time_crc(crc32c_insn, buf) : -1;
	free(buf);

	printf("\n== 0. the machine ==\n");
	printf("guest CPU: %s; sse4_2 %s, pclmulqdq %s, vpclmulqdq+avx2 %s, avx512f+vl %s\n",
	       model, sse42 ? "yes" : "no", pclmul ? "yes" : "no", vpclmul ? "yes" : "no",
	       avx512 ? "yes" : "no");
	printf("clocksource: %s\n", clk);
	printf("crc32c: /proc/crypto driver %s; arch code %s; crc32c() of 4 KiB runs %s\n",
	       crypto, arch ? "built in (crc32c_x86_3way in kallsyms)" : "absent", crc_impl);
	printf("crc32c of 4 KiB in guest userspace: byte table %.0f ns", crc_table_ns);
	if (crc_insn_ns >= 0)
		printf(", crc32q loop %.0f ns", crc_insn_ns);
	printf("\n");
	csv_row("env", "crc32c_4KiB", b.psz, 0, "byte_table_ns", crc_table_ns);
	csv_row("env", "crc32c_4KiB", b.psz, 0, "crc32q_ns", crc_insn_ns);
	csv_row("env", "cpu", 0, 0, "sse4_2", sse42);
	csv_row("env", "cpu", 0, 0, "pclmulqdq", pclmul);
	csv_row("env", "kernel", 0, 0, "crc32c_arch_code", arch);
}

/* --- 1. pin cost per page ---------------------------------------------------------- */

enum { MODE_LT, MODE_FAST, NR_MODES };
static const char *const mode_names[NR_MODES] = { "longterm", "fast" };
static const unsigned int mode_flags[NR_MODES] = {
	PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, PINWB_PIN_FAST | PINWB_PIN_WRITE,
};
static const char *const mode_anchor[NR_MODES] = {
	"PIN_LONGTERM_TEST_START/STOP", "PIN_FAST_BENCHMARK get+put",
};

static const size_t full_sizes[] = { 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB, 256 * MiB, 1 * GiB };
static const int full_reps[] = { 51, 31, 21, 11, 11, 11 };
static const size_t quick_sizes[] = { 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB };
static const int quick_reps[] = { 21, 15, 9, 5 };
#define NR_SIZES	ARRAY_SIZE(full_sizes)

struct pin_res {
	bool done;
	double pinwb, anchor, ioctl;	/* median ns per page */
	struct stats ratio;		/* per-rep pinwb / anchor */
	double ratio_ioctl;		/* fast: median of per-rep pinwb / ioctl time */
};

static struct pin_res pin_res[NR_MEMS][NR_MODES][NR_SIZES];
static size_t pin_goal_size;

/* PIN + UNPIN of the whole buffer, timed around both ioctls. */
static double pinwb_pair_ns(char *buf, size_t size, unsigned int flags)
{
	double t0 = now_ns();
	unsigned int h = pin(buf, size, flags, size / b.psz);

	unpin(h, 0);
	return now_ns() - t0;
}

/* gup_test's START + STOP, timed the same way. */
static double gup_pair_ns(char *buf, size_t size)
{
	double t0 = now_ns();

	gup_start(buf, size);
	gup_stop();
	return now_ns() - t0;
}

/* One PIN_FAST_BENCHMARK ioctl; returns its time, *kern_ns its own get + put. */
static double gup_fast_ns(char *buf, size_t size, double *kern_ns)
{
	struct gup_test g = {
		.addr = (unsigned long)buf,
		.size = size,
		/* One call for the whole buffer: nothing to truncate. */
		.nr_pages_per_call = size / b.psz,
		.gup_flags = GUP_FOLL_WRITE,
	};
	double t0, t1;
	int ret;

	t0 = now_ns();
	ret = ioctl(b.gup, PIN_FAST_BENCHMARK, &g);
	t1 = now_ns();
	if (ret)
		die(errno, "%s PIN_FAST_BENCHMARK of %s", GUP_TEST_FILE, fmt_size(size));
	if (g.size != size)
		die(0, "%s PIN_FAST_BENCHMARK pinned only %llu of %zu bytes", GUP_TEST_FILE,
		    (unsigned long long)g.size, size);
	*kern_ns = (g.get_delta_usec + g.put_delta_usec) * 1e3;
	return t1 - t0;
}

/* Times the anchor of @mode once; *alt gets the fast ioctl's own time. */
static double anchor_ns(int mode, char *buf, size_t size, double *alt)
{
	double kern;

	if (mode == MODE_LT) {
		*alt = -1;
		return gup_pair_ns(buf, size);
	}
	*alt = gup_fast_ns(buf, size, &kern);
	return kern;
}

static void bench_pin(enum mem mem, int mode, unsigned int si, char *buf, size_t size, int reps)
{
	struct pin_res *res = &pin_res[mem][mode][si];
	double *tp = xcalloc(reps, sizeof(double)), *ta = xcalloc(reps, sizeof(double));
	double *ti = xcalloc(reps, sizeof(double)), *tr = xcalloc(reps, sizeof(double));
	double *tri = xcalloc(reps, sizeof(double)), pages = size / b.psz, alt;
	unsigned int flags = mode_flags[mode];
	size_t nr = 0, nri = 0;
	char name[32];
	int r;

	/* One untimed round of each, for caches and allocators. */
	pinwb_pair_ns(buf, size, flags);
	anchor_ns(mode, buf, size, &alt);
	for (r = 0; r < reps; r++) {
		/* Alternate which goes first, so that neither always follows the other. */
		if (r & 1)
			ta[r] = anchor_ns(mode, buf, size, &ti[r]);
		tp[r] = pinwb_pair_ns(buf, size, flags);
		if (!(r & 1))
			ta[r] = anchor_ns(mode, buf, size, &ti[r]);
		/*
		 * gup_test's own times have 1 us steps: a ratio to them only
		 * from 100 us on (1 %).
		 */
		if (mode == MODE_LT || ta[r] >= 100e3)
			tr[nr++] = tp[r] / ta[r];
		if (ti[r] > 0)
			tri[nri++] = tp[r] / ti[r];
	}
	/* A ratio from a few reps that came out slow would be no figure at all. */
	if (nr < (size_t)reps / 2 + 1)
		nr = 0;
	if (nri < (size_t)reps / 2 + 1)
		nri = 0;
	res->done = true;
	res->ratio = nr ? stats_of(tr, nr) : (struct stats){ .p50 = NAN, .p10 = NAN, .p90 = NAN };
	res->ratio_ioctl = nri ? stats_of(tri, nri).p50 : NAN;
	res->pinwb = stats_of(tp, reps).p50 / pages;
	res->anchor = stats_of(ta, reps).p50 / pages;
	res->ioctl = mode == MODE_FAST ? stats_of(ti, reps).p50 / pages : NAN;

	printf("%-8s %-9s %8s %5d %11.1f %11.1f ", mem_names[mem], mode_names[mode],
	       fmt_size(size), reps, res->pinwb, res->anchor);
	if (nr)
		printf("%7.3f [%5.3f..%5.3f]", res->ratio.p50, res->ratio.p10, res->ratio.p90);
	else
		printf("%7s %14s", "-", "");
	if (mode == MODE_FAST)
		printf(" %10.1f %7.3f", res->ioctl, res->ratio_ioctl);
	printf("\n");
	snprintf(name, sizeof(name), "%s/%s", mem_names[mem], mode_names[mode]);
	csv_row("pin", name, size, reps, "pinwb_ns_per_page", res->pinwb);
	csv_row("pin", name, size, reps, "anchor_ns_per_page", res->anchor);
	if (nr)
		csv_stats("pin", name, size, "ratio", &res->ratio);
	if (mode == MODE_FAST) {
		csv_row("pin", name, size, reps, "fast_ioctl_ns_per_page", res->ioctl);
		csv_row("pin", name, size, reps, "ratio_to_fast_ioctl_p50", res->ratio_ioctl);
	}
	free(tp);
	free(ta);
	free(ti);
	free(tr);
	free(tri);
}

static void section_pin(void)
{
	const size_t *sizes = b.quick ? quick_sizes : full_sizes;
	const int *reps = b.quick ? quick_reps : full_reps;
	size_t nr_sizes = b.quick ? ARRAY_SIZE(quick_sizes) : ARRAY_SIZE(full_sizes);
	unsigned int si;
	int mem, mode;

	pin_goal_size = sizes[nr_sizes - 1];
	printf("\n== 1. pin + unpin per page (median ns; ratio: median [p10..p90] of per-rep ratios) ==\n");
	printf("anchors: long-term %s, two ioctls timed like pinwb's; fast %s\n"
	       "(in-kernel, 1 us steps: no ratio below 100 us; the last two columns: the whole\n"
	       "PIN_FAST_BENCHMARK ioctl, with its verification pass, and pinwb's ratio to it)\n",
	       mode_anchor[MODE_LT],
	       mode_anchor[MODE_FAST]);
	printf("%-8s %-9s %8s %5s %11s %11s %7s %14s %10s %7s\n", "memory", "mode", "size",
	       "reps", "pinwb ns/pg", "anchor", "ratio", "spread", "ioctl", "ratio");
	for (mem = 0; mem < NR_MEMS; mem++) {
		for (si = 0; si < nr_sizes; si++) {
			size_t size = sizes[si];
			struct region r;

			if (size / b.psz > b.max_pages_per_pin) {
				printf("%-8s %-9s %8s skipped: more than max_pages_per_pin (%llu)\n",
				       mem_names[mem], "", fmt_size(size), b.max_pages_per_pin);
				continue;
			}
			if (!fits(size)) {
				printf("%-8s %-9s %8s skipped: MemAvailable is %llu MiB\n",
				       mem_names[mem], "", fmt_size(size),
				       meminfo_bytes("MemAvailable") / MiB);
				continue;
			}
			region_map(&r, mem, size);
			for (mode = 0; mode < NR_MODES; mode++)
				bench_pin(mem, mode, si, r.addr, size, reps[si]);
			region_unmap(&r);
		}
	}
}

/* --- 2. fixed cost of a pin ---------------------------------------------------------- */

struct fixed_res {
	struct stats pinwb, anchor, ratio;	/* ns; ratio per rep */
};

static struct fixed_res fixed_res[NR_MEMS];

static void section_fixed(void)
{
	int reps = b.quick ? 201 : 2001, r, mem;
	double *tp = xcalloc(reps, sizeof(double)), *ta = xcalloc(reps, sizeof(double));
	double *tr = xcalloc(reps, sizeof(double));

	printf("\n== 2. fixed cost: one 4 KiB long-term pin + unpin, %d reps (median [p10..p90]) ==\n",
	       reps);
	printf("%-8s %22s %22s %22s\n", "memory", "pinwb us", "START+STOP us", "ratio");
	for (mem = 0; mem < NR_MEMS; mem++) {
		struct fixed_res *res = &fixed_res[mem];
		struct region reg;

		region_map(&reg, mem, b.psz);
		pinwb_pair_ns(reg.addr, b.psz, mode_flags[MODE_LT]);
		gup_pair_ns(reg.addr, b.psz);
		for (r = 0; r < reps; r++) {
			if (r & 1)
				ta[r] = gup_pair_ns(reg.addr, b.psz);
			tp[r] = pinwb_pair_ns(reg.addr, b.psz, mode_flags[MODE_LT]);
			if (!(r & 1))
				ta[r] = gup_pair_ns(reg.addr, b.psz);
			tr[r] = tp[r] / ta[r];
		}
		region_unmap(&reg);
		res->pinwb = stats_of(tp, reps);
		res->anchor = stats_of(ta, reps);
		res->ratio = stats_of(tr, reps);
		printf("%-8s %7.2f [%5.2f..%5.2f] %7.2f [%5.2f..%5.2f] %7.3f [%5.3f..%5.3f]\n",
		       mem_names[mem], res->pinwb.p50 / 1e3, res->pinwb.p10 / 1e3,
		       res->pinwb.p90 / 1e3, res->anchor.p50 / 1e3, res->anchor.p10 / 1e3,
		       res->anchor.p90 / 1e3, res->ratio.p50, res->ratio.p10, res->ratio.p90);
		csv_stats("fixed", mem_names[mem], b.psz, "pinwb_ns", &res->pinwb);
		csv_stats("fixed", mem_names[mem], b.psz, "start_stop_ns", &res->anchor);
		csv_stats("fixed", mem_names[mem], b.psz, "ratio", &res->ratio);
	}
	free(tp);
	free(ta);
	free(tr);
}

/* --- 3. writeback cost ------------------------------------------------------------- */

struct wb_case {
	const char *id;			/* for names and CSV */
	const char *label;
	const char *policy;
	bool mapped, pinned;
};

enum { WB_UNMAPPED, WB_UNPINNED, WB_BOUNCE, WB_AUTO, NR_WB };
static const struct wb_case wb_cases[NR_WB] = {
	{ "unmapped", "unpinned, not mapped", "naive", false, false },
	{ "unpinned", "unpinned (anchor)", "naive", true, false },
	{ "bounce", "pinned, bounce", "bounce", true, true },
	{ "auto", "pinned, auto", "auto", true, true },
};

struct wb_res {
	struct stats ms;
	double bounced, written;	/* per fsync: bytes bounced, folios written */
	unsigned long long torn;
	double dip;			/* largest MemFree dip during an fsync, bytes */
	long long inflight;		/* io_inflight_peak after a reload, -1 if none */
};

static struct stats memcpy_ms;
static size_t wb_len;
static struct wb_res wb_res[NR_WB];

/* memcpy of @len bytes between two anonymous buffers, median of a few copies. */
static void measure_memcpy(size_t len)
{
	int reps = b.quick ? 5 : 11, r;
	double *t = xcalloc(reps, sizeof(double));
	char *src = map_anon(len), *dst = map_anon(len);

	memset(src, 0x11, len);
	memset(dst, 0x22, len);
	memcpy(dst, src, len);			/* warm-up */
	for (r = 0; r < reps; r++) {
		double t0 = now_ns();

		memcpy(dst, src, len);
		/* The copy must happen: dst escapes. */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t[r] = (now_ns() - t0) / 1e6;
	}
	memcpy_ms = stats_of(t, reps);
	map_release(src);
	map_release(dst);
	free(t);
}

/* A thread that samples MemFree while an fsync runs. */
struct sampler {
	pthread_t tid;
	int fd;			/* /proc/meminfo */
	int stop;
	long long min_kb;
};

static long long memfree_kb(int fd)
{
	char buf[512], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "MemFree:");
	return p ? strtoll(p + 8, NULL, 10) : -1;
}

static void *sampler_fn(void *arg)
{
	struct sampler *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		long long kb = memfree_kb(s->fd);

		if (kb >= 0 && kb < s->min_kb)
			s->min_kb = kb;
		sleep_us(500);
	}
	return NULL;
}

/*
 * Runs @reps timed fsyncs of a @len-byte file of case @wc, each after a
 * write(2) of every byte. With @reload, pinwb is reloaded first and
 * res->inflight is its io_inflight_peak afterwards.
 */
static void run_wb(const struct wb_case *wc, size_t len, int reps, bool reload,
		   struct wb_res *res)
{
	size_t pages = len / b.psz, nr_h = 0;
	double *t = xcalloc(reps, sizeof(double));
	unsigned long long bounced, written, torn;
	struct sampler s = { .fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC) };
	unsigned int *h = NULL;
	char *map = NULL, *src;
	long long before;
	int r, fd, ret;

	if (s.fd < 0)
		die(errno, "/proc/meminfo");
	res->inflight = reload && reload_module() ? 0 : -1;
	mount_fs(wc->policy);
	fd = file_create(MNT, "wb", len);
	if (wc->mapped) {
		map = map_track(len, MAP_SHARED, fd);
		memset(map, 0x33, len);		/* pre-fault */
	}
	if (wc->pinned)
		h = pin_chunks(map, pages, b.max_pages_per_pin,
			       PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, &nr_h);
	src = map_anon(len);
	memset(src, 0x44, len);

	/* An untimed round first: the store then holds every page. */
	pwrite_all(fd, src, len);
	if (fsync(fd))
		die(errno, "fsync (policy %s, %s)", wc->policy, wc->label);

	bounced = ctr("bounced_bytes");
	written = ctr("folios_written");
	torn = ctr("torn_writes");
	res->dip = 0;
	for (r = 0; r < reps; r++) {
		double t0;

		pwrite_all(fd, src, len);
		before = memfree_kb(s.fd);
		s.min_kb = before;
		s.stop = 0;
		ret = pthread_create(&s.tid, NULL, sampler_fn, &s);
		if (ret)
			die(ret, "pthread_create");
		t0 = now_ns();
		if (fsync(fd))
			die(errno, "fsync (policy %s, %s)", wc->policy, wc->label);
		t[r] = (now_ns() - t0) / 1e6;
		__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
		pthread_join(s.tid, NULL);
		if ((before - s.min_kb) * 1024.0 > res->dip)
			res->dip = (before - s.min_kb) * 1024.0;
	}
	res->bounced = (double)(ctr("bounced_bytes") - bounced) / reps;
	res->written = (double)(ctr("folios_written") - written) / reps;
	res->torn = ctr("torn_writes") - torn;
	res->ms = stats_of(t, reps);
	if (res->inflight == 0)
		res->inflight = ctr("io_inflight_peak");

	if (h)
		unpin_chunks(h, nr_h, 0);
	map_release(src);
	if (map)
		map_release(map);
	file_remove(fd);
	umount_fs();
	close(s.fd);
	free(t);
	if (res->torn)
		die(0, "%llu torn writes with no device writing (%s)", res->torn, wc->label);
}

static void section_wb(void)
{
	int reps = b.quick ? 3 : 7;
	unsigned int i;

	wb_len = (b.quick ? 8 : 64) * MiB;
	measure_memcpy(wb_len);

	printf("\n== 3. fsync of a %s pinwbfs file dirtied by write(2) (io_delay_us=0, %d reps) ==\n",
	       fmt_size(wb_len), reps);
	printf("%-22s %-7s %9s %21s %7s %9s %8s %6s\n", "case", "policy", "median ms",
	       "[p10..p90]", "ratio", "bounced", "written", "us/pg");
	for (i = 0; i < NR_WB; i++) {
		const struct wb_case *wc = &wb_cases[i];
		struct wb_res *res = &wb_res[i];

		run_wb(wc, wb_len, reps, false, res);
		printf("%-22s %-7s %9.2f [%8.2f..%8.2f] ", wc->label, wc->policy, res->ms.p50,
		       res->ms.p10, res->ms.p90);
		/* wb_cases[WB_UNPINNED] is the anchor and comes before the cases compared with it. */
		if (i > WB_UNPINNED)
			printf("%7.3f", res->ms.p50 / wb_res[WB_UNPINNED].ms.p50);
		else
			printf("%7s", "-");
		printf(" %5.1f MiB %8.0f %6.2f\n", res->bounced / MiB, res->written,
		       res->ms.p50 * 1e3 / (wb_len / b.psz));
		csv_stats("writeback", wc->id, wb_len, "fsync_ms", &res->ms);
		csv_row("writeback", wc->id, wb_len, reps, "bounced_bytes_per_fsync", res->bounced);
		csv_row("writeback", wc->id, wb_len, reps, "folios_written_per_fsync",
			res->written);
	}
	printf("memcpy of %s (anchor): %.2f ms [%.2f..%.2f], %.2f GB/s\n", fmt_size(wb_len),
	       memcpy_ms.p50, memcpy_ms.p10, memcpy_ms.p90, wb_len / memcpy_ms.p50 / 1e6);
	printf("per page: fsync unpinned %.2f us, memcpy %.2f us; 3 crc32c in guest userspace: byte table %.2f us",
	       wb_res[WB_UNPINNED].ms.p50 * 1e3 / (wb_len / b.psz),
	       memcpy_ms.p50 * 1e3 / (wb_len / b.psz), 3 * crc_table_ns / 1e3);
	if (crc_insn_ns >= 0)
		printf(", crc32q loop %.2f us", 3 * crc_insn_ns / 1e3);
	printf("\n");
	csv_stats("writeback", "memcpy", wb_len, "ms", &memcpy_ms);
}

/* --- 4. wake-up latency --------------------------------------------------------------- */

/*
 * The waiter: a child process that, for each command read from @ctl, blocks
 * in one system call and reports when it returned.
 */
struct wake_shared {
	double t_ret;
	int err;
};

enum { WAKE_PIPE, WAKE_PINWB, WAKE_FOREIGN, NR_WAKE };
static const char *const wake_names[NR_WAKE] = { "pipe", "pinwb_unpin", "foreign_release" };
static const char *const wake_labels[NR_WAKE] = {
	"pipe write -> read returns (anchor)", "PINWB_IOC_UNPIN -> fsync returns",
	"gup_test STOP -> fsync returns",
};

static struct stats wake[NR_WAKE];
static int wake_excluded[NR_WAKE];

static void __attribute__((noreturn))
waiter(int ctl, int data, int done, int fd, struct wake_shared *sh)
{
	char c, x = 0;

	while (read(ctl, &c, 1) == 1 && c != 'q') {
		int err = 0;

		if (c == 'p')
			err = read(data, &x, 1) == 1 ? 0 : errno ? errno : EIO;
		else
			err = fsync(fd) ? errno : 0;
		sh->t_ret = now_ns();
		sh->err = err;
		if (write(done, &x, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static void xwrite1(int fd)
{
	char c = 'x';

	if (write(fd, &c, 1) != 1)
		die(errno, "write to a pipe");
}

static void section_wake(void)
{
	int runs = b.quick ? 30 : 200, r, k, n[NR_WAKE] = { 0 }, ctl[2], data[2], done[2];
	double *lat[NR_WAKE];
	struct wake_shared *sh;
	char *map, *src = xcalloc(1, b.psz), c;
	bool foreign = b.gup >= 0;
	pid_t pid;
	int fd, status;

	for (k = 0; k < NR_WAKE; k++)
		lat[k] = xcalloc(runs, sizeof(double));
	knob("wait_timeout_ms", 60000);
	mount_fs("wait");
	fd = file_create(MNT, "wait", b.psz);
	map = map_track(b.psz, MAP_SHARED, fd);
	memset(map, 0x55, b.psz);
	if (fsync(fd))
		die(errno, "fsync of the unpinned page (policy wait)");
	sh = map_track(b.psz, MAP_SHARED | MAP_ANONYMOUS, -1);
	if (pipe(ctl) || pipe(data) || pipe(done))
		die(errno, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(errno, "fork");
	if (!pid)
		waiter(ctl[0], data[0], done[1], fd, sh);

	/* Run -1 is a warm-up; the kinds take turns within each run. */
	for (r = -1; r < runs; r++) {
		for (k = 0; k < NR_WAKE; k++) {
			unsigned long long waited = 0;
			unsigned int h = 0;
			double t0;

			if (k == WAKE_FOREIGN && !foreign)
				continue;
			if (k != WAKE_PIPE) {
				if (k == WAKE_PINWB)
					h = pin(map, b.psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, 1);
				else
					gup_start(map, b.psz);
				src[0] = r;
				pwrite_all(fd, src, b.psz);	/* dirty it */
				waited = ctr("waited");
			}
			c = k == WAKE_PIPE ? 'p' : 'f';
			if (write(ctl[1], &c, 1) != 1)
				die(errno, "write to the waiter");
			sleep_us(5000);
			t0 = now_ns();
			if (k == WAKE_PIPE)
				xwrite1(data[1]);
			else if (k == WAKE_PINWB)
				unpin(h, PINWB_UNPIN_DIRTY);
			else
				gup_stop();
			if (read(done[0], &c, 1) != 1)
				die(errno, "the waiter process died");
			if (sh->err)
				die(sh->err, "the waiter's %s", k == WAKE_PIPE ? "read" : "fsync");
			if (r < 0)
				continue;
			/* The fsync must have met the pin, or it did not wait for this release. */
			if (sh->t_ret < t0 || (k != WAKE_PIPE && ctr("waited") == waited)) {
				wake_excluded[k]++;
				continue;
			}
			lat[k][n[k]++] = (sh->t_ret - t0) / 1e3;
		}
	}
	c = 'q';
	if (write(ctl[1], &c, 1) != 1 || waitpid(pid, &status, 0) != pid)
		die(errno, "ending the waiter");
	close(ctl[0]);
	close(ctl[1]);
	close(data[0]);
	close(data[1]);
	close(done[0]);
	close(done[1]);
	map_release(sh);
	map_release(map);
	file_remove(fd);
	umount_fs();
	free(src);

	printf("\n== 4. wake-up latency: release -> the waiting process returns (policy wait, us) ==\n");
	printf("%-38s %5s %8s %9s %9s %9s %9s\n", "", "runs", "excluded", "p50", "p10", "p90",
	       "p99");
	for (k = 0; k < NR_WAKE; k++) {
		if (!n[k]) {
			wake[k] = (struct stats){ .p50 = NAN, .p99 = NAN };
			printf("%-38s not measured\n", wake_labels[k]);
			free(lat[k]);
			continue;
		}
		wake[k] = stats_of(lat[k], n[k]);
		printf("%-38s %5d %8d %9.1f %9.1f %9.1f %9.1f\n", wake_labels[k], n[k],
		       wake_excluded[k], wake[k].p50, wake[k].p10, wake[k].p90, wake[k].p99);
		csv_stats("wake", wake_names[k], b.psz, "us", &wake[k]);
		csv_row("wake", wake_names[k], b.psz, n[k], "us_p99", wake[k].p99);
		csv_row("wake", wake_names[k], b.psz, n[k], "excluded_runs", wake_excluded[k]);
		free(lat[k]);
	}
	printf("(excluded: runs whose fsync had not met the pin at the release; p99 of %d runs:\n"
	       "sample %d of them, sorted)\n", runs, (runs * 99 + 99) / 100);
}

/* --- 5. memory --------------------------------------------------------------------- */

static const size_t mem_pins[] = { 1, 64, 512, 4096, 262144 };	/* pages per pin */
#define NR_MEM_PINS	ARRAY_SIZE(mem_pins)

struct mem_res {
	bool done;
	double extra;		/* E(P): bytes per pin beyond its page array */
	double lo, hi;		/* its smallest and largest over the reps */
	double left;		/* bytes per pin left after unpinning */
	size_t pins;
};

static struct mem_res mem_res[NR_MEMS][NR_MEM_PINS];
static double mem_fixed[NR_MEMS], mem_per_page[NR_MEMS];
static size_t mem_per_page_at[NR_MEMS];

/*
 * The bytes of free objects in slabs, from /proc/slabinfo (CONFIG_SLUB_DEBUG
 * counts the free objects of the node partial lists; those of per-CPU slabs
 * show as used); -1 without /proc/slabinfo.
 */
static long long slab_free_bytes(void)
{
	unsigned long active, num, objsize;
	char line[512], name[64];
	long long bytes = 0;
	FILE *f = fopen("/proc/slabinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lu %lu %lu", name, &active, &num, &objsize) == 4 &&
		    num >= active)
			bytes += (long long)(num - active) * objsize;
	fclose(f);
	return bytes;
}

/*
 * Kernel memory in use: slab pages (with large kmalloc()s, which the slab
 * counters include) less their free objects, and vmalloc pages; after
 * folding every CPU's pending deltas.
 */
static long long kmem_bytes(void)
{
	/* vmstat() writes /proc/sys/vm/stat_refresh first; these count pages. */
	long long un = vmstat("nr_slab_unreclaimable"), rec = vmstat("nr_slab_reclaimable");
	long long vm = vmstat("nr_vmalloc"), free = slab_free_bytes();

	if (un < 0 || rec < 0 || vm < 0)
		die(0, "cannot read nr_slab_{un,}reclaimable or nr_vmalloc in /proc/vmstat");
	return (un + rec + vm) * (long long)b.psz - (free > 0 ? free : 0);
}

static void section_mem(void)
{
	/*
	 * Slab pages alone miss the free objects that slabs already have:
	 * kmem_bytes() subtracts them. What is left, the free objects of
	 * per-CPU slabs, is used up by set A: every measurement pins two sets
	 * of N pins of P pages, and only set B, pinned while A is held, is
	 * counted, its error spread over N x P pages (N one-page pins).
	 */
	size_t total = b.quick ? 16384 : 262144, n1 = b.quick ? 4096 : 16384;
	size_t nr_p = b.quick ? 4 : NR_MEM_PINS, len = 2 * total * b.psz;
	unsigned int flags = PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, pi;
	int reps = b.quick ? 1 : 3, mem, r;

	printf("\n== 5. memory per pin: N pins of P pages, bytes beyond the 8-byte page pointers ==\n");
	printf("(growth of slab in use (%s) and vmalloc,\n"
	       "pinning a second set of N pins while a first is held, median of %d; E: bytes per\n"
	       "pin beyond its page array; F = E(1); b = (E(P) - F) / (P - 1); E < 0: the slab\n"
	       "objects per-CPU caches had free, below what this can resolve)\n",
	       slab_free_bytes() >= 0 ? "slab pages less free objects, /proc/slabinfo" :
	       "slab pages: no /proc/slabinfo", reps);
	printf("%-8s %7s %6s %12s %19s %12s %10s\n", "memory", "P pages", "N pins", "E bytes/pin",
	       "[min..max]", "b bytes/page", "left/pin");
	for (mem = 0; mem < NR_MEMS; mem++) {
		struct region reg;

		mem_per_page[mem] = NAN;
		mem_fixed[mem] = NAN;
		if (!fits(len)) {
			printf("%-8s skipped: MemAvailable is %llu MiB\n", mem_names[mem],
			       meminfo_bytes("MemAvailable") / MiB);
			continue;
		}
		region_map(&reg, mem, len);
		for (pi = 0; pi < nr_p; pi++) {
			size_t p = mem_pins[pi], n = p == 1 ? n1 : p >= total ? 1 : total / p;
			struct mem_res *res = &mem_res[mem][pi];
			double e[3], left[3];
			unsigned int *ha, *hb;
			long long k0, k1, k2, k3;
			struct stats st;
			size_t na, nb;

			if (p > b.max_pages_per_pin || n > b.max_pins_per_file)
				continue;
			for (r = 0; r < reps; r++) {
				k0 = kmem_bytes();
				ha = pin_chunks_on(b.dev, reg.addr, n * p, p, flags, &na);
				k1 = kmem_bytes();
				hb = pin_chunks_on(b.dev2, reg.addr + n * p * b.psz, n * p, p, flags,
						   &nb);
				k2 = kmem_bytes();
				unpin_chunks_on(b.dev2, hb, nb, 0);
				unpin_chunks_on(b.dev, ha, na, 0);
				k3 = kmem_bytes();
				e[r] = (double)(k2 - k1) / n - 8.0 * p;
				left[r] = (double)(k3 - k0) / (2 * n);
			}
			res->done = true;
			res->pins = n;
			st = stats_of(e, reps);
			res->extra = st.p50;
			res->lo = st.min;
			res->hi = st.max;
			res->left = stats_of(left, reps).p50;
			if (pi == 0) {
				mem_fixed[mem] = res->extra;
				printf("%-8s %7zu %6zu %12.1f [%7.1f..%7.1f] %12s %10.1f\n",
				       mem_names[mem], p, n, res->extra, res->lo, res->hi, "-",
				       res->left);
			} else {
				double bpp = (res->extra - mem_res[mem][0].extra) / (p - 1);

				if (isnan(mem_per_page[mem]) || bpp > mem_per_page[mem]) {
					mem_per_page[mem] = bpp;
					mem_per_page_at[mem] = p;
				}
				printf("%-8s %7zu %6zu %12.1f [%7.1f..%7.1f] %12.3f %10.1f\n",
				       mem_names[mem], p, n, res->extra, res->lo, res->hi, bpp,
				       res->left);
				csv_row("memory", mem_names[mem], p * b.psz, reps,
					"bytes_per_page_beyond_fixed", bpp);
			}
			csv_row("memory", mem_names[mem], p * b.psz, reps, "pins", n);
			csv_row("memory", mem_names[mem], p * b.psz, reps,
				"bytes_per_pin_beyond_page_array", res->extra);
			csv_row("memory", mem_names[mem], p * b.psz, reps, "bytes_per_pin_left",
				res->left);
		}
		region_unmap(&reg);
	}
}

/* --- 6. scale -------------------------------------------------------------------------- */

static const size_t live_levels[] = { 1, 4, 16, 64, 256, 1024, 4096, 16384 };
#define NR_LEVELS	ARRAY_SIZE(live_levels)

struct scale_pin_res {
	struct stats pin, unpin, anchor;	/* ns */
	/* Per probe, pin and unpin time / its START + STOP: cancels drift. */
	struct stats pin_norm, unpin_norm;
};

static struct scale_pin_res scale_pin[NR_MEMS][NR_LEVELS];
static const int scale_mems[] = { MEM_ANON, MEM_PINWBFS };

static const size_t full_fsync_mib[] = { 1, 4, 16, 64, 256, 1024 };
static const size_t quick_fsync_mib[] = { 1, 4, 16 };
#define NR_FSYNC	ARRAY_SIZE(full_fsync_mib)
static const int scale_wb[] = { WB_UNPINNED, WB_BOUNCE };

static struct wb_res scale_fsync[ARRAY_SIZE(scale_wb)][NR_FSYNC];
static size_t nr_fsync_sizes;

static void section_scale_pins(void)
{
	size_t max_live = live_levels[NR_LEVELS - 1], live = 0, len = 2 * max_live * b.psz;
	int probes = b.quick ? 51 : 501, r;
	unsigned int m, li;

	if (max_live > b.max_pins_per_file)
		die(0, "max_pins_per_file is %llu: fewer than %zu live pins", b.max_pins_per_file,
		    max_live);
	printf("\n== 6a. scale: one 4 KiB long-term pin, then its unpin, with N one-page pins live in the same file (ns, %d probes) ==\n",
	       probes);
	printf("(norm: median of per-probe time / START+STOP of the same page, measured next to it)\n");
	printf("%-8s %7s %22s %22s %8s %7s %7s\n", "memory", "N live", "pin [p10..p90]",
	       "unpin [p10..p90]", "anchor", "norm", "norm");
	for (m = 0; m < ARRAY_SIZE(scale_mems); m++) {
		int mem = scale_mems[m];
		double *tp = xcalloc(probes, sizeof(double)), *tu = xcalloc(probes, sizeof(double));
		double *ta = xcalloc(probes, sizeof(double)), *np = xcalloc(probes, sizeof(double));
		double *nu = xcalloc(probes, sizeof(double));
		unsigned int *live_h = xcalloc(max_live, sizeof(*live_h));
		struct region reg;

		/* Live pins on the even pages, probes on the odd ones (through dev2). */
		region_map(&reg, mem, len);
		live = 0;
		for (li = 0; li < NR_LEVELS; li++) {
			struct scale_pin_res *res = &scale_pin[mem][li];

			for (; live < live_levels[li]; live++)
				live_h[live] = pin(reg.addr + 2 * live * b.psz, b.psz,
						   mode_flags[MODE_LT], 1);
			for (r = -1; r < probes; r++) {
				char *at = reg.addr + (2 * ((r + 1) % max_live) + 1) * b.psz;
				double t0, t1, t2, anchor;
				unsigned int h;

				t0 = now_ns();
				h = pin_on(b.dev2, at, b.psz, mode_flags[MODE_LT], 1);
				t1 = now_ns();
				unpin_on(b.dev2, h, 0);
				t2 = now_ns();
				anchor = gup_pair_ns(at, b.psz);
				if (r < 0)
					continue;
				tp[r] = t1 - t0;
				tu[r] = t2 - t1;
				ta[r] = anchor;
				np[r] = tp[r] / anchor;
				nu[r] = tu[r] / anchor;
			}
			res->pin = stats_of(tp, probes);
			res->unpin = stats_of(tu, probes);
			res->anchor = stats_of(ta, probes);
			res->pin_norm = stats_of(np, probes);
			res->unpin_norm = stats_of(nu, probes);
			printf("%-8s %7zu %7.0f [%6.0f..%6.0f] %7.0f [%6.0f..%6.0f] %8.0f %7.3f %7.3f\n",
			       mem_names[mem], live, res->pin.p50, res->pin.p10, res->pin.p90,
			       res->unpin.p50, res->unpin.p10, res->unpin.p90, res->anchor.p50,
			       res->pin_norm.p50, res->unpin_norm.p50);
			csv_stats("scale_pin", mem_names[mem], live, "pin_ns", &res->pin);
			csv_stats("scale_pin", mem_names[mem], live, "unpin_ns", &res->unpin);
			csv_stats("scale_pin", mem_names[mem], live, "start_stop_ns", &res->anchor);
			csv_stats("scale_pin", mem_names[mem], live, "pin_norm", &res->pin_norm);
			csv_stats("scale_pin", mem_names[mem], live, "unpin_norm", &res->unpin_norm);
		}
		while (live)
			unpin(live_h[--live], 0);
		region_unmap(&reg);
		free(live_h);
		free(tp);
		free(tu);
		free(ta);
		free(np);
		free(nu);
	}
}

static void section_scale_fsync(void)
{
	const size_t *mib = b.quick ? quick_fsync_mib : full_fsync_mib;
	unsigned int c, si;

	nr_fsync_sizes = b.quick ? ARRAY_SIZE(quick_fsync_mib) : ARRAY_SIZE(full_fsync_mib);
	printf("\n== 6b. scale: fsync of N MiB dirtied by write(2) (ms; the largest after reloading pinwb) ==\n");
	printf("%-22s %8s %4s %9s %21s %9s %9s %9s\n", "case", "MiB", "reps", "median ms",
	       "[p10..p90]", "ms/MiB", "dip MiB", "inflight");
	for (c = 0; c < ARRAY_SIZE(scale_wb); c++) {
		const struct wb_case *wc = &wb_cases[scale_wb[c]];

		for (si = 0; si < nr_fsync_sizes; si++) {
			size_t len = mib[si] * MiB;
			struct wb_res *res = &scale_fsync[c][si];
			bool last = si == nr_fsync_sizes - 1;

			if (!fits(3 * len)) {
				printf("%-22s %8zu skipped: MemAvailable is %llu MiB\n", wc->label,
				       mib[si], meminfo_bytes("MemAvailable") / MiB);
				res->ms.n = 0;
				continue;
			}
			run_wb(wc, len, len >= 256 * MiB ? 3 : 5, last, res);
			printf("%-22s %8zu %4zu %9.2f [%8.2f..%8.2f] %9.3f %9.1f ", wc->label,
			       mib[si], res->ms.n, res->ms.p50, res->ms.p10, res->ms.p90,
			       res->ms.p50 / mib[si], res->dip / MiB);
			if (res->inflight >= 0)
				printf("%9lld\n", res->inflight);
			else
				printf("%9s\n", "-");
			csv_stats("scale_fsync", wc->id, len, "fsync_ms", &res->ms);
			csv_row("scale_fsync", wc->id, len, res->ms.n, "ms_per_MiB",
				res->ms.p50 / mib[si]);
			csv_row("scale_fsync", wc->id, len, res->ms.n, "memfree_dip_bytes",
				res->dip);
			if (res->inflight >= 0)
				csv_row("scale_fsync", wc->id, len, res->ms.n,
					"io_inflight_peak_folios", res->inflight);
		}
	}
	printf("(dip: the largest fall of MemFree during one fsync, sampled every ~0.5 ms;\n"
	       "inflight: io_inflight_peak, most folios one writeback had in flight)\n");
}

/* --- 7. a pin storm: Kara's denial of service ------------------------------------ */

#define STORM_THREADS	4
#define STORM_PAGES	16
#define STORM_BUDGET_MS	250

struct storm {
	int dev;
	char *page;
	atomic_bool stop;
	atomic_ulong pins;
};

/*
 * Short-term pins for writing of one page, each taken before the previous
 * one is dropped: every pin is short, but the page is never unpinned.
 */
static void *stormer(void *arg)
{
	struct storm *s = arg;
	unsigned int prev = 0;

	while (!atomic_load(&s->stop)) {
		unsigned int h = pin_on(s->dev, s->page, b.psz, PINWB_PIN_WRITE, 1);

		if (prev)
			unpin_on(s->dev, prev, 0);
		prev = h;
		atomic_fetch_add(&s->pins, 1);
	}
	if (prev)
		unpin_on(s->dev, prev, 0);
	return NULL;
}

static const char *const storm_policies[] = { "wait", "auto" };
#define NR_STORM	ARRAY_SIZE(storm_policies)

static struct storm_res {
	struct stats calm, storm;	/* fsync ms */
	int ok, ebusy, etimedout;
	unsigned long pins;
} storm_res[NR_STORM];

/*
 * fsync of a file of STORM_PAGES dirty pages, one of them pinned by a storm
 * of short-term pins that never leaves it unpinned, under policies that wait
 * for short-term pins (wait, auto): each fsync must end within its
 * wall-clock budget (wait_timeout_ms) plus the time to write the rest; the
 * anchor is the same fsync with no storm, in the same run.
 */
static void section_storm(void)
{
	int runs = b.quick ? 8 : 30, r, i;
	size_t len = STORM_PAGES * b.psz;
	unsigned long long saved = b.cur_wait_timeout_ms;
	double *calm = xcalloc(runs, sizeof(double)), *storm = xcalloc(runs, sizeof(double));
	unsigned int p;

	knob("wait_timeout_ms", STORM_BUDGET_MS);
	for (p = 0; p < NR_STORM; p++) {
		struct storm_res *res = &storm_res[p];
		struct storm s = { .dev = b.dev };
		pthread_t th[STORM_THREADS];
		char *map;
		int fd;

		mount_fs(storm_policies[p]);
		fd = file_create(MNT, "storm", len);
		map = map_track(len, MAP_SHARED, fd);
		s.page = map;
		for (r = 0; r < runs; r++) {
			double t0;

			memset(map, 'a' + r % 26, len);
			t0 = now_ns();
			if (fsync(fd))
				die(errno, "fsync without a storm (policy %s)", storm_policies[p]);
			calm[r] = (now_ns() - t0) / 1e6;
		}
		for (i = 0; i < STORM_THREADS; i++)
			if (pthread_create(&th[i], NULL, stormer, &s))
				die(0, "pthread_create");
		while (atomic_load(&s.pins) < 100)
			sleep_us(1000);
		for (r = 0; r < runs; r++) {
			double t0;
			int ret;

			memset(map, 'A' + r % 26, len);
			t0 = now_ns();
			ret = fsync(fd) ? errno : 0;
			storm[r] = (now_ns() - t0) / 1e6;
			if (ret == 0)
				res->ok++;
			else if (ret == EBUSY)
				res->ebusy++;
			else if (ret == ETIMEDOUT)
				res->etimedout++;
			else
				die(ret, "fsync under the storm (policy %s)", storm_policies[p]);
		}
		atomic_store(&s.stop, true);
		for (i = 0; i < STORM_THREADS; i++)
			pthread_join(th[i], NULL);
		res->pins = atomic_load(&s.pins);
		if (fsync(fd))
			die(errno, "fsync after the storm (policy %s)", storm_policies[p]);
		map_release(map);
		file_remove(fd);
		umount_fs();
		res->calm = stats_of(calm, runs);
		res->storm = stats_of(storm, runs);
	}
	knob("wait_timeout_ms", saved);
	free(calm);
	free(storm);

	printf("\n== 7. fsync under a pin storm: %d threads re-pin one of %d dirty pages (ms; wait_timeout_ms %d) ==\n",
	       STORM_THREADS, STORM_PAGES, STORM_BUDGET_MS);
	printf("%-8s %5s %9s %9s %9s %9s %9s %9s %5s %6s %9s %9s\n", "policy", "runs", "calm p50",
	       "calm max", "p50", "p90", "p99", "max", "ok", "EBUSY", "ETIMEDOUT", "pins");
	for (p = 0; p < NR_STORM; p++) {
		struct storm_res *res = &storm_res[p];

		printf("%-8s %5d %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %5d %6d %9d %9lu\n",
		       storm_policies[p], runs, res->calm.p50, res->calm.max, res->storm.p50,
		       res->storm.p90, res->storm.p99, res->storm.max, res->ok, res->ebusy,
		       res->etimedout, res->pins);
		csv_stats("storm", storm_policies[p], b.psz, "calm_ms", &res->calm);
		csv_stats("storm", storm_policies[p], b.psz, "ms", &res->storm);
		csv_row("storm", storm_policies[p], b.psz, runs, "ms_p99", res->storm.p99);
		csv_row("storm", storm_policies[p], b.psz, runs, "ms_max", res->storm.max);
		csv_row("storm", storm_policies[p], b.psz, runs, "etimedout", res->etimedout);
		csv_row("storm", storm_policies[p], b.psz, runs, "storm_pins", res->pins);
	}
	printf("(each storm fsync meets a page that is never unpinned: it ends with ETIMEDOUT once\n"
	       "its budget is spent, having written every other page)\n");
}

/* --- the goals --------------------------------------------------------------------------- */

static void summarize(void)
{
	const char *q = b.quick ? " (quick run: not the goal's size)" : "";
	const size_t *mib = b.quick ? quick_fsync_mib : full_fsync_mib;
	size_t nr_sizes = b.quick ? ARRAY_SIZE(quick_sizes) : ARRAY_SIZE(full_sizes);
	static const int goal1_mems[] = { MEM_PINWBFS, MEM_ANON };
	static const int goal2_mems[] = { MEM_ANON, MEM_PINWBFS };
	/* -s: the goals of the sections not run print "not run" (add_goal()). */
	unsigned int i, m, c, last = nr_fsync_sizes ? nr_fsync_sizes - 1 : 0, ref = 0;
	char id[64];
	double r;
	int mode;

	/* 1. pin + unpin per page at 1 GiB. */
	for (m = 0; m < ARRAY_SIZE(goal1_mems); m++) {
		int mem = goal1_mems[m];

		for (mode = 0; mode < NR_MODES; mode++) {
			struct pin_res *res = &pin_res[mem][mode][nr_sizes - 1];

			snprintf(id, sizeof(id), "1-pin-%s-%s", mem_names[mem], mode_names[mode]);
			if (!res->done || b.gup < 0) {
				add_goal("pin", id, NAN, GOAL_PIN, "not measured");
				continue;
			}
			add_goal("pin", id, res->ratio.p50, GOAL_PIN,
				 "%s %s pin+unpin of %s%s: %.3fx [%.3f..%.3f] of %s (pinwb %.1f, anchor %.1f ns/page)",
				 mem_names[mem], mode_names[mode], fmt_size(pin_goal_size), q,
				 res->ratio.p50, res->ratio.p10, res->ratio.p90, mode_anchor[mode],
				 res->pinwb, res->anchor);
		}
	}
	/* 2. fixed cost. */
	for (m = 0; m < ARRAY_SIZE(goal2_mems); m++) {
		struct fixed_res *res = &fixed_res[goal2_mems[m]];

		snprintf(id, sizeof(id), "2-fixed-%s", mem_names[goal2_mems[m]]);
		add_goal("fixed", id, res->ratio.p50, GOAL_FIXED,
			 "%s 4 KiB long-term pin+unpin: %.3fx [%.3f..%.3f] of PIN_LONGTERM_TEST_START/STOP (pinwb %.2f, anchor %.2f us)",
			 mem_names[goal2_mems[m]], res->ratio.p50, res->ratio.p10, res->ratio.p90,
			 res->pinwb.p50 / 1e3, res->anchor.p50 / 1e3);
	}
	/* 3. writeback. */
	r = wb_res[WB_UNPINNED].ms.p50 / memcpy_ms.p50;
	add_goal("wb", "3-fsync-unpinned", r, GOAL_FSYNC,
		 "fsync of %s dirty, unpinned: %.2fx of a memcpy of the same bytes (fsync %.2f ms [%.2f..%.2f], memcpy %.2f ms [%.2f..%.2f])",
		 fmt_size(wb_len), r, wb_res[WB_UNPINNED].ms.p50, wb_res[WB_UNPINNED].ms.p10,
		 wb_res[WB_UNPINNED].ms.p90, memcpy_ms.p50, memcpy_ms.p10, memcpy_ms.p90);
	for (i = WB_BOUNCE; i <= WB_AUTO; i++) {
		r = wb_res[i].ms.p50 / wb_res[WB_UNPINNED].ms.p50;
		snprintf(id, sizeof(id), "3-fsync-%s", wb_cases[i].id);
		add_goal("wb", id, r, GOAL_BOUNCE,
			 "fsync of %s all long-term pinned, policy %s: %.3fx of the unpinned fsync (%.2f ms [%.2f..%.2f], anchor %.2f ms)",
			 fmt_size(wb_len), wb_cases[i].policy, r, wb_res[i].ms.p50,
			 wb_res[i].ms.p10, wb_res[i].ms.p90, wb_res[WB_UNPINNED].ms.p50);
	}
	/* 4. wake-up latency. */
	for (i = WAKE_PINWB; i <= WAKE_FOREIGN; i++) {
		const char *what = i == WAKE_PINWB ? "unpin" : "foreign";

		snprintf(id, sizeof(id), "4-wake-%s-p50", what);
		r = wake[i].p50 / wake[WAKE_PIPE].p50;
		add_goal("wake", id, r, GOAL_WAKE, "wake-up p50, %s: %.2fx of the pipe (%.1f us, anchor %.1f us)",
			 wake_labels[i], r, wake[i].p50, wake[WAKE_PIPE].p50);
		snprintf(id, sizeof(id), "4-wake-%s-p99", what);
		r = wake[i].p99 / wake[WAKE_PIPE].p99;
		add_goal("wake", id, r, GOAL_WAKE, "wake-up p99, %s: %.2fx of the pipe (%.1f us, anchor %.1f us)",
			 wake_labels[i], r, wake[i].p99, wake[WAKE_PIPE].p99);
	}
	/* Issue 14: the pin storm. */
	for (i = 0; i < NR_STORM; i++) {
		struct storm_res *res = &storm_res[i];
		double bound_ms = STORM_BUDGET_MS + res->calm.max;

		snprintf(id, sizeof(id), "14-storm-%s", storm_policies[i]);
		r = res->storm.max / bound_ms;
		add_goal("storm", id, r, GOAL_STORM,
			 "slowest fsync under a pin storm, policy %s: %.2fx of the budget + the slowest calm fsync (%.1f ms, anchor %d + %.2f ms; p50 %.1f, p99 %.1f ms)",
			 storm_policies[i], r, res->storm.max, STORM_BUDGET_MS, res->calm.max,
			 res->storm.p50, res->storm.p99);
	}
	/* 5. memory. */
	for (m = 0; m < NR_MEMS; m++) {
		snprintf(id, sizeof(id), "5-mem-per-page-%s", mem_names[m]);
		add_goal("mem", id, mem_per_page[m], GOAL_PER_PAGE,
			 "%s pins of >= 64 pages: %.3f bytes/page beyond the page array (worst at %zu pages)",
			 mem_names[m], mem_per_page[m], mem_per_page_at[m]);
	}
	for (m = 0; m < NR_MEMS; m++) {
		snprintf(id, sizeof(id), "5-mem-per-pin-%s", mem_names[m]);
		add_goal("mem", id, mem_fixed[m], GOAL_PER_PIN,
			 "%s: %.1f bytes per pin beyond the page array (%zu one-page pins)",
			 mem_names[m], mem_fixed[m], mem_res[m][0].pins);
	}
	if (scale_fsync[0][last].ms.n && scale_fsync[1][last].ms.n) {
		struct wb_res *u = &scale_fsync[0][last], *p = &scale_fsync[1][last];

		r = (p->dip - u->dip) / MiB;
		add_goal("scale_fsync", "5-wb-inflight", r, GOAL_INFLIGHT,
			 "memory in flight, fsync of %zu MiB: bounce %.1f MiB beyond unpinned (MemFree dip %.1f vs %.1f MiB; io_inflight_peak %lld vs %lld folios)",
			 mib[last], r, p->dip / MiB, u->dip / MiB, p->inflight, u->inflight);
	} else {
		add_goal("scale_fsync", "5-wb-inflight", NAN, GOAL_INFLIGHT, "not measured");
	}
	/* 6. scale. */
	for (m = 0; m < ARRAY_SIZE(scale_mems); m++) {
		struct scale_pin_res *lo = &scale_pin[scale_mems[m]][0];
		struct scale_pin_res *hi = &scale_pin[scale_mems[m]][NR_LEVELS - 1];

		snprintf(id, sizeof(id), "6-scale-pin-%s", mem_names[scale_mems[m]]);
		r = hi->pin_norm.p50 / lo->pin_norm.p50;
		add_goal("scale_pins", id, r, GOAL_FLAT,
			 "%s pin with %zu live pins: %.2fx of with %zu, each per START+STOP next to it (%.3f vs %.3f; %.0f vs %.0f ns)",
			 mem_names[scale_mems[m]], live_levels[NR_LEVELS - 1], r, live_levels[0],
			 hi->pin_norm.p50, lo->pin_norm.p50, hi->pin.p50, lo->pin.p50);
		snprintf(id, sizeof(id), "6-scale-unpin-%s", mem_names[scale_mems[m]]);
		r = hi->unpin_norm.p50 / lo->unpin_norm.p50;
		add_goal("scale_pins", id, r, GOAL_FLAT,
			 "%s unpin with %zu live pins: %.2fx of with %zu, each per START+STOP next to it (%.3f vs %.3f; %.0f vs %.0f ns)",
			 mem_names[scale_mems[m]], live_levels[NR_LEVELS - 1], r, live_levels[0],
			 hi->unpin_norm.p50, lo->unpin_norm.p50, hi->unpin.p50, lo->unpin.p50);
	}
	/* Per MiB at the largest size against 64 MiB (quick: against 4 MiB). */
	for (i = 0; i < nr_fsync_sizes; i++)
		if (mib[i] == (b.quick ? 4 : 64))
			ref = i;
	for (c = 0; c < ARRAY_SIZE(scale_wb); c++) {
		struct wb_res *lo = &scale_fsync[c][ref], *hi = &scale_fsync[c][last];

		snprintf(id, sizeof(id), "6-scale-fsync-%s", wb_cases[scale_wb[c]].id);
		r = hi->ms.n && lo->ms.n ? (hi->ms.p50 / mib[last]) / (lo->ms.p50 / mib[ref]) : NAN;
		add_goal("scale_fsync", id, r, GOAL_FLAT,
			 "fsync %s, time per MiB at %zu MiB: %.2fx of at %zu MiB (%.2f vs %.2f ms/MiB)",
			 wb_cases[scale_wb[c]].id, mib[last], r, mib[ref],
			 hi->ms.p50 / mib[last], lo->ms.p50 / mib[ref]);
	}

	printf("\n== goals (issues 15 and 14): %u of %u met ==\n", nr_goals_met, nr_goals);
	for (i = 0; i < nr_goals; i++) {
		printf("%s\n", goals[i].line);
		fprintf(b.csv, "goal,%s,0,0,line,\"%s\"\n", goals[i].id, goals[i].line);
	}
}

/* --- main ---------------------------------------------------------------------------------- */

static void print_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-q] [-o FILE] [-s SECTION]\n"
		"  -q          quick mode (small sizes, few repetitions)\n"
		"  -o FILE     write the CSV to FILE (default %s)\n"
		"  -s SECTION  run only SECTION (pin, fixed, wb, wake, mem, scale_pins,\n"
		"              scale_fsync, storm) after env; the other goals are not measured\n",
		prog, DEFAULT_CSV);
}

int main(int argc, char **argv)
{
	double start = now_ns();
	int opt;

	b.csv_path = DEFAULT_CSV;
	while ((opt = getopt(argc, argv, "qo:s:h")) != -1) {
		switch (opt) {
		case 's':
			b.only = optarg;
			break;
		case 'q':
			b.quick = true;
			break;
		case 'o':
			b.csv_path = optarg;
			break;
		case 'h':
			print_usage(argv[0]);
			return 0;
		default:
			print_usage(argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		print_usage(argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	b.psz = sysconf(_SC_PAGESIZE);
	b.reloads_ok = getenv("PINWB_KO") != NULL;

	b.csv = fopen(b.csv_path, "w");
	if (!b.csv)
		die(errno, "cannot create %s", b.csv_path);
	fprintf(b.csv, "section,case,param,reps,metric,value\n");

	open_devs();
	b.gup = open(GUP_TEST_FILE, O_RDWR | O_CLOEXEC);
	if (b.gup < 0)
		die(errno, "%s (CONFIG_GUP_TEST): every anchor of the pins needs it",
		    GUP_TEST_FILE);

	b.max_pages_per_pin = ctr("max_pages_per_pin");
	b.max_pins_per_file = ctr("max_pins_per_file");
	if (!b.max_pages_per_pin || !b.max_pins_per_file)
		die(0, "max_pages_per_pin or max_pins_per_file is 0");
	b.io_delay_us = ctr("io_delay_us");
	b.flush_period_ms = ctr("flush_period_ms");
	b.wait_timeout_ms = ctr("wait_timeout_ms");
	b.knobs_saved = true;
	set_knobs();

	printf("pinwb_bench (%s mode): page size %zu, MemAvailable %llu MiB, CSV %s\n",
	       b.quick ? "quick" : "full", b.psz, meminfo_bytes("MemAvailable") / MiB, b.csv_path);

#define SECTION(name) do { if (section_runs(#name)) section_##name(); } while (0)
	section_env();
	SECTION(pin);
	SECTION(fixed);
	SECTION(wb);
	SECTION(wake);
	SECTION(mem);
	SECTION(scale_pins);
	SECTION(scale_fsync);
	SECTION(storm);
	summarize();

	printf("elapsed_s: %.1f\n", (now_ns() - start) / 1e9);
	csv_row("summary", "elapsed_s", 0, 0, "s", (now_ns() - start) / 1e9);
	if (fflush(b.csv) || ferror(b.csv))
		die(errno, "writing %s", b.csv_path);
	cleanup();
	return 0;
}
