// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_store_cat FILE: write what pinwbfs's backing store holds for FILE
 * (up to its size) to stdout, bypassing the page cache.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <pinwb.h>

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	struct stat st;
	off_t off;
	int fd;

	if (argc != 2)
		return fprintf(stderr, "usage: %s FILE\n", argv[0]), 2;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		return perror(argv[1]), 1;
	for (off = 0; off < st.st_size; off += sizeof(buf)) {
		size_t len = st.st_size - off < (off_t)sizeof(buf) ? (size_t)(st.st_size - off) : sizeof(buf);
		struct pinwbfs_read_store r = { .offset = off, .len = len, .buf = (unsigned long)buf };
		long n = ioctl(fd, PINWBFS_IOC_READ_STORE, &r);

		if (n != (long)len)
			return perror("PINWBFS_IOC_READ_STORE"), 1;
		if (write(STDOUT_FILENO, buf, len) != (ssize_t)len)
			return perror("write"), 1;
	}
	return 0;
}
