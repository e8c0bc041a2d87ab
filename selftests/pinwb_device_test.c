// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/pinwb basics: the node, the version ioctl, unknown ioctls, debugfs,
 * and unload/reload.
 */
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "kselftest_harness.h"
#include "pinwb_test.h"

FIXTURE(dev)
{
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", PINWB_DEV, strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST(node_is_root_only_char_device)
{
	struct stat st;

	ASSERT_EQ(0, stat(PINWB_DEV, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600U, st.st_mode & 07777);
	EXPECT_EQ(0U, st.st_uid);
	/* A misc device: major 10. */
	EXPECT_EQ(10U, major(st.st_rdev));
}

TEST_F(dev, version_ioctl)
{
	EXPECT_EQ(PINWB_ABI_VERSION, ioctl(self->fd, PINWB_IOC_VERSION));
}

TEST_F(dev, unknown_ioctl_is_enotty)
{
	/* An unused number in pinwb's own range and a foreign one. */
	EXPECT_EQ(-1, ioctl(self->fd, _IO(PINWB_IOC_MAGIC, 0xff)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IOR('T', 0x01, int), 0));
	EXPECT_EQ(ENOTTY, errno);
}

TEST(debugfs_version)
{
	char buf[128], want[64];
	struct stat st;

	ASSERT_EQ(0, stat(PINWB_DEBUGFS, &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	ASSERT_LT(0, read_file(PINWB_DEBUGFS "/version", buf, sizeof(buf)));
	snprintf(want, sizeof(want), " abi %d\n", PINWB_ABI_VERSION);
	EXPECT_EQ(0, strncmp(buf, "pinwb ", 6)) TH_LOG("version: %s", buf);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("version: %s", buf);
}

/* An open file holds a reference on the module. */
TEST_F(dev, unload_refused_while_open)
{
	EXPECT_EQ(-EWOULDBLOCK, pinwb_unload());
	EXPECT_EQ(0, access(PINWB_DEV, F_OK));
}

TEST(unload_removes_everything_and_reload_works)
{
	int fd;

	ASSERT_EQ(0, pinwb_unload());
	EXPECT_EQ(-1, access(PINWB_DEV, F_OK));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, access(PINWB_DEBUGFS, F_OK));
	EXPECT_EQ(ENOENT, errno);

	ASSERT_EQ(0, pinwb_load());
	fd = open(PINWB_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(PINWB_ABI_VERSION, ioctl(fd, PINWB_IOC_VERSION));
	close(fd);
	EXPECT_EQ(0, access(PINWB_DEBUGFS "/version", R_OK));
}

PINWB_HARNESS_MAIN(false)
