// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb's trace events against its counters: the events of one fsync tell
 * the same story as the debugfs counters it moved, event for event, and the
 * story the test set up (which folios are pinned, how). Each test records
 * into a trace instance of its own, so a trace-cmd session running at the
 * same time neither disturbs it nor is disturbed.
 */
#include <pthread.h>
#include <time.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define TRACEFS		"/sys/kernel/tracing"
#define INSTANCE	TRACEFS "/instances/pinwb_trace_test"
#define MNT		"/tmp/pinwb_trace"

/*
 * The file: NR_PAGES dirty pages, the first LONG_PAGES of them pinned
 * long-term, the next SHORT_PAGES short-term, the rest not pinned.
 */
#define NR_PAGES	16
#define LONG_PAGES	4
#define SHORT_PAGES	2

/* The short-term pin is released this long after the fsync began. */
#define UNPIN_AFTER_MS	500

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The counters an fsync moves, as debugfs shows them. */
struct counters {
	unsigned long long pin_calls, pin_errors, unpin_calls;
	unsigned long long writepages_all, folios_written, skipped, bounced;
	unsigned long long waited, wait_timeouts, torn_writes;
	unsigned long long redirtied_pinned, redirtied_mapped, store_errors, dma_bytes;
};

static void read_counters(struct counters *c)
{
	c->pin_calls = pinwb_debugfs_u64("pin_calls");
	c->pin_errors = pinwb_debugfs_u64("pin_errors");
	c->unpin_calls = pinwb_debugfs_u64("unpin_calls");
	c->writepages_all = pinwb_debugfs_u64("writepages_all");
	c->folios_written = pinwb_debugfs_u64("folios_written");
	c->skipped = pinwb_debugfs_u64("skipped");
	c->bounced = pinwb_debugfs_u64("bounced");
	c->waited = pinwb_debugfs_u64("waited");
	c->wait_timeouts = pinwb_debugfs_u64("wait_timeouts");
	c->torn_writes = pinwb_debugfs_u64("torn_writes");
	c->redirtied_pinned = pinwb_debugfs_u64("redirtied_pinned");
	c->redirtied_mapped = pinwb_debugfs_u64("redirtied_mapped");
	c->store_errors = pinwb_debugfs_u64("store_errors");
	c->dma_bytes = pinwb_debugfs_u64("dma_bytes");
}

/* What an event line of the trace file says: its name, and its fields as text. */
struct event {
	char name[32];
	char *line;		/* the line, allocated */
	const char *fields;	/* in line */
};

/* Splits one line of the trace file: "comm-pid [cpu] flags ts: name: fields". */
static bool parse_event(const char *line, struct event *ev)
{
	const char *p = strstr(line, ": pinwb_");
	const char *end;

	if (!p)
		return false;
	p += 2;
	end = strchr(p, ':');
	if (!end || end - p >= (long)sizeof(ev->name))
		return false;
	memcpy(ev->name, p, end - p);
	ev->name[end - p] = '\0';
	ev->fields = end + 1;
	return true;
}

/* The value of field @key (e.g. "action") of @ev, as text up to the next space, in @buf. */
static const char *field(const struct event *ev, const char *key, char *buf, size_t size)
{
	size_t n = strlen(key), len;
	const char *p = ev->fields;

	while ((p = strstr(p, key))) {
		if (p[n] == '=' && p[-1] == ' ') {
			p += n + 1;
			len = strcspn(p, "\n ");
			if (len >= size)
				len = size - 1;
			memcpy(buf, p, len);
			buf[len] = '\0';
			return buf;
		}
		p += n;
	}
	buf[0] = '\0';
	return buf;
}

static unsigned long long field_u64(const struct event *ev, const char *key)
{
	char buf[32];

	return strtoull(field(ev, key, buf, sizeof(buf)), NULL, 0);
}

static bool field_is(const struct event *ev, const char *key, const char *value)
{
	char buf[32];

	return !strcmp(field(ev, key, buf, sizeof(buf)), value);
}

/* The instance's recorded events, one per line, after the "#" header. */
struct trace {
	char *text;
	struct event *ev;
	int n;
	/* From the header: equal unless events were lost. */
	unsigned long long in_buffer, written;
};

