/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The real-filesystem lab: what an unmodified 7.3 kernel does with pinned
 * file pages and pinwb's simulated device on tmpfs, ext4, xfs, btrfs (on
 * loop devices over tmpfs files), and on pinwbfs for comparison.
 *
 * One cell = one filesystem x one pin x one event; rf_cell() runs it and
 * classifies what is *on disk* afterwards (O_DIRECT read, a remount, or for
 * pinwbfs its store), never the page cache. pinwb_realfs_test asserts every
 * cell; pinwb_realfs_table prints them. Documentation/pinwb.rst, "What
 * mainline 7.3 does", names the kernel function behind each outcome.
 */
#ifndef PINWB_REALFS_H
#define PINWB_REALFS_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "pinwb_test.h"

#define RF_DIR		"/tmp/realfs"
#define RF_NPAGES	4
#define RF_OLD		0x41	/* 'A': the file's bytes before the device writes */
#define RF_PATTERN	0x80	/* the device's stamp (high half); the O_DIRECT source's first byte */
#define RF_TRIALS	30	/* tries of "device writes during fsync" per cell */

enum rf_fs { RF_TMPFS, RF_EXT4, RF_XFS, RF_BTRFS, RF_PWB_MMWB, RF_PWB_DEFAULT, RF_EXT4_INTEGRITY,
	     RF_NR_FS };
enum rf_pin { RF_LT_RW, RF_LT_RO, RF_ST_RW, RF_DIO, RF_NR_PIN };
enum rf_event { RF_DURING, RF_KEPT, RF_UNPIN, RF_NR_EVENT };

/* Outcomes, in rising severity (the worst of several trials is reported). */
enum rf_outcome {
	RF_OK,		/* the writer's bytes are on disk, whole pages */
	RF_REFUSED,	/* the pin (or the device's start) was refused: errno in .err */
	RF_LOST,	/* fsync returned 0, and the device's bytes are not on disk */
	RF_TORN,	/* a page on disk mixes two device passes */
	RF_CSUM,	/* the read of what was written failed: EIO / EILSEQ */
	RF_BROKEN,	/* the lab itself failed (setup, unexpected errno): see .why */
	RF_NR_OUTCOME
};

static const char *const rf_outcome_name[] = {
	"ok", "refused", "lost", "torn", "csum", "BROKEN",
};
static const char *const rf_pin_name[] = { "lt-rw", "lt-ro", "st-rw", "dio" };
static const char *const rf_event_name[] = { "during", "kept", "unpin" };

struct rf_fsdesc {
	const char *name;
	const char *fstype;	/* for mount(2) */
	const char *mkfs;	/* NULL: no block device; "%s" = the loop device */
	const char *tool;	/* the mkfs binary, to skip when it is missing */
	unsigned int img_mib;
	bool pinwbfs;
	bool mmwb;
	bool integrity;		/* on dm-integrity (journal-less D, crc32c) over the loop device */
};

static const struct rf_fsdesc rf_fs_desc[RF_NR_FS] = {
	[RF_TMPFS] = { "tmpfs", "tmpfs" },
	/* 1 KiB blocks: four buffer_heads per page (seed 000, REVIEW 6.2 (a)). */
	[RF_EXT4] = { "ext4", "ext4", "mkfs.ext4 -q -F -b 1024 %s", "mkfs.ext4", 64 },
	/* mkfs.xfs refuses < 300 MiB unless it thinks it runs under fstests. */
	[RF_XFS] = { "xfs", "xfs", "TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f %s",
		     "mkfs.xfs", 320 },
	[RF_BTRFS] = { "btrfs", "btrfs", "mkfs.btrfs -q -f %s", "mkfs.btrfs", 128 },
	[RF_PWB_MMWB] = { "pinwbfs-mmwb", "pinwbfs", .pinwbfs = true, .mmwb = true },
	[RF_PWB_DEFAULT] = { "pinwbfs", "pinwbfs", .pinwbfs = true },
	[RF_EXT4_INTEGRITY] = { "ext4-integrity", "ext4", "mkfs.ext4 -q -F -b 1024 %s", "dmsetup", 64,
				.integrity = true },
};

