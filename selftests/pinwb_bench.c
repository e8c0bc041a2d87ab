// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_bench: what pinwb costs, measured in the guest.
 *
 * 1. Pin cost per page. Buffers of 4 KiB .. 1 GiB (quick: .. 16 MiB) of
 *    anonymous private memory and of a MAP_SHARED mapping of a pinwbfs file,
 *    pre-faulted with memset. pinwb: PINWB_IOC_PIN + PINWB_IOC_UNPIN of the
 *    whole buffer, timed from userspace around both ioctls. The kernel's own
 *    benchmark (/sys/kernel/debug/gup_test, CONFIG_GUP_TEST) pins and unpins
 *    in one ioctl, timed from userspace the same way, with size = the buffer
 *    and nr_pages_per_call = all its pages. Both ask for FOLL_WRITE, as
 *    tools/testing/selftests/mm/gup_test.c does by default:
 *      longterm: PINWB_PIN_LONGTERM (pin_user_pages() under the mmap lock)
 *                against PIN_LONGTERM_BENCHMARK;
 *      fast:     PINWB_PIN_FAST, short-term (pin_user_pages_fast())
 *                against PIN_FAST_BENCHMARK.
 *    The two alternate rep by rep. Median ns per page, and the ratio
 *    pinwb/gup_test as the median of the per-rep ratios (pairs cancel a noisy
 *    guest's drift; goal: <= 1.05 at 1 GiB). gup_test's in-kernel get+put
 *    time is shown for reference: its ioctl also allocates a page array and
 *    checks every pinned page, untimed by itself but not by us.
 * 2. Writeback cost, with io_delay_us = 0: a pinwbfs file (64 MiB, quick:
 *    8 MiB) dirtied by write(2) of every byte, then fsync() timed. Unpinned
 *    (policy naive; mapped and pre-faulted like the pinned cases, and also
 *    not mapped at all), every page pinned long-term with policy bounce, and
 *    with policy auto. Median fsync time and ratio to the unpinned, mapped
 *    file (goal: bounce <= 1.3x); the in-guest memcpy bandwidth, the floor
 *    of what a bounce's copy costs.
 * 3. Wait latency: policy=wait, wait_timeout_ms large; a page pinned
 *    long-term and dirtied; a thread's fsync() waits for it; the main thread
 *    sleeps ~5 ms, takes a timestamp and unpins (dirty, as a driver does);
 *    latency = fsync's return - that timestamp. p50 and p99 over 200 runs
 *    (quick: 30) (goal: p99 < 1 ms).
 * 4. Scale: min(1M pages, 60% of MemAvailable) (quick: 64 MiB) of anonymous
 *    memory pinned long-term in chunks of max_pages_per_pin from one open
 *    file. pinwb's kernel memory per pinned page: the growth of slab and
 *    vmalloc (the counters behind /proc/meminfo's Slab and VmallocUsed,
 *    refreshed through /proc/sys/vm/stat_refresh), minus the 8-byte page
 *    pointer of each page, per page (goal: <= 10 bytes). Slab counts both
 *    SUnreclaim and SReclaimable: the folio index's XArray nodes come from
 *    radix_tree_node, a SLAB_RECLAIM_ACCOUNT cache.
 *
 * Usage: pinwb_bench [-q] [-o FILE]
 *   -q       quick mode (small sizes, few repetitions)
 *   -o FILE  CSV output (default /tmp/pinwb-bench.csv)
 *
 * Runs as root with pinwb loaded and debugfs mounted. Sets flush_period_ms
 * to 0 (no cleaning writeback under the measurements), io_delay_us to 0 and
 * wait_timeout_ms for sections 2 and 3, and restores all three at the end.
 * Prints a table per section, then "name: value" lines, ending with the goals.
 * Any failing ioctl or system call ends the program with status 1 after
 * cleaning up: closing /dev/pinwb releases every pin left, then mappings are
 * unmapped, pinwbfs unmounted and the knobs restored.
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "pinwb_test.h"
#include "mm/gup_test.h"

#define MNT		"/tmp/bench-fs"
#define GUP_TEST_FILE	"/sys/kernel/debug/gup_test"
#define DEFAULT_CSV	"/tmp/pinwb-bench.csv"

/* A kernel-internal gup flag, copied as tools/testing/selftests/mm/gup_test.c does. */
#define GUP_FOLL_WRITE	0x01

#define KiB		(1024UL)
#define MiB		(1024UL * KiB)
#define GiB		(1024UL * MiB)


/* Goals. */
#define GOAL_PIN_RATIO	1.05
#define GOAL_WB_RATIO	1.3
#define GOAL_WAIT_P99	1000.0	/* us */
#define GOAL_BYTES	10.0	/* per pinned page */

static struct {
	bool quick;
	size_t psz;
	int dev;		/* /dev/pinwb */
	int gup;		/* /sys/kernel/debug/gup_test, -1 if unavailable */
	FILE *csv;
	const char *csv_path;
	unsigned long long max_pages_per_pin, max_pins_per_file;
	/* What cleanup() undoes. */
	int fs_fd;		/* the open pinwbfs file, -1 if none */
	bool mounted;
	bool knobs_saved;
	unsigned long long io_delay_us, flush_period_ms, wait_timeout_ms;
} b = { .dev = -1, .gup = -1, .fs_fd = -1 };

/* Mappings made by map_track(), unmapped by map_release() or cleanup(). */
static struct {
	void *addr;
	size_t len;
} maps[4];

/* The "name: value" lines printed at the end (and written to the CSV). */
static struct {
	char name[64];
	char value[96];
} summary[64];
static unsigned int nr_summary;

/* --- errors and cleanup ------------------------------------------------------ */

static void restore_knob(const char *name, unsigned long long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", value);
	if (pinwb_knob(name, buf))
		fprintf(stderr, "pinwb_bench: cannot restore %s to %s\n", name, buf);
}

/* Idempotent: releases whatever is still held. */
static void cleanup(void)
{
	unsigned int i;

	/* Closing the device releases every pin this program still holds. */
	if (b.dev >= 0)
		close(b.dev);
	b.dev = -1;
	if (b.gup >= 0)
		close(b.gup);
	b.gup = -1;
	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		if (maps[i].addr)
			munmap(maps[i].addr, maps[i].len);
		maps[i].addr = NULL;
	}
	if (b.fs_fd >= 0)
		close(b.fs_fd);
	b.fs_fd = -1;
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

/* Nearest-rank percentile of v[0..n) (sorts v). */
static double percentile(double *v, size_t n, unsigned int pct)
{
	size_t rank;

	qsort(v, n, sizeof(*v), cmp_double);
	rank = (n * pct + 99) / 100;
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
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

/* A size as part of a name: "1GiB". */
static const char *tag_size(size_t bytes)
{
	static char buf[4][32];
	static unsigned int i;
	const char *s = fmt_size(bytes);
	char *d;

	i = (i + 1) % 4;
	d = buf[i];
	for (; *s; s++)
		if (*s != ' ')
			*d++ = *s;
	*d = '\0';
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
}

static void csv_row(const char *section, const char *name, size_t size, int reps,
		    const char *metric, double value)
{
	fprintf(b.csv, "%s,%s,%zu,%d,%s,%.6g\n", section, name, size, reps, metric, value);
}

static void __attribute__((format(printf, 2, 3)))
add_summary(const char *name, const char *fmt, ...)
{
	va_list ap;

	if (nr_summary == ARRAY_SIZE(summary))
		die(0, "internal: too many summary lines");
	snprintf(summary[nr_summary].name, sizeof(summary[0].name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(summary[nr_summary].value, sizeof(summary[0].value), fmt, ap);
	va_end(ap);
	nr_summary++;
}

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

/* Creates MNT/name of len bytes as b.fs_fd. */
static void create_file(const char *name, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), MNT "/%s", name);
	b.fs_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b.fs_fd < 0)
		die(errno, "create %s", path);
	if (ftruncate(b.fs_fd, len))
		die(errno, "ftruncate %s to %zu bytes", path, len);
}

static void remove_file(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), MNT "/%s", name);
	if (close(b.fs_fd))
		die(errno, "close %s", path);
	b.fs_fd = -1;
	if (unlink(path))
		die(errno, "unlink %s", path);
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