static void read_trace(struct __test_metadata *_metadata, struct trace *t)
{
	FILE *f = fopen(INSTANCE "/trace", "r");
	char *line = NULL;
	size_t cap = 0;
	int size = 0;

	ASSERT_NE(NULL, f);
	memset(t, 0, sizeof(*t));
	while (getline(&line, &cap, f) > 0) {
		struct event ev;
		char *copy;

		if (sscanf(line, "# entries-in-buffer/entries-written: %llu/%llu",
			   &t->in_buffer, &t->written) == 2)
			continue;
		if (line[0] == '#' || !parse_event(line, &ev))
			continue;
		if (t->n == size) {
			size = size ? 2 * size : 256;
			t->ev = realloc(t->ev, size * sizeof(*t->ev));
			ASSERT_NE(NULL, t->ev);
		}
		copy = strdup(line);
		ASSERT_NE(NULL, copy);
		parse_event(copy, &t->ev[t->n]);
		t->ev[t->n++].line = copy;
	}
	free(line);
	fclose(f);
	TH_LOG("%d pinwb events (%llu/%llu entries in the buffer/written)", t->n, t->in_buffer,
	       t->written);
	/* A lost event would make every count below wrong: say so first. */
	ASSERT_EQ(t->written, t->in_buffer);
}

static void free_trace(struct trace *t)
{
	int i;

	for (i = 0; i < t->n; i++)
		free(t->ev[i].line);
	free(t->ev);
}

/* Events named @name (e.g. "pinwb_bounce") whose field @key is @value (any if @key is NULL). */
static int count(const struct trace *t, const char *name, const char *key, const char *value)
{
	int i, n = 0;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->ev[i].name, name) && (!key || field_is(&t->ev[i], key, value)))
			n++;
	return n;
}

static unsigned long long sum(const struct trace *t, const char *name, const char *key)
{
	unsigned long long s = 0;
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->ev[i].name, name))
			s += field_u64(&t->ev[i], key);
	return s;
}

FIXTURE(trace)
{
	int dev, fd;
	size_t psz;
	char *map, *buf;
	ino_t ino;
	struct counters before, after;
	struct trace t;
};

FIXTURE_SETUP(trace)
{
	/* The test kernel's init mounts tracefs; trace-cmd would too. */
	if (access(TRACEFS "/events", F_OK))
		mount("tracefs", TRACEFS, "tracefs", 0, NULL);
	if (access(TRACEFS "/events/pinwb", F_OK))
		SKIP(return, "no pinwb events in " TRACEFS " (no CONFIG_TRACING, or no pinwb)");
	self->dev = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0)
		SKIP(return, "no " PINWB_DEV ": %s", strerror(errno));
	rmdir(INSTANCE);
	ASSERT_EQ(0, mkdir(INSTANCE, 0755));
	ASSERT_EQ(0, write_str(INSTANCE "/tracing_on", "0"));
	ASSERT_EQ(0, write_str(INSTANCE "/buffer_size_kb", "2048"));
	ASSERT_EQ(0, write_str(INSTANCE "/events/pinwb/enable", "1"));
	/* No flusher: the test's fsync is the only writeback. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 1000, 5000));
	self->psz = sysconf(_SC_PAGESIZE);
	self->buf = malloc(NR_PAGES * self->psz);
	ASSERT_NE(NULL, self->buf);
	self->fd = -1;
}

FIXTURE_TEARDOWN(trace)
{
	write_str(INSTANCE "/tracing_on", "0");
	write_str(INSTANCE "/events/pinwb/enable", "0");
	EXPECT_EQ(0, rmdir(INSTANCE));
	if (self->map)
		munmap(self->map, NR_PAGES * self->psz);
	if (self->fd >= 0) {
		close(self->fd);
		EXPECT_EQ(0, umount(MNT));
	}
	free(self->buf);
	close(self->dev);
	pinwb_writeback_knobs_default();
}

/*
 * Mounts pinwbfs with @opts and creates MNT/f: NR_PAGES written and synced,
 * then written again (dirty), and mapped shared for the pins.
 */
static void dirty_file(struct __test_metadata *_metadata, FIXTURE_DATA(trace) *self,
		       const char *opts)
{
	size_t len = NR_PAGES * self->psz;
	struct stat st;

	ASSERT_EQ(0, pinwbfs_mount(MNT, opts));
	self->fd = open(MNT "/f", O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, self->fd);
	memset(self->buf, 'a', len);
	ASSERT_EQ((ssize_t)len, pwrite(self->fd, self->buf, len, 0));
	ASSERT_EQ(0, fsync(self->fd));
	memset(self->buf, 'b', len);
	ASSERT_EQ((ssize_t)len, pwrite(self->fd, self->buf, len, 0));
	self->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, fstat(self->fd, &st));
	self->ino = st.st_ino;
}

struct unpinner {
	int dev, handle;
};

