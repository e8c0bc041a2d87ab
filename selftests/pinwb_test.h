/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by pinwb's selftests.
 */
#ifndef PINWB_TEST_H
#define PINWB_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <pinwb.h>

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

#endif /* PINWB_TEST_H */