/* One mounted lab filesystem. */
struct rf_mnt {
	enum rf_fs fs;
	char dir[64];
	char loopdev[32];
	char policy[16];	/* pinwbfs: "mainline", or "naive" until it exists */
	int dev;		/* /dev/pinwb */
};

struct rf_result {
	enum rf_outcome outcome;
	int err;		/* the errno of a refusal or of the failed read */
	int fsync_ret;		/* the (last) fsync of the cell: 0 or -errno */
	int trials;		/* RF_DURING: trials run */
	int torn_trials, csum_trials, lost_trials;
	unsigned long long passes;	/* device passes (last trial) */
	int klog_csum;		/* kernel lines: "csum failed" / "Checksum failed" */
	int klog_warn;		/* kernel lines: WARNING:, "does not have buffers", stale page cache */
	char why[160];
};

static size_t rf_psz(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static bool rf_have_tool(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* --- kernel log ----------------------------------------------------------- */

/* Counts lines of the kernel log buffer that contain any of @needles. */
static int rf_klog_count(const char *const *needles)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *line, *save;
	int n = 0, i;

	if (len <= 0)
		return 0;
	buf = malloc(len + 1);
	if (!buf)
		return 0;
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (len < 0)
		len = 0;
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (i = 0; needles[i]; i++)
			if (strstr(line, needles[i])) {
				n++;
				break;
			}
	free(buf);
	return n;
}

static const char *const rf_klog_csum_lines[] = { "csum failed", "Checksum failed", NULL };
static const char *const rf_klog_warn_lines[] = {
	"WARNING:", "does not have buffers", "Page cache invalidation failure", NULL,
};

/* Writes a marker into the kernel log (dprintf to /dev/kmsg fails: TOOLCHAIN). */
static void rf_kmsg(const char *fmt, const char *a, const char *b, const char *c)
{
	char msg[200];
	int fd = open("/dev/kmsg", O_WRONLY);

	if (fd < 0)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b, c);
	ssize_t ignored = write(fd, msg, strlen(msg));

	(void)ignored;
	close(fd);
}

/* --- block devices and mounts ----------------------------------------------- */

static int rf_sh(const char *fmt, const char *arg)
{
	char cmd[768];
	int st;

	snprintf(cmd, sizeof(cmd), fmt, arg);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Attaches @img to a free loop device (name into @dev) and returns an open
 * fd of it, or -errno. rf_loop_release() on that fd detaches the device at
 * its last close (LOOP_CLR_FD on a busy device sets LO_FLAGS_AUTOCLEAR, as
 * losetup -d does), so after a mount it goes away with the umount.
 */
static int rf_loop_attach(const char *img, char *dev, size_t devlen)
{
	struct loop_config cfg = { 0 };
	int ctl, nr, lfd, ifd, ret = 0;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	nr = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (nr < 0)
		return -errno;
	snprintf(dev, devlen, "/dev/loop%d", nr);
	ifd = open(img, O_RDWR | O_CLOEXEC);
	if (ifd < 0)
		return -errno;
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	if (lfd < 0) {
		ret = -errno;
		close(ifd);
		return ret;
	}
	cfg.fd = ifd;
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg)) {
		ret = -errno;
		close(lfd);
		lfd = ret;
	}
	close(ifd);
	return lfd;
}

static void rf_loop_release(int lfd)
{
	if (lfd < 0)
		return;
	ioctl(lfd, LOOP_CLR_FD, 0);
	close(lfd);
}