/* PINWB_IOC_PIN of [addr, addr + len), which must be exactly @pages pages. */
static unsigned int pin(void *addr, size_t len, unsigned int flags, size_t pages)
{
	struct pinwb_pin p;
	int h = pinwb_pin_range(b.dev, addr, len, flags, &p);

	if (h < 0)
		die(-h, "PINWB_IOC_PIN of %zu pages (%s)", pages, pin_flags_str(flags));
	if (p.nr_pages != pages)
		die(0, "PINWB_IOC_PIN pinned %llu pages, not %zu", (unsigned long long)p.nr_pages,
		    pages);
	return h;
}

static void unpin(unsigned int handle, unsigned int flags)
{
	int ret = pinwb_unpin_handle(b.dev, handle, flags);

	if (ret)
		die(-ret, "PINWB_IOC_UNPIN of handle %u", handle);
}

/*
 * Pins @pages pages at @addr with as many PINWB_IOC_PIN calls as
 * max_pages_per_pin needs; returns the handles (*nr_handles of them).
 */
static unsigned int *pin_chunks(char *addr, size_t pages, unsigned int flags,
				size_t *nr_handles)
{
	size_t chunk = b.max_pages_per_pin, n = (pages + chunk - 1) / chunk, i, done = 0;
	unsigned int *h = xcalloc(n, sizeof(*h));

	for (i = 0; i < n; i++) {
		size_t this = pages - done < chunk ? pages - done : chunk;

		h[i] = pin(addr + done * b.psz, this * b.psz, flags, this);
		done += this;
	}
	*nr_handles = n;
	return h;
}

static void unpin_chunks(unsigned int *h, size_t n, unsigned int flags)
{
	size_t i;

	for (i = 0; i < n; i++)
		unpin(h[i], flags);
	free(h);
}

