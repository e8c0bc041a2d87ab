// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifetime and privilege: load/unload cycles leave nothing behind,
 * unload is refused while pinwb is in use, and only root gets in.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

#define MNT "/tmp/pinwb-lifetime"

/* Whether "pinwbfs" is a registered filesystem type. */
static bool fs_registered(void)
{
	char buf[4096];

	return read_file("/proc/filesystems", buf, sizeof(buf)) > 0 && strstr(buf, "\tpinwbfs\n");
}

/* Nothing of pinwb is left: device, class entry, debugfs, fs type, slab caches. */
static void expect_gone(struct __test_metadata *_metadata)
{
	char buf[1 << 16];

	EXPECT_NE(0, access(PINWB_DEV, F_OK));
	EXPECT_NE(0, access("/sys/class/misc/pinwb", F_OK));
	EXPECT_NE(0, access(PINWB_DEBUGFS, F_OK));
	EXPECT_FALSE(fs_registered());
	EXPECT_NE(0, access("/sys/module/pinwb", F_OK));
	if (read_file("/proc/slabinfo", buf, sizeof(buf)) > 0) {
		EXPECT_EQ(NULL, strstr(buf, "pinwb"));
	}
}

static void expect_present(struct __test_metadata *_metadata)
{
	EXPECT_EQ(0, access(PINWB_DEV, F_OK));
	EXPECT_EQ(0, access(PINWB_DEBUGFS "/version", F_OK));
	EXPECT_TRUE(fs_registered());
}

/* The harness's default timeout (30 s) is too short on a debug kernel. */
FIXTURE(slow)
{
};

FIXTURE_SETUP(slow)
{
}

FIXTURE_TEARDOWN(slow)
{
}

TEST_F_TIMEOUT(slow, load_unload_cycles_leave_nothing, 1200)
{
	const char *env = getenv("PINWB_CYCLES");
	int cycles = env ? atoi(env) : 100, i;

	for (i = 0; i < cycles; i++) {
		ASSERT_EQ(0, pinwb_unload()) TH_LOG("cycle %d", i);
		expect_gone(_metadata);
		ASSERT_EQ(0, pinwb_load()) TH_LOG("cycle %d", i);
		expect_present(_metadata);
	}
	TH_LOG("%d load/unload cycles", cycles);
}

TEST(unload_refused_while_in_use)
{
	int fd;

	/* A mounted pinwbfs holds the module. */
	mkdir(MNT, 0755);
	ASSERT_EQ(0, mount("none", MNT, "pinwbfs", 0, NULL));
	EXPECT_EQ(-EWOULDBLOCK, pinwb_unload());
	ASSERT_EQ(0, umount(MNT));
	/* An open file of /dev/pinwb holds it. */
	fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EWOULDBLOCK, pinwb_unload());
	/* ... even one on pinwbfs whose mount was detached. */
	ASSERT_EQ(0, mount("none", MNT, "pinwbfs", 0, NULL));
	close(fd);
	fd = open(MNT "/f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, umount2(MNT, MNT_DETACH));
	EXPECT_EQ(-EWOULDBLOCK, pinwb_unload());
	close(fd);
	/* Then it goes, and comes back. */
	ASSERT_EQ(0, pinwb_unload());
	expect_gone(_metadata);
	ASSERT_EQ(0, pinwb_load());
	expect_present(_metadata);
}

/* An unprivileged process gets neither the device, nor debugfs, nor a mount. */
TEST(root_only)
{
	struct stat st;
	int status;
	pid_t pid;

	ASSERT_EQ(0, stat(PINWB_DEV, &st));
	EXPECT_EQ(0600U, st.st_mode & 07777);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int bad = 0;

		if (setgid(65534) || setuid(65534))
			_exit(100);
		bad |= open(PINWB_DEV, O_RDWR) >= 0 || errno != EACCES;
		bad |= (open(PINWB_DEBUGFS "/policy", O_WRONLY) >= 0 || errno != EACCES) << 1;
		bad |= (open(PINWB_DEBUGFS "/pins", O_RDONLY) >= 0 || errno != EACCES) << 2;
		bad |= (mount("none", "/tmp", "pinwbfs", 0, NULL) == 0 || errno != EPERM) << 3;
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* bit 0: device, 1: knob, 2: pins listing, 3: mount */
	EXPECT_EQ(0, WEXITSTATUS(status));
}

PINWB_HARNESS_MAIN(false)