static int rf_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	sync();
	if (write(fd, "3", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/* pinwbfs with policy=mainline if the module has it, else naive (provisional). */
static const char *rf_pinwbfs_policy(void)
{
	static char policy[16];

	if (!policy[0]) {
		mkdir(RF_DIR, 0755);
		mkdir(RF_DIR "/probe", 0755);
		if (!mount("none", RF_DIR "/probe", "pinwbfs", 0, "policy=mainline")) {
			umount(RF_DIR "/probe");
			strcpy(policy, "mainline");
		} else {
			strcpy(policy, "naive");
		}
	}
	return policy;
}

static int rf_mount_only(struct rf_mnt *m)
{
	const struct rf_fsdesc *d = &rf_fs_desc[m->fs];
	char img[96], opts[64];
	int ret, lfd;

	if (d->pinwbfs) {
		snprintf(opts, sizeof(opts), "policy=%s%s", m->policy, d->mmwb ? ",mmwb" : "");
		return mount("none", m->dir, "pinwbfs", 0, opts) ? -errno : 0;
	}
	if (!d->mkfs)
		return mount("tmpfs", m->dir, "tmpfs", 0, "size=64m") ? -errno : 0;
	if (d->integrity) {
		snprintf(m->loopdev, sizeof(m->loopdev), "/dev/mapper/rf-%s", d->name);
		return mount(m->loopdev, m->dir, d->fstype, 0, NULL) ? -errno : 0;
	}
	snprintf(img, sizeof(img), RF_DIR "/%s.img", d->name);
	lfd = rf_loop_attach(img, m->loopdev, sizeof(m->loopdev));
	if (lfd < 0)
		return lfd;
	ret = mount(m->loopdev, m->dir, d->fstype, 0, NULL) ? -errno : 0;
	rf_loop_release(lfd);
	return ret;
}

/*
 * Mounts filesystem @fs at /tmp/realfs/<name>; the image (a sparse file in
 * the guest's tmpfs /tmp) is made once and reused by every test. 0, -errno,
 * or 1 when the mkfs tool is missing (the caller skips).
 */
static int rf_up(struct rf_mnt *m, enum rf_fs fs)
{
	const struct rf_fsdesc *d = &rf_fs_desc[fs];
	char img[96], cmd[512];
	struct stat st;
	int fd, ret;

	memset(m, 0, sizeof(*m));
	m->fs = fs;
	m->dev = -1;
	mkdir(RF_DIR, 0755);
	snprintf(m->dir, sizeof(m->dir), RF_DIR "/%s", d->name);
	mkdir(m->dir, 0755);
	if (d->pinwbfs)
		snprintf(m->policy, sizeof(m->policy), "%s", rf_pinwbfs_policy());
	if (d->mkfs) {
		if (!rf_have_tool(d->tool))
			return 1;
		snprintf(img, sizeof(img), RF_DIR "/%s.img", d->name);
		if (stat(img, &st)) {
			char dev[32];

			fd = open(img, O_RDWR | O_CREAT, 0644);
			if (fd < 0)
				return -errno;
			ret = ftruncate(fd, (off_t)d->img_mib << 20) ? -errno : 0;
			close(fd);
			if (ret)
				return ret;
			fd = rf_loop_attach(img, dev, sizeof(dev));
			if (fd < 0)
				return fd;
			if (d->integrity) {
				/*
				 * dm-integrity formats an all-zero device on the
				 * first table; its status then gives the data
				 * sectors it provides. Every sector is written
				 * once (dd), or reads of unwritten ones fail,
				 * then mkfs. The device stays for the boot.
				 */
				if (!rf_have_tool("mkfs.ext4")) {
					rf_loop_release(fd);
					return 1;
				}
				snprintf(cmd, sizeof(cmd),
					 "export DM_DISABLE_UDEV=1; n=rf-%s; t='integrity %s 0 4 D 1 internal_hash:crc32c'; "
					 "dmsetup create $n-probe --table \"0 8 $t\" && "
					 "p=$(dmsetup status $n-probe | awk '{print $5}') && dmsetup remove $n-probe && "
					 "dmsetup create $n --table \"0 $p $t\" && "
					 "{ dd if=/dev/zero of=/dev/mapper/$n bs=1M 2>/dev/null; true; } && sync && "
					 "mkfs.ext4 -q -F -b 1024 /dev/mapper/$n", d->name, dev);
			} else {
				snprintf(cmd, sizeof(cmd), d->mkfs, dev);
			}
			ret = rf_sh("( %s ) >" RF_DIR "/mkfs.log 2>&1", cmd);
			rf_loop_release(fd);
			if (ret) {
				unlink(img);
				return -EIO;
			}
		}
	}
	m->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (m->dev < 0 && pinwb_load() == 0)
		m->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (m->dev < 0)
		return -ENODEV;
	return rf_mount_only(m);
}

static int rf_down(struct rf_mnt *m)
{
	int ret = umount(m->dir) ? -errno : 0;

	if (m->dev >= 0)
		close(m->dev);
	m->dev = -1;
	return ret;
}

/* Umount and mount again: the page cache is gone, the disk is read. */
static int rf_remount(struct rf_mnt *m)
{
	if (umount(m->dir))
		return -errno;
	return rf_mount_only(m);
}

static bool rf_is_block(const struct rf_mnt *m)
{
	return rf_fs_desc[m->fs].mkfs != NULL;
}

/* --- the oracle: what is on disk -------------------------------------------- */

/*
 * Reads the cell's file as stored: O_DIRECT on a block filesystem (a clean
 * page cache folio is not written by the flush that O_DIRECT does first),
 * PINWBFS_IOC_READ_STORE on pinwbfs, pread on tmpfs (its page cache is its
 * store). 0 or -errno of the read.
 */
static int rf_read_disk(struct rf_mnt *m, const char *path, unsigned char *buf, size_t len)
{
	int fd, ret = 0;
	ssize_t n;
	void *al;

	if (rf_fs_desc[m->fs].pinwbfs) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -errno;
		n = pinwbfs_read_store(fd, buf, len, 0);
		ret = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
		close(fd);
		return ret;
	}
	fd = open(path, O_RDONLY | (rf_is_block(m) ? O_DIRECT : 0));
	if (fd < 0)
		return -errno;
	if (posix_memalign(&al, 4096, len)) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, al, len, 0);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -ENODATA;
	else
		memcpy(buf, al, len);
	free(al);
	close(fd);
	return ret;
}