/* --- 1. pin cost ------------------------------------------------------------- */

struct pin_case {
	const char *mode;
	unsigned int flags;		/* PINWB_PIN_* */
	unsigned long gup_cmd;
	const char *gup_name;
};

static const struct pin_case pin_cases[] = {
	{ "longterm", PINWB_PIN_LONGTERM | PINWB_PIN_WRITE,
	  PIN_LONGTERM_BENCHMARK, "PIN_LONGTERM_BENCHMARK" },
	{ "fast", PINWB_PIN_FAST | PINWB_PIN_WRITE,
	  PIN_FAST_BENCHMARK, "PIN_FAST_BENCHMARK" },
};

static const char *const pin_mems[] = { "anon", "pinwbfs" };

static const size_t full_sizes[] = { 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB, 256 * MiB, 1 * GiB };
static const int full_reps[] = { 51, 31, 21, 11, 11, 11 };
static const size_t quick_sizes[] = { 4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB };
static const int quick_reps[] = { 21, 15, 9, 5 };
#define NR_SIZES	ARRAY_SIZE(full_sizes)

struct pin_res {
	bool done;
	int reps;
	double pinwb, gup, kern;	/* median ns per page; gup < 0: not measured */
	double ratio;			/* median of the per-rep pinwb/gup_test ratios */
};

static struct pin_res pin_res[ARRAY_SIZE(pin_mems)][ARRAY_SIZE(pin_cases)][NR_SIZES];

/* PIN + UNPIN of the whole buffer, timed around both ioctls. */
static double pinwb_pair_ns(char *buf, size_t size, unsigned int flags, size_t pages)
{
	double t0, t1;
	unsigned int h;

	t0 = now_ns();
	h = pin(buf, size, flags, pages);
	unpin(h, 0);
	t1 = now_ns();
	return t1 - t0;
}

/* One gup_test benchmark ioctl (pin + unpin), timed around it. */
static double gup_ns(const struct pin_case *pc, char *buf, size_t size, double *kern_ns)
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
	ret = ioctl(b.gup, pc->gup_cmd, &g);
	t1 = now_ns();
	if (ret)
		die(errno, "%s ioctl %s of %s", GUP_TEST_FILE, pc->gup_name, fmt_size(size));
	if (g.size != size)
		die(0, "%s %s pinned only %llu of %zu bytes", GUP_TEST_FILE, pc->gup_name,
		    (unsigned long long)g.size, size);
	*kern_ns = (g.get_delta_usec + g.put_delta_usec) * 1e3;
	return t1 - t0;
}

static void bench_pin(unsigned int mem, unsigned int c, unsigned int si, char *buf,
		      size_t size, int reps)
{
	const struct pin_case *pc = &pin_cases[c];
	struct pin_res *res = &pin_res[mem][c][si];
	size_t pages = size / b.psz;
	double *tp = xcalloc(reps, sizeof(double));
	double *tg = xcalloc(reps, sizeof(double));
	double *tk = xcalloc(reps, sizeof(double));
	double *tr = xcalloc(reps, sizeof(double));
	bool gup = b.gup >= 0;
	char name[32];
	int r;

	/* One untimed round of each, for caches and allocators. */
	pinwb_pair_ns(buf, size, pc->flags, pages);
	if (gup)
		gup_ns(pc, buf, size, &tk[0]);
	for (r = 0; r < reps; r++) {
		/* Alternate which goes first, so that neither always follows the other. */
		if (gup && (r & 1))
			tg[r] = gup_ns(pc, buf, size, &tk[r]);
		tp[r] = pinwb_pair_ns(buf, size, pc->flags, pages);
		if (gup && !(r & 1))
			tg[r] = gup_ns(pc, buf, size, &tk[r]);
	}
	res->done = true;
	res->reps = reps;
	res->pinwb = percentile(tp, reps, 50) / pages;
	res->gup = gup ? percentile(tg, reps, 50) / pages : -1;
	res->kern = gup ? percentile(tk, reps, 50) / pages : -1;
	/*
	 * Each rep pairs the two back to back: the median of the pairs' ratios
	 * cancels the drift of a noisy (TCG) guest better than a ratio of medians.
	 */
	for (r = 0; gup && r < reps; r++)
		tr[r] = tp[r] / tg[r];
	res->ratio = gup ? percentile(tr, reps, 50) : -1;

	if (gup)
		printf("%-8s %-9s %8s %5d %12.1f %12.1f %9.3f %14.1f\n", pin_mems[mem], pc->mode,
		       fmt_size(size), reps, res->pinwb, res->gup, res->ratio, res->kern);
	else
		printf("%-8s %-9s %8s %5d %12.1f %12s %9s %14s\n", pin_mems[mem], pc->mode,
		       fmt_size(size), reps, res->pinwb, "n/a", "n/a", "n/a");
	snprintf(name, sizeof(name), "%s/%s", pin_mems[mem], pc->mode);
	csv_row("pin", name, size, reps, "pinwb_ns_per_page", res->pinwb);
	if (gup) {
		csv_row("pin", name, size, reps, "gup_test_ns_per_page", res->gup);
		csv_row("pin", name, size, reps, "gup_test_kernel_ns_per_page", res->kern);
		csv_row("pin", name, size, reps, "ratio", res->ratio);
	}
	free(tp);
	free(tg);
	free(tk);
	free(tr);
}