static void *unpin_later(void *arg)
{
	struct unpinner *u = arg;
	struct timespec ts = { UNPIN_AFTER_MS / 1000, (UNPIN_AFTER_MS % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	return (void *)(long)pinwb_unpin_handle(u->dev, u->handle, 0);
}

/*
 * One fsync under policy auto of a file with long-term pinned, short-term
 * pinned and plain dirty pages: the long-term pinned ones are bounced, the
 * fsync waits for the short-term pin and then writes them in place, the
 * others are written in place. Every count of events matches the counter
 * it shadows.
 */
TEST_F(trace, auto_fsync_matches_the_counters)
{
	struct unpinner u = { .dev = self->dev };
	pthread_t thread;
	void *unpinned;
	int longpin, i;

	dirty_file(_metadata, self, "policy=auto");
	ASSERT_EQ(0, write_str(INSTANCE "/trace", ""));
	read_counters(&self->before);
	ASSERT_EQ(0, write_str(INSTANCE "/tracing_on", "1"));

	longpin = pinwb_pin_range(self->dev, self->map, LONG_PAGES * self->psz,
				  PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, longpin);
	u.handle = pinwb_pin_range(self->dev, self->map + LONG_PAGES * self->psz,
				   SHORT_PAGES * self->psz, PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, u.handle);
	ASSERT_EQ(0, pthread_create(&thread, NULL, unpin_later, &u));
	EXPECT_EQ(0, fsync(self->fd));
	ASSERT_EQ(0, pthread_join(thread, &unpinned));
	EXPECT_EQ(NULL, unpinned);
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, longpin, 0));

	ASSERT_EQ(0, write_str(INSTANCE "/tracing_on", "0"));
	read_counters(&self->after);
	read_trace(_metadata, &self->t);

#define DELTA(name) ((long long)(self->after.name - self->before.name))
	/* One fsync, and every folio it handled is one of ours. */
	EXPECT_EQ(1, DELTA(writepages_all));
	EXPECT_EQ(NR_PAGES, count(&self->t, "pinwb_writeback_folio", NULL, NULL));
	for (i = 0; i < self->t.n; i++)
		if (strstr(self->t.ev[i].fields, " ino="))
			EXPECT_EQ((unsigned long long)self->ino, field_u64(&self->t.ev[i], "ino"));

	/* The events against the counters. */
	EXPECT_EQ(DELTA(pin_calls) - DELTA(pin_errors), count(&self->t, "pinwb_pin", NULL, NULL));
	EXPECT_EQ(DELTA(unpin_calls), count(&self->t, "pinwb_unpin", NULL, NULL));
	EXPECT_EQ(DELTA(folios_written),
		  count(&self->t, "pinwb_writeback_folio", "action", "write") +
		  count(&self->t, "pinwb_writeback_folio", "action", "bounce"));
	EXPECT_EQ(DELTA(skipped), count(&self->t, "pinwb_writeback_folio", "action", "skip"));
	EXPECT_EQ(DELTA(bounced), count(&self->t, "pinwb_bounce", NULL, NULL));
	EXPECT_EQ(DELTA(bounced), count(&self->t, "pinwb_writeback_folio", "action", "bounce"));
	EXPECT_EQ(DELTA(bounced), count(&self->t, "pinwb_io_submit", "source", "bounce"));
	EXPECT_EQ(DELTA(waited), count(&self->t, "pinwb_wait_end", NULL, NULL));
	EXPECT_EQ(DELTA(waited), count(&self->t, "pinwb_wait_start", NULL, NULL));
	EXPECT_EQ(DELTA(wait_timeouts), count(&self->t, "pinwb_wait_end", "err", "-110"));
	EXPECT_EQ(DELTA(torn_writes), count(&self->t, "pinwb_torn_write", NULL, NULL));
	EXPECT_EQ(DELTA(redirtied_pinned) + DELTA(redirtied_mapped),
		  count(&self->t, "pinwb_writeback_redirty", NULL, NULL));
	/* Every page submitted completed, stored or not. */
	EXPECT_EQ(count(&self->t, "pinwb_io_submit", NULL, NULL),
		  count(&self->t, "pinwb_io_complete", NULL, NULL));
	EXPECT_EQ(DELTA(folios_written), count(&self->t, "pinwb_io_complete", "err", "0"));
	EXPECT_EQ(DELTA(store_errors),
		  count(&self->t, "pinwb_io_complete", NULL, NULL) -
		  count(&self->t, "pinwb_io_complete", "err", "0"));

	/* The story: two pins, four bounces, one wait that the unpin ended, all written. */
	EXPECT_EQ(1, count(&self->t, "pinwb_pin", "kind", "longterm"));
	EXPECT_EQ(1, count(&self->t, "pinwb_pin", "kind", "shortterm"));
	EXPECT_EQ(LONG_PAGES, count(&self->t, "pinwb_writeback_folio", "pinned", "longterm"));
	EXPECT_EQ(LONG_PAGES, DELTA(bounced));
	EXPECT_EQ(1, count(&self->t, "pinwb_wait_end", "err", "0"));
	EXPECT_EQ(NR_PAGES, DELTA(folios_written));
	EXPECT_EQ(NR_PAGES, count(&self->t, "pinwb_writeback_folio", "policy", "auto"));
	EXPECT_EQ(NR_PAGES, count(&self->t, "pinwb_writeback_folio", "sync", "all"));
	for (i = 0; i < self->t.n; i++) {
		const struct event *ev = &self->t.ev[i];
		unsigned long long index = field_u64(ev, "index");

		if (!strcmp(ev->name, "pinwb_writeback_folio"))
			EXPECT_TRUE(field_is(ev, "action",
					     index < LONG_PAGES ? "bounce" : "write"));
		if (!strcmp(ev->name, "pinwb_wait_start"))
			EXPECT_EQ((unsigned long long)LONG_PAGES, index);
	}
#undef DELTA
	free_trace(&self->t);
}