struct rf_pages {
	int old, writer, torn;
	unsigned char first;	/* the byte of page 0 */
};

/*
 * Classifies each page by its 8-byte words: all RF_OLD bytes, one other
 * word throughout (a device pass: PINWB_DMA_STAMP64; or the CPU's or an
 * O_DIRECT source's uniform bytes), or mixed (torn).
 */
static struct rf_pages rf_classify(const unsigned char *buf, size_t npages)
{
	struct rf_pages p = { 0 };
	size_t psz = rf_psz(), i, j;
	uint64_t old;

	memset(&old, RF_OLD, sizeof(old));
	p.first = buf[0];
	for (i = 0; i < npages; i++) {
		const uint64_t *pg = (const uint64_t *)(buf + i * psz);
		bool mixed = false;

		for (j = 1; j < psz / 8 && !mixed; j++)
			mixed = pg[j] != pg[0];
		if (mixed)
			p.torn++;
		else if (pg[0] == old)
			p.old++;
		else
			p.writer++;
	}
	return p;
}

/* --- the device and the kernel's own pinner --------------------------------- */

/*
 * The device stamps every 8-byte word of pass n with PINWB_DMA_STAMP(pattern,
 * n), so a page mixing two passes is always recognised.
 */
static int rf_dma_start(int dev, int handle, unsigned int pattern, unsigned long long interval_us)
{
	struct pinwb_dma d = { .handle = handle, .pattern = pattern, .interval_us = interval_us,
			       .flags = PINWB_DMA_STAMP64 };

	return ioctl(dev, PINWB_IOC_DMA_START, &d) ? -errno : 0;
}

static long long rf_dma_stop(int dev, int handle)
{
	struct pinwb_dma d = { .handle = handle };

	return ioctl(dev, PINWB_IOC_DMA_STOP, &d) ? -errno : (long long)d.passes;
}

