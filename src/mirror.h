/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The pinless device's mirror of a range (src/mirror.c), for src/mirror.rs.
 * void * because the struct is private to mirror.c.
 */
#ifndef PINWB_MIRROR_H
#define PINWB_MIRROR_H

#include <linux/types.h>

/* Mirrors @nr_pages pages at @start of current's mm; an ERR_PTR on failure. */
void *pinwb_mirror_create(unsigned long start, unsigned long nr_pages);
/* Stops mirroring; no write may run. */
void pinwb_mirror_destroy(void *mirror);
/*
 * Writes @n bytes at byte @off of the range (within one page): @byte, or
 * @n / 8 copies of @stamp. Returns the invalidations of the range since the
 * previous call (each made the device fault its pages in again), or -errno (-EFAULT once the range is unmapped or the process
 * gone; -EBUSY when invalidations kept coming for HMM_RANGE_DEFAULT_TIMEOUT).
 */
int pinwb_mirror_write(void *mirror, unsigned long off, size_t n, u8 byte, u64 stamp,
		       bool stamp64);

#endif /* PINWB_MIRROR_H */