/* Whether a buffer of @bytes leaves the guest enough room. */
static bool fits(size_t bytes)
{
	unsigned long long avail = meminfo_bytes("MemAvailable");

	if (bytes / 4 * 5 + 64 * MiB <= avail)
		return true;
	return false;
}

static void section_pin(void)
{
	const size_t *sizes = b.quick ? quick_sizes : full_sizes;
	const int *reps = b.quick ? quick_reps : full_reps;
	size_t nr_sizes = b.quick ? ARRAY_SIZE(quick_sizes) : ARRAY_SIZE(full_sizes);
	unsigned int mem, c, si;

	printf("\n== 1. pin + unpin cost per page (median; pinwb: two ioctls, gup_test: one) ==\n");
	if (b.gup < 0)
		printf("(%s unavailable: pinwb only)\n", GUP_TEST_FILE);
	printf("%-8s %-9s %8s %5s %12s %12s %9s %14s\n", "memory", "mode", "size", "reps",
	       "pinwb ns/pg", "gup ns/pg", "pinwb/gup", "gup kernel ns");
	mount_fs("naive");
	for (mem = 0; mem < ARRAY_SIZE(pin_mems); mem++) {
		for (si = 0; si < nr_sizes; si++) {
			size_t size = sizes[si];
			char *buf;

			if (size / b.psz > b.max_pages_per_pin) {
				printf("%-8s %-9s %8s skipped: more than max_pages_per_pin (%llu)\n",
				       pin_mems[mem], "", fmt_size(size), b.max_pages_per_pin);
				continue;
			}
			if (!fits(size)) {
				printf("%-8s %-9s %8s skipped: MemAvailable is %llu MiB\n",
				       pin_mems[mem], "", fmt_size(size),
				       meminfo_bytes("MemAvailable") / MiB);
				continue;
			}
			if (mem == 0) {
				buf = map_anon(size);
			} else {
				create_file("pin", size);
				buf = map_track(size, MAP_SHARED, b.fs_fd);
			}
			memset(buf, 0x5a, size);	/* pre-fault */
			for (c = 0; c < ARRAY_SIZE(pin_cases); c++)
				bench_pin(mem, c, si, buf, size, reps[si]);
			map_release(buf);
			if (mem == 1)
				remove_file("pin");
		}
	}
	umount_fs();
}

/* --- 2. writeback cost --------------------------------------------------------- */

struct wb_case {
	const char *id;			/* for names and CSV */
	const char *label;
	const char *policy;
	bool mapped, pinned;
};

static const struct wb_case wb_cases[] = {
	{ "unmapped", "unpinned, not mapped", "naive", false, false },
	{ "unpinned", "unpinned (baseline)", "naive", true, false },
	{ "bounce", "pinned, bounce", "bounce", true, true },
	{ "auto", "pinned, auto", "auto", true, true },
};

struct wb_res {
	double median, min, max;	/* ms */
	double bounced, written;	/* per fsync: bytes bounced, folios written */
	unsigned long long torn;
};

static double memcpy_gbps;

/* memcpy bandwidth of two 64 MiB buffers, median of a few copies. */
static void measure_memcpy(void)
{
	size_t len = 64 * MiB;
	int reps = b.quick ? 5 : 9, r;
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
		t[r] = now_ns() - t0;
	}
	memcpy_gbps = len / percentile(t, reps, 50);	/* bytes per ns = GB/s */
	map_release(src);
	map_release(dst);
	free(t);
}

static void run_wb_case(const struct wb_case *wc, size_t len, int reps, struct wb_res *res)
{
	size_t pages = len / b.psz, nr_h = 0;
	double *t = xcalloc(reps, sizeof(double));
	unsigned long long bounced, written, torn;
	unsigned int *h = NULL;
	char *map = NULL, *src;
	int r;

	mount_fs(wc->policy);
	create_file("wb", len);
	if (wc->mapped) {
		map = map_track(len, MAP_SHARED, b.fs_fd);
		memset(map, 0x33, len);		/* pre-fault */
	}
	if (wc->pinned)
		h = pin_chunks(map, pages, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, &nr_h);
	src = map_anon(len);
	memset(src, 0x44, len);

	/* An untimed round first. */
	pwrite_all(b.fs_fd, src, len);
	if (fsync(b.fs_fd))
		die(errno, "fsync (policy %s, %s)", wc->policy, wc->label);

	bounced = ctr("bounced_bytes");
	written = ctr("folios_written");
	torn = ctr("torn_writes");
	for (r = 0; r < reps; r++) {
		double t0;

		pwrite_all(b.fs_fd, src, len);
		t0 = now_ns();
		if (fsync(b.fs_fd))
			die(errno, "fsync (policy %s, %s)", wc->policy, wc->label);
		t[r] = (now_ns() - t0) / 1e6;
	}
	res->bounced = (double)(ctr("bounced_bytes") - bounced) / reps;
	res->written = (double)(ctr("folios_written") - written) / reps;
	res->torn = ctr("torn_writes") - torn;
	res->median = percentile(t, reps, 50);
	res->min = t[0];
	res->max = t[reps - 1];

	if (h)
		unpin_chunks(h, nr_h, 0);
	map_release(src);
	if (map)
		map_release(map);
	remove_file("wb");
	umount_fs();
	free(t);
}

