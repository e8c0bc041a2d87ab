/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by pinwb's selftests.
 */
#ifndef PINWB_TEST_H
#define PINWB_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <pinwb.h>

#include "kselftest.h"

#define PINWB_DEV	"/dev/pinwb"
#define PINWB_DEBUGFS	"/sys/kernel/debug/pinwb"

/* The module's path in the guest; pinwb-guest exports it. */
static inline const char *pinwb_ko(void)
{
	const char *ko = getenv("PINWB_KO");

	return ko ? ko : "/lib/modules/pinwb.ko";
}

/* Reads a whole small file into buf (NUL-terminated); returns length or -errno. */
static inline int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

static inline int pinwb_unload(void)
{
	return syscall(SYS_delete_module, "pinwb", O_NONBLOCK) ? -errno : 0;
}

static inline int pinwb_load(void)
{
	int fd = open(pinwb_ko(), O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* Reads an unsigned number from a debugfs file of pinwb. */
static inline unsigned long long pinwb_debugfs_u64(const char *name)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), PINWB_DEBUGFS "/%s", name);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return ~0ULL;
	return strtoull(buf, NULL, 0);
}

/* Writes a pinwb debugfs knob. */
static inline int pinwb_knob(const char *name, const char *value)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), PINWB_DEBUGFS "/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Sets the writeback knobs that tests tune: the flusher's period, the store's
 * IO delay and the longest wait for pins. 0 or the first -errno.
 */
static inline int pinwb_writeback_knobs(unsigned int flush_period_ms, unsigned int io_delay_us,
					unsigned int wait_timeout_ms)
{
	const char *names[] = { "flush_period_ms", "io_delay_us", "wait_timeout_ms" };
	unsigned int values[] = { flush_period_ms, io_delay_us, wait_timeout_ms };
	char buf[16];
	int i, ret = 0;

	for (i = 0; i < 3 && !ret; i++) {
		snprintf(buf, sizeof(buf), "%u", values[i]);
		ret = pinwb_knob(names[i], buf);
	}
	return ret;
}

/* Back to the module's defaults (Documentation/pinwb.rst, "Knobs and counters"). */
static inline int pinwb_writeback_knobs_default(void)
{
	return pinwb_writeback_knobs(1000, 1000, 5000);
}

/* /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
#define PINWB_KPF_WRITEBACK	8

/* The PFN behind @addr (root: /proc/self/pagemap), 0 if none. */
static inline unsigned long long page_pfn(const void *addr)
{
	unsigned long long e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && pread(fd, &e, 8, (uintptr_t)addr / sysconf(_SC_PAGESIZE) * 8) != 8)
		e = 0;
	if (fd >= 0)
		close(fd);
	return e & (1ULL << 63) ? e & ((1ULL << 55) - 1) : 0;
}

/* The kernel's flags of the page at @pfn (/proc/kpageflags), 0 if unreadable. */
static inline unsigned long long pfn_kpageflags(unsigned long long pfn)
{
	unsigned long long f = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && pread(fd, &f, 8, pfn * 8) != 8)
		f = 0;
	if (fd >= 0)
		close(fd);
	return f;
}