/* Waits (up to 2 s) until the device changed the first word of @map. */
static bool rf_wait_changed(volatile unsigned char *map, unsigned char from)
{
	volatile uint64_t *w = (volatile uint64_t *)map;
	uint64_t old;
	int i;

	memset(&old, from, sizeof(old));
	for (i = 0; i < 20000; i++) {
		if (*w != old)
			return true;
		usleep(100);
	}
	return false;
}

/*
 * The kernel's own short-term pinner: O_DIRECT reads from a block device
 * (bio_iov_iter_get_pages -> iov_iter_extract_pages, FOLL_PIN | FOLL_WRITE)
 * into the MAP_SHARED mapping. The source is a small loop device whose page
 * n holds bytes RF_PATTERN + n.
 */
static int rf_dio_source(char *dev, size_t devlen)
{
	static char cached[32];
	const char *img = RF_DIR "/dio-src.img";
	size_t psz = rf_psz();
	unsigned char *buf;
	int fd, i, ret;

	if (cached[0]) {
		snprintf(dev, devlen, "%s", cached);
		return 0;
	}
	mkdir(RF_DIR, 0755);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	buf = malloc(64 * psz);
	for (i = 0; i < 64; i++)
		memset(buf + i * psz, RF_PATTERN + i, psz);
	ret = write(fd, buf, 64 * psz) == (ssize_t)(64 * psz) ? 0 : -EIO;
	free(buf);
	close(fd);
	if (ret)
		return ret;
	/* Attached for the life of the process (its fd stays open). */
	ret = rf_loop_attach(img, cached, sizeof(cached));
	if (ret < 0) {
		cached[0] = '\0';
		return ret;
	}
	snprintf(dev, devlen, "%s", cached);
	return 0;
}

/* O_DIRECT read of RF_NPAGES pages, source pages [first, first + RF_NPAGES). */
static int rf_dio_read_into(void *map, int first)
{
	char dev[32];
	int fd, ret;
	ssize_t n, len = RF_NPAGES * rf_psz();

	ret = rf_dio_source(dev, sizeof(dev));
	if (ret)
		return ret;
	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, map, len, (off_t)first * rf_psz());
	ret = n == len ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	return ret;
}

struct rf_dio_loop {
	void *map;
	volatile bool stop;
	int reads, err;
};

static void *rf_dio_thread(void *arg)
{
	struct rf_dio_loop *l = arg;

	while (!l->stop && !l->err) {
		/* Alternate between two different source ranges. */
		l->err = rf_dio_read_into(l->map, (l->reads & 1) * RF_NPAGES);
		l->reads++;
	}
	return NULL;
}

/* --- one cell ------------------------------------------------------------------- */

static unsigned int rf_pin_flags(enum rf_pin pin)
{
	switch (pin) {
	case RF_LT_RW:
		return PINWB_PIN_LONGTERM | PINWB_PIN_WRITE;
	case RF_LT_RO:
		return PINWB_PIN_LONGTERM;
	case RF_ST_RW:
		return PINWB_PIN_WRITE;
	default:
		return 0;
	}
}

#define RF_BROKEN_IF(cond, ...) do {						\
	if (cond) {								\
		r->outcome = RF_BROKEN;						\
		snprintf(r->why, sizeof(r->why), __VA_ARGS__);			\
		goto out;							\
	}									\
} while (0)

/* Fills the file with RF_OLD bytes and writes them to disk. */
static int rf_fill_old(int fd)
{
	size_t len = RF_NPAGES * rf_psz();
	unsigned char *buf = malloc(len);
	int ret;

	memset(buf, RF_OLD, len);
	ret = pwrite(fd, buf, len, 0) == (ssize_t)len ? 0 : -EIO;
	free(buf);
	if (!ret && fsync(fd))
		ret = -errno;
	return ret;
}

static void rf_set_outcome_from_pages(struct rf_result *r, int rd, struct rf_pages p)
{
	if (rd)
		r->outcome = RF_CSUM, r->err = -rd;
	else if (p.torn)
		r->outcome = RF_TORN;
	else if (p.old)
		r->outcome = RF_LOST;
	else
		r->outcome = RF_OK;
}