static struct wb_res wb_res[ARRAY_SIZE(wb_cases)];
static size_t wb_len;

static void section_wb(void)
{
	int reps = b.quick ? 3 : 7;
	unsigned int i;

	wb_len = (b.quick ? 8 : 64) * MiB;
	knob("io_delay_us", 0);
	measure_memcpy();

	printf("\n== 2. fsync of a %s pinwbfs file dirtied by write(2) (io_delay_us=0, %d reps) ==\n",
	       fmt_size(wb_len), reps);
	printf("%-22s %-7s %9s %9s %9s %7s %9s %8s %5s\n", "case", "policy", "median ms",
	       "min ms", "max ms", "ratio", "bounced", "written", "torn");
	printf("%-22s %-7s %9s %9s %9s %7s %9s %8s %5s\n", "", "", "", "", "", "", "MiB/sync",
	       "fol/sync", "");
	for (i = 0; i < ARRAY_SIZE(wb_cases); i++) {
		const struct wb_case *wc = &wb_cases[i];
		struct wb_res *res = &wb_res[i];

		run_wb_case(wc, wb_len, reps, res);
		/* wb_cases[1] is the baseline and comes before the cases compared with it. */
		printf("%-22s %-7s %9.2f %9.2f %9.2f ", wc->label, wc->policy, res->median,
		       res->min, res->max);
		if (i >= 1)
			printf("%7.3f", res->median / wb_res[1].median);
		else
			printf("%7s", "-");
		printf(" %9.2f %8.0f %5llu\n", res->bounced / MiB, res->written, res->torn);
		csv_row("writeback", wc->id, wb_len, reps, "fsync_ms_median", res->median);
		csv_row("writeback", wc->id, wb_len, reps, "fsync_ms_min", res->min);
		csv_row("writeback", wc->id, wb_len, reps, "fsync_ms_max", res->max);
		csv_row("writeback", wc->id, wb_len, reps, "bounced_bytes_per_fsync", res->bounced);
		csv_row("writeback", wc->id, wb_len, reps, "folios_written_per_fsync",
			res->written);
		csv_row("writeback", wc->id, wb_len, reps, "torn_writes", res->torn);
		if (res->torn)
			die(0, "%llu torn writes with no device writing (%s)", res->torn, wc->label);
	}
	printf("memcpy bandwidth: %.2f GB/s; copying %s takes >= %.2f ms\n", memcpy_gbps,
	       fmt_size(wb_len), wb_len / memcpy_gbps / 1e6);
	csv_row("writeback", "memcpy", 64 * MiB, 0, "GB_per_s", memcpy_gbps);
}

/* --- 3. wait latency ------------------------------------------------------------ */

struct waiter {
	int fd;
	int started;
	int err;
	double t_ret;
};

static void *fsync_thread(void *arg)
{
	struct waiter *w = arg;

	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	w->err = fsync(w->fd) ? errno : 0;
	w->t_ret = now_ns();
	return NULL;
}

static double wait_p50, wait_p99, wait_max;
static int wait_runs, wait_late;