/* A /proc/vmstat counter, after folding every CPU's pending deltas. */
static inline long long vmstat(const char *name)
{
	char line[256];
	long long v = -1;
	size_t n = strlen(name);
	FILE *f;
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (fd >= 0) {
		/* An EINVAL here (a negative counter) still refreshed everything. */
		ssize_t ignored = write(fd, "1", 1);

		(void)ignored;
		close(fd);
	}
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ')
			v = strtoll(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* VmPin of this process (mm->pinned_vm), in pages. */
static inline long vm_pinned_pages(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmPin:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb < 0 ? -1 : kb / (sysconf(_SC_PAGESIZE) / 1024);
}

/* The counters a test compares before and after. */
struct pin_counters {
	long long acquired, released;
	unsigned long long pins_active, pages_pinned;
	long vm_pinned;
};

static inline void pin_counters(struct pin_counters *c)
{
	c->acquired = vmstat("nr_foll_pin_acquired");
	c->released = vmstat("nr_foll_pin_released");
	c->pins_active = pinwb_debugfs_u64("pins_active");
	c->pages_pinned = pinwb_debugfs_u64("pages_pinned");
	c->vm_pinned = vm_pinned_pages();
}

/* Everything pinned since @before was released again. */
#define ASSERT_NOTHING_LEAKED(before) do {					\
	struct pin_counters __now;						\
	pin_counters(&__now);							\
	ASSERT_EQ((before)->acquired - (before)->released,			\
		  __now.acquired - __now.released);				\
	ASSERT_EQ((before)->pins_active, __now.pins_active);			\
	ASSERT_EQ((before)->pages_pinned, __now.pages_pinned);			\
	ASSERT_EQ((before)->vm_pinned, __now.vm_pinned);			\
} while (0)

static inline int pinwb_pin_range(int fd, void *addr, size_t len, unsigned int flags,
				  struct pinwb_pin *out)
{
	struct pinwb_pin p = { .addr = (unsigned long)addr, .len = len, .flags = flags };
	int ret = ioctl(fd, PINWB_IOC_PIN, &p);

	if (out)
		*out = p;
	return ret ? -errno : (int)p.handle;
}

static inline int pinwb_unpin_handle(int fd, unsigned int handle, unsigned int flags)
{
	struct pinwb_unpin u = { .handle = handle, .flags = flags };

	return ioctl(fd, PINWB_IOC_UNPIN, &u) ? -errno : 0;
}

/*
 * One variant of fixture @f per pinwbfs writeback policy, with the policy's
 * name in variant->name (for files that include kselftest_harness.h).
 */
#define PINWB_POLICY_VARIANTS(f)						\
	FIXTURE_VARIANT(f) { const char *name; };				\
	FIXTURE_VARIANT_ADD(f, naive) { .name = "naive" };			\
	FIXTURE_VARIANT_ADD(f, skip) { .name = "skip" };			\
	FIXTURE_VARIANT_ADD(f, wait) { .name = "wait" };			\
	FIXTURE_VARIANT_ADD(f, bounce) { .name = "bounce" };			\
	FIXTURE_VARIANT_ADD(f, fail) { .name = "fail" };			\
	FIXTURE_VARIANT_ADD(f, auto) { .name = "auto" };			\
	FIXTURE_VARIANT_ADD(f, direct) { .name = "direct" };			\
	FIXTURE_VARIANT_ADD(f, defer) { .name = "defer" }

/* Mounts a pinwbfs with mount options @opts at @dir; 0 or -errno. */
static inline int pinwbfs_mount(const char *dir, const char *opts)
{
	mkdir(dir, 0755);
	return mount("none", dir, "pinwbfs", 0, opts) ? -errno : 0;
}

/* Reads [off, off + len) of a pinwbfs file's backing store, bypassing the page cache. */
static inline ssize_t pinwbfs_read_store(int fd, void *buf, size_t len, off_t off)
{
	struct pinwbfs_read_store r = { .offset = off, .len = len, .buf = (unsigned long)buf };

	return ioctl(fd, PINWBFS_IOC_READ_STORE, &r);
}

/*
 * kselftest's rule: a program that cannot run here skips (KSFT_SKIP) rather
 * than fails. Every pinwb test needs root (/dev/pinwb is root-only) and pinwb
 * loaded; @fs: it mounts pinwbfs too. -l and -h work anywhere.
 */
static inline void pinwb_skip_unless_loaded(int argc, char **argv, bool fs)
{
	char buf[4096];
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-l") || !strcmp(argv[i], "-h"))
			return;
	if (geteuid())
		ksft_exit_skip("needs root (%s is root-only)\n", PINWB_DEV);
	if (access(PINWB_DEV, F_OK))
		ksft_exit_skip("%s is absent: load pinwb.ko first\n", PINWB_DEV);
	if (fs && !(read_file("/proc/filesystems", buf, sizeof(buf)) > 0 &&
		    strstr(buf, "\tpinwbfs\n")))
		ksft_exit_skip("pinwbfs is not registered: load pinwb.ko first\n");
}

/* TEST_HARNESS_MAIN for pinwb's tests: skips unless pinwb is loaded. */
#define PINWB_HARNESS_MAIN(fs)							\
	int main(int argc, char **argv)						\
	{									\
		pinwb_skip_unless_loaded(argc, argv, fs);			\
		return test_harness_run(argc, argv);				\
	}

#endif /* PINWB_TEST_H */