/*
 * Runs cell (m->fs, pin, ev) in file @name of the mounted filesystem.
 *
 * RF_DURING: the device writes continuously (pinwb: every pinned page each
 *   pass; dio: O_DIRECT reads in a loop) while fsync writes the pages the
 *   pin's write fault dirtied; then what is on disk, up to RF_TRIALS times
 *   (the worst trial counts: a tear needs the device inside the IO).
 * RF_KEPT: fsync, the device writes and stops, pin kept, fsync, disk.
 * RF_UNPIN: as RF_KEPT, but unpin without PINWB_UNPIN_DIRTY, munmap, fsync,
 *   then remount (block filesystems) or drop_caches, then read the file.
 * An R/O long-term pin gives the device no write access (DMA_START EINVAL),
 * so its writer is the CPU, storing through the mapping.
 */
static void rf_cell(struct rf_mnt *m, enum rf_pin pin, enum rf_event ev, struct rf_result *r)
{
	size_t psz = rf_psz(), len = RF_NPAGES * psz;
	unsigned char *disk = malloc(len);
	unsigned char *map = MAP_FAILED;
	int csum0 = rf_klog_count(rf_klog_csum_lines);
	int warn0 = rf_klog_count(rf_klog_warn_lines);
	char path[128];
	int fd = -1, h = -1, rd, t, ntrials;
	struct rf_pages p;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/%s-%s", m->dir, rf_pin_name[pin], rf_event_name[ev]);
	rf_kmsg("pinwb-realfs: cell %s %s %s\n", rf_fs_desc[m->fs].name, rf_pin_name[pin],
		rf_event_name[ev]);
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	RF_BROKEN_IF(fd < 0, "open %s: %s", path, strerror(errno));
	RF_BROKEN_IF(rf_fill_old(fd), "fill: %s", strerror(errno));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	RF_BROKEN_IF(map == MAP_FAILED, "mmap: %s", strerror(errno));

	if (pin == RF_DIO) {
		struct rf_dio_loop l = { .map = map };
		pthread_t th;

		if (ev == RF_DURING) {
			/* Reads land in the mapping while fsync runs; they dirty at
			 * completion, so a last fsync after them writes them all. */
			RF_BROKEN_IF(pthread_create(&th, NULL, rf_dio_thread, &l), "thread");
			for (t = 0; (t < 20 || l.reads < 8) && t < 100000 && !l.err; t++)
				r->fsync_ret = fsync(fd) ? -errno : r->fsync_ret;
			l.stop = true;
			pthread_join(th, NULL);
			RF_BROKEN_IF(l.err, "O_DIRECT read into the mapping: %s", strerror(-l.err));
			r->passes = l.reads;
		} else {
			rd = rf_dio_read_into(map, 0);
			RF_BROKEN_IF(rd, "O_DIRECT read into the mapping: %s", strerror(-rd));
			r->passes = 1;
		}
		if (ev == RF_UNPIN) {
			/* No unpin to choose: bio_release_pages() always dirties a read. */
			munmap(map, len);
			map = MAP_FAILED;
			close(fd);
			fd = -1;
			rd = rf_is_block(m) ? rf_remount(m) : rf_drop_caches();
			RF_BROKEN_IF(rd, "remount: %s", strerror(-rd));
		} else {
			r->fsync_ret = fsync(fd) ? -errno : r->fsync_ret;
		}
		memset(disk, 0, len);
		rd = rf_read_disk(m, path, disk, len);
		p = rf_classify(disk, RF_NPAGES);
		rf_set_outcome_from_pages(r, rd, p);
		/* The last read's bytes, exactly. */
		if (r->outcome == RF_OK && p.first != RF_PATTERN && p.first != RF_PATTERN + RF_NPAGES)
			r->outcome = RF_LOST;
		goto out;
	}

	ntrials = ev == RF_DURING && pin != RF_LT_RO ? RF_TRIALS : 1;
	for (t = 0; t < ntrials; t++) {
		unsigned int pattern = RF_PATTERN;
		struct rf_result one = { 0 };

		if (t) {
			RF_BROKEN_IF(rf_fill_old(fd), "refill: %s", strerror(errno));
		}
		/* A write pin faults the pages in writable: they are dirty now. */
		h = pinwb_pin_range(m->dev, map, len, rf_pin_flags(pin), NULL);
		if (h < 0) {
			r->outcome = RF_REFUSED;
			r->err = -h;
			goto out;
		}
		if (pin == RF_LT_RO) {
			int e = rf_dma_start(m->dev, h, pattern, 0);

			RF_BROKEN_IF(e != -EINVAL, "DMA_START on an R/O pin: %d", e);
			if (ev == RF_DURING) {
				/* The device may not write: the cell is the refusal. */
				r->outcome = RF_REFUSED;
				r->err = EINVAL;
				goto out;
			}
			r->fsync_ret = fsync(fd) ? -errno : 0;
			memset(map, pattern, len);	/* the CPU is the writer */
		} else {
			if (ev != RF_DURING)
				r->fsync_ret = fsync(fd) ? -errno : 0;	/* clean again */
			RF_BROKEN_IF(rf_dma_start(m->dev, h, pattern, ev == RF_DURING ? 20 : 200),
				     "DMA_START: %s", strerror(errno));
			/* Its whole first pass: the last word of the last page. */
			RF_BROKEN_IF(!rf_wait_changed(map + len - 8, RF_OLD), "the device never wrote");
			if (ev == RF_DURING) {
				one.fsync_ret = fsync(fd) ? -errno : 0;
			} else {
				usleep(5000);
			}
			one.passes = rf_dma_stop(m->dev, h);
		}
		if (ev == RF_KEPT || ev == RF_DURING) {
			if (ev == RF_KEPT)
				one.fsync_ret = fsync(fd) ? -errno : 0;
			memset(disk, 0, len);
			rd = rf_read_disk(m, path, disk, len);
			p = rf_classify(disk, RF_NPAGES);
			rf_set_outcome_from_pages(&one, rd, p);
			pinwb_unpin_handle(m->dev, h, 0);
			h = -1;
		} else {
			pinwb_unpin_handle(m->dev, h, 0);
			h = -1;
			munmap(map, len);
			map = MAP_FAILED;
			one.fsync_ret = fsync(fd) ? -errno : 0;
			close(fd);
			fd = -1;
			rd = rf_is_block(m) ? rf_remount(m) : rf_drop_caches();
			RF_BROKEN_IF(rd, "remount: %s", strerror(-rd));
			memset(disk, 0, len);
			fd = open(path, O_RDONLY);
			RF_BROKEN_IF(fd < 0, "reopen: %s", strerror(errno));
			rd = pread(fd, disk, len, 0) == (ssize_t)len ? 0 : -errno;
			if (rf_fs_desc[m->fs].pinwbfs)
				rd = rf_read_disk(m, path, disk, len);
			p = rf_classify(disk, RF_NPAGES);
			rf_set_outcome_from_pages(&one, rd, p);
		}
		r->trials++;
		r->torn_trials += one.outcome == RF_TORN;
		r->csum_trials += one.outcome == RF_CSUM;
		r->lost_trials += one.outcome == RF_LOST;
		r->passes = one.passes;
		if (one.fsync_ret)
			r->fsync_ret = one.fsync_ret;
		if (one.outcome > r->outcome || !t) {
			if (!t || one.outcome > r->outcome) {
				r->outcome = one.outcome;
				r->err = one.err;
			}
		}
		/* Seen the worst a tear can show: enough. */
		if (r->outcome == RF_CSUM)
			break;
	}
out:
	if (h >= 0)
		pinwb_unpin_handle(m->dev, h, 0);
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
	free(disk);
	r->klog_csum = rf_klog_count(rf_klog_csum_lines) - csum0;
	r->klog_warn = rf_klog_count(rf_klog_warn_lines) - warn0;
}

#endif /* PINWB_REALFS_H */