/*
 * One fsync under policy naive while the simulated device writes into a
 * long-term pin: the folios are written in place under the device, some
 * torn, and the torn writes and device passes traced are those counted.
 */
TEST_F(trace, naive_fsync_under_dma_matches_the_counters)
{
	struct pinwb_dma dma = { .pattern = 'A' };
	volatile char *watch;
	int handle, i;

	/* IO long enough in flight for the device to change it. */
	ASSERT_EQ(0, pinwb_writeback_knobs(0, 3000, 5000));
	dirty_file(_metadata, self, "policy=naive");
	watch = self->map;
	ASSERT_EQ(0, write_str(INSTANCE "/trace", ""));
	read_counters(&self->before);
	ASSERT_EQ(0, write_str(INSTANCE "/tracing_on", "1"));

	handle = pinwb_pin_range(self->dev, self->map, LONG_PAGES * self->psz,
				 PINWB_PIN_LONGTERM | PINWB_PIN_WRITE, NULL);
	ASSERT_LT(0, handle);
	dma.handle = handle;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_START, &dma));
	/* Until the device's first bytes are visible (its work item may be slow to run). */
	for (i = 0; i < 20000 && *watch == 'b'; i++)
		usleep(500);
	ASSERT_NE('b', *watch);
	EXPECT_EQ(0, fsync(self->fd));
	memset(&dma, 0, sizeof(dma));
	dma.handle = handle;
	ASSERT_EQ(0, ioctl(self->dev, PINWB_IOC_DMA_STOP, &dma));
	ASSERT_EQ(0, pinwb_unpin_handle(self->dev, handle, 0));

	ASSERT_EQ(0, write_str(INSTANCE "/tracing_on", "0"));
	read_counters(&self->after);
	read_trace(_metadata, &self->t);

#define DELTA(name) ((long long)(self->after.name - self->before.name))
	EXPECT_EQ(1, DELTA(writepages_all));
	EXPECT_EQ(NR_PAGES, count(&self->t, "pinwb_writeback_folio", "action", "write"));
	EXPECT_EQ(LONG_PAGES, count(&self->t, "pinwb_writeback_folio", "pinned", "longterm"));
	EXPECT_EQ(DELTA(folios_written), count(&self->t, "pinwb_io_complete", "err", "0"));
	EXPECT_LT(0, DELTA(torn_writes));
	EXPECT_EQ(DELTA(torn_writes), count(&self->t, "pinwb_torn_write", NULL, NULL));
	for (i = 0; i < self->t.n; i++)
		if (!strcmp(self->t.ev[i].name, "pinwb_torn_write"))
			EXPECT_GT((unsigned long long)LONG_PAGES, field_u64(&self->t.ev[i], "index"));
	EXPECT_EQ((long long)dma.passes, count(&self->t, "pinwb_dma_pass", NULL, NULL));
	EXPECT_EQ(dma.bytes, sum(&self->t, "pinwb_dma_pass", "bytes"));
	EXPECT_EQ(DELTA(dma_bytes), (long long)sum(&self->t, "pinwb_dma_pass", "bytes"));
	TH_LOG("%lld torn writes, %llu device passes", DELTA(torn_writes),
	       (unsigned long long)dma.passes);
#undef DELTA
	free_trace(&self->t);
}

PINWB_HARNESS_MAIN(true)