static void section_wait(void)
{
	int runs = b.quick ? 30 : 200, r, n = 0, ret;
	double *lat = xcalloc(runs, sizeof(double));
	char *map, *src = xcalloc(1, b.psz);

	knob("io_delay_us", 0);
	knob("wait_timeout_ms", 60000);
	mount_fs("wait");
	create_file("wait", b.psz);
	map = map_track(b.psz, MAP_SHARED, b.fs_fd);
	memset(map, 0x55, b.psz);
	if (fsync(b.fs_fd))
		die(errno, "fsync of the unpinned page (policy wait)");

	/* Run -1 is a warm-up. */
	for (r = -1; r < runs; r++) {
		struct waiter w = { .fd = b.fs_fd };
		unsigned long long waited;
		unsigned int h;
		pthread_t tid;
		double t_unpin;

		h = pin(map, b.psz, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, 1);
		src[0] = r;
		pwrite_all(b.fs_fd, src, b.psz);	/* dirty it */
		waited = ctr("waited");
		ret = pthread_create(&tid, NULL, fsync_thread, &w);
		if (ret)
			die(ret, "pthread_create");
		while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
			sched_yield();
		sleep_us(5000);
		t_unpin = now_ns();
		unpin(h, PINWB_UNPIN_DIRTY);
		ret = pthread_join(tid, NULL);
		if (ret)
			die(ret, "pthread_join");
		if (w.err)
			die(w.err, "fsync waiting for the pin (policy wait)");
		if (r < 0)
			continue;
		/* The fsync must have met the pin, or it did not wait for this unpin. */
		if (ctr("waited") == waited || w.t_ret < t_unpin) {
			wait_late++;
			continue;
		}
		lat[n++] = (w.t_ret - t_unpin) / 1e3;
	}
	map_release(map);
	remove_file("wait");
	umount_fs();

	wait_runs = n;
	if (!n)
		die(0, "no fsync was still waiting after 5 ms in %d runs", runs);
	wait_p50 = percentile(lat, n, 50);
	wait_p99 = percentile(lat, n, 99);
	wait_max = lat[n - 1];
	free(lat);
	free(src);

	printf("\n== 3. wait latency: unpin -> fsync returns (policy wait, io_delay_us=0) ==\n");
	printf("%6s %8s %10s %10s %10s\n", "runs", "excluded", "p50 us", "p99 us", "max us");
	printf("%6d %8d %10.1f %10.1f %10.1f\n", n, wait_late, wait_p50, wait_p99, wait_max);
	if (wait_late)
		printf("(excluded: runs whose fsync had not reached the pinned page at the unpin)\n");
	csv_row("wait", "latency", b.psz, n, "p50_us", wait_p50);
	csv_row("wait", "latency", b.psz, n, "p99_us", wait_p99);
	csv_row("wait", "latency", b.psz, n, "max_us", wait_max);
	csv_row("wait", "latency", b.psz, n, "excluded_runs", wait_late);
}

/* --- 4. scale -------------------------------------------------------------------- */

/* Slab and vmalloc bytes, after folding every CPU's pending deltas. */
struct kmem {
	long long sunreclaim, sreclaimable, vmalloc;
};

static void read_kmem(struct kmem *k)
{
	/* vmstat() writes /proc/sys/vm/stat_refresh first; these count pages. */
	k->sunreclaim = vmstat("nr_slab_unreclaimable");
	k->sreclaimable = vmstat("nr_slab_reclaimable");
	k->vmalloc = vmstat("nr_vmalloc");
	if (k->sunreclaim < 0 || k->sreclaimable < 0 || k->vmalloc < 0)
		die(0, "cannot read nr_slab_{un,}reclaimable or nr_vmalloc in /proc/vmstat");
	k->sunreclaim *= b.psz;
	k->sreclaimable *= b.psz;
	k->vmalloc *= b.psz;
}

/* What kvmalloc() takes for @bytes: kmalloc buckets, buddy pages, or vmalloc pages. */
static size_t kvmalloc_size(size_t bytes)
{
	size_t s = 8;

	if (bytes <= 2 * b.psz) {
		while (s < bytes)
			s <<= 1;
		return s;
	}
	if (bytes <= (b.psz << 10)) {		/* MAX_PAGE_ORDER 10 */
		s = b.psz;
		while (s < bytes)
			s <<= 1;
		return s;
	}
	return (bytes + b.psz - 1) / b.psz * b.psz;
}

static size_t scale_pages, scale_calls;
static double scale_bpp, scale_bpp_alloc;

static void section_scale(void)
{
	unsigned long long avail = meminfo_bytes("MemAvailable");
	size_t pages, len, nr_h, i, arrays = 0, chunk;
	struct kmem k0, k1, k2;
	double t_pin, t_unpin, t0;
	long long dun, drec, dvm, total;
	unsigned int *h;
	char *buf;

	if (b.quick) {
		pages = 64 * MiB / b.psz;
	} else {
		pages = avail / 10 * 6 / b.psz;
		if (pages > (1UL << 20))
			pages = 1UL << 20;
	}
	/* Never more calls than a file may hold pins. */
	if (pages > b.max_pages_per_pin * b.max_pins_per_file)
		pages = b.max_pages_per_pin * b.max_pins_per_file;
	len = pages * b.psz;
	buf = map_anon(len);
	memset(buf, 0x66, len);

	read_kmem(&k0);
	t0 = now_ns();
	h = pin_chunks(buf, pages, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, &nr_h);
	t_pin = now_ns() - t0;
	read_kmem(&k1);
	if (ctr("pages_pinned") < pages)
		die(0, "pages_pinned is below the %zu pages just pinned", pages);
	t0 = now_ns();
	unpin_chunks(h, nr_h, 0);
	t_unpin = now_ns() - t0;
	read_kmem(&k2);
	map_release(buf);

	chunk = b.max_pages_per_pin;
	for (i = 0; i < nr_h; i++) {
		size_t this = pages - i * chunk < chunk ? pages - i * chunk : chunk;

		arrays += kvmalloc_size(this * sizeof(void *));
	}
	dun = k1.sunreclaim - k0.sunreclaim;
	drec = k1.sreclaimable - k0.sreclaimable;
	dvm = k1.vmalloc - k0.vmalloc;
	total = dun + drec + dvm;
	scale_pages = pages;
	scale_calls = nr_h;
	scale_bpp = (double)(total - (long long)(pages * sizeof(void *))) / pages;
	scale_bpp_alloc = (double)(total - (long long)arrays) / pages;

	printf("\n== 4. scale: %zu pages (%s) of anonymous memory pinned long-term ==\n", pages,
	       fmt_size(len));
	printf("MemAvailable %llu MiB; %zu PIN call(s) of at most %llu pages\n", avail / MiB,
	       nr_h, b.max_pages_per_pin);
	printf("%-34s %14s %10s\n", "", "bytes", "per page");
	printf("%-34s %14lld %10.2f\n", "slab SUnreclaim growth", dun, (double)dun / pages);
	printf("%-34s %14lld %10.2f\n", "slab SReclaimable growth", drec, (double)drec / pages);
	printf("%-34s %14lld %10.2f\n", "VmallocUsed growth", dvm, (double)dvm / pages);
	printf("%-34s %14zu %10.2f\n", "page pointers (8 bytes/page)", pages * sizeof(void *),
	       (double)sizeof(void *));
	printf("%-34s %14zu %10.2f\n", "... as kvmalloc'ed (estimate)", arrays,
	       (double)arrays / pages);
	printf("%-34s %14.0f %10.2f\n", "pinwb beyond the page pointers", scale_bpp * pages,
	       scale_bpp);
	printf("%-34s %14.0f %10.2f\n", "... beyond the arrays as allocated", scale_bpp_alloc * pages,
	       scale_bpp_alloc);
	printf("%-34s %14lld %10.2f\n", "left after unpinning everything",
	       k2.sunreclaim + k2.sreclaimable + k2.vmalloc - k0.sunreclaim - k0.sreclaimable -
	       k0.vmalloc, (double)(k2.sunreclaim + k2.sreclaimable + k2.vmalloc -
				    k0.sunreclaim - k0.sreclaimable - k0.vmalloc) / pages);
	printf("pin %.1f ns/page, unpin %.1f ns/page\n", t_pin / pages, t_unpin / pages);

	csv_row("scale", "anon/longterm", len, 1, "pages", pages);
	csv_row("scale", "anon/longterm", len, 1, "pin_calls", nr_h);
	csv_row("scale", "anon/longterm", len, 1, "sunreclaim_delta_bytes", dun);
	csv_row("scale", "anon/longterm", len, 1, "sreclaimable_delta_bytes", drec);
	csv_row("scale", "anon/longterm", len, 1, "vmalloc_delta_bytes", dvm);
	csv_row("scale", "anon/longterm", len, 1, "bytes_per_page", scale_bpp);
	csv_row("scale", "anon/longterm", len, 1, "bytes_per_page_beyond_allocated_arrays",
		scale_bpp_alloc);
	csv_row("scale", "anon/longterm", len, 1, "pin_ns_per_page", t_pin / pages);
	csv_row("scale", "anon/longterm", len, 1, "unpin_ns_per_page", t_unpin / pages);
}

/* --- summary ----------------------------------------------------------------------- */

static const char *verdict(bool met)
{
	return met ? "goal met" : "NOT met";
}

static void summarize(void)
{
	const size_t *sizes = b.quick ? quick_sizes : full_sizes;
	size_t nr_sizes = b.quick ? ARRAY_SIZE(quick_sizes) : ARRAY_SIZE(full_sizes);
	size_t goal_size = sizes[nr_sizes - 1];
	unsigned int mem, c, i;
	char name[96];
	double r;

	add_summary("mode", "%s", b.quick ? "quick" : "full");
	add_summary("page_size", "%zu", b.psz);
	for (mem = 0; mem < ARRAY_SIZE(pin_mems); mem++) {
		for (c = 0; c < ARRAY_SIZE(pin_cases); c++) {
			struct pin_res *res = &pin_res[mem][c][nr_sizes - 1];

			snprintf(name, sizeof(name), "pin_%s_%s_%s", pin_mems[mem],
				 pin_cases[c].mode, tag_size(goal_size));
			if (!res->done)
				add_summary(name, "not measured");
			else if (res->gup < 0)
				add_summary(name, "pinwb %.1f ns/page, gup_test n/a", res->pinwb);
			else
				add_summary(name, "pinwb %.1f ns/page, gup_test %.1f ns/page, ratio %.3f",
					    res->pinwb, res->gup, res->ratio);
		}
	}
	add_summary("memcpy_gbps", "%.2f", memcpy_gbps);
	for (i = 0; i < ARRAY_SIZE(wb_cases); i++) {
		snprintf(name, sizeof(name), "wb_fsync_%s_%s_ms", wb_cases[i].id, tag_size(wb_len));
		add_summary(name, "%.2f", wb_res[i].median);
	}
	add_summary("wb_ratio_bounce", "%.3f", wb_res[2].median / wb_res[1].median);
	add_summary("wb_ratio_auto", "%.3f", wb_res[3].median / wb_res[1].median);
	add_summary("wb_ratio_bounce_vs_unmapped", "%.3f", wb_res[2].median / wb_res[0].median);
	add_summary("wb_copy_floor_ms", "%.2f", wb_len / memcpy_gbps / 1e6);
	add_summary("wait_runs", "%d (excluded %d)", wait_runs, wait_late);
	add_summary("wait_p50_us", "%.1f", wait_p50);
	add_summary("wait_p99_us", "%.1f", wait_p99);
	add_summary("scale_pages", "%zu (%zu PIN calls)", scale_pages, scale_calls);
	add_summary("scale_bytes_per_page", "%.2f", scale_bpp);

	/* The goals. */
	for (mem = 0; mem < ARRAY_SIZE(pin_mems); mem++) {
		for (c = 0; c < ARRAY_SIZE(pin_cases); c++) {
			struct pin_res *res = &pin_res[mem][c][nr_sizes - 1];

			snprintf(name, sizeof(name), "goal_pin_ratio_%s_%s_%s%s", pin_mems[mem],
				 pin_cases[c].mode, tag_size(goal_size),
				 b.quick ? "_quick" : "");
			if (!res->done || res->gup < 0) {
				add_summary(name, "not measured%s NOT met",
					    res->done ? " (no gup_test)" : "");
				continue;
			}
			r = res->ratio;
			add_summary(name, "%.3f (<= %.2f) %s", r, GOAL_PIN_RATIO,
				    verdict(r <= GOAL_PIN_RATIO));
		}
	}
	r = wb_res[2].median / wb_res[1].median;
	add_summary("goal_wb_bounce_ratio", "%.3f (<= %.1f) %s", r, GOAL_WB_RATIO,
		    verdict(r <= GOAL_WB_RATIO));
	add_summary("goal_wait_p99_us", "%.1f (< %.0f) %s", wait_p99, GOAL_WAIT_P99,
		    verdict(wait_p99 < GOAL_WAIT_P99));
	add_summary("goal_scale_bytes_per_page", "%.2f (<= %.0f) %s", scale_bpp, GOAL_BYTES,
		    verdict(scale_bpp <= GOAL_BYTES));

	printf("\n");
	for (i = 0; i < nr_summary; i++) {
		printf("%s: %s\n", summary[i].name, summary[i].value);
		fprintf(b.csv, "summary,%s,0,0,value,\"%s\"\n", summary[i].name,
			summary[i].value);
	}
}

/* --- main ------------------------------------------------------------------------------ */

static void print_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-q] [-o FILE]\n"
		"  -q       quick mode (small sizes, few repetitions)\n"
		"  -o FILE  write the CSV to FILE (default %s)\n", prog, DEFAULT_CSV);
}

int main(int argc, char **argv)
{
	double start = now_ns();
	int opt, ver;

	b.csv_path = DEFAULT_CSV;
	while ((opt = getopt(argc, argv, "qo:h")) != -1) {
		switch (opt) {
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

	b.csv = fopen(b.csv_path, "w");
	if (!b.csv)
		die(errno, "cannot create %s", b.csv_path);
	fprintf(b.csv, "section,case,size_bytes,reps,metric,value\n");

	b.dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (b.dev < 0)
		die(errno, "open %s", PINWB_DEV);
	ver = ioctl(b.dev, PINWB_IOC_VERSION);
	if (ver < 0)
		die(errno, "PINWB_IOC_VERSION");
	if (ver != PINWB_ABI_VERSION)
		die(0, "pinwb ABI %d, this program was built for %d", ver, PINWB_ABI_VERSION);
	b.gup = open(GUP_TEST_FILE, O_RDWR | O_CLOEXEC);
	if (b.gup < 0)
		fprintf(stderr, "pinwb_bench: warning: %s: %s (CONFIG_GUP_TEST?); "
			"measuring pinwb alone\n", GUP_TEST_FILE, strerror(errno));

	b.max_pages_per_pin = ctr("max_pages_per_pin");
	b.max_pins_per_file = ctr("max_pins_per_file");
	if (!b.max_pages_per_pin || !b.max_pins_per_file)
		die(0, "max_pages_per_pin or max_pins_per_file is 0");
	b.io_delay_us = ctr("io_delay_us");
	b.flush_period_ms = ctr("flush_period_ms");
	b.wait_timeout_ms = ctr("wait_timeout_ms");
	b.knobs_saved = true;
	/* No cleaning writeback in the middle of a measurement. */
	knob("flush_period_ms", 0);

	printf("pinwb_bench (%s mode): page size %zu, MemAvailable %llu MiB, CSV %s\n",
	       b.quick ? "quick" : "full", b.psz, meminfo_bytes("MemAvailable") / MiB, b.csv_path);

	section_pin();
	section_wb();
	section_wait();
	section_scale();
	summarize();

	printf("elapsed_s: %.1f\n", (now_ns() - start) / 1e9);
	fprintf(b.csv, "summary,elapsed_s,0,0,value,%.1f\n", (now_ns() - start) / 1e9);
	if (fflush(b.csv) || ferror(b.csv))
		die(errno, "writing %s", b.csv_path);
	cleanup();
	return 0;
}
