/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * pinwb: pin user pages and watch what writeback does with them.
 *
 * The ioctl ABI of /dev/pinwb. The module takes every number and layout in
 * this file through bindgen at build time (src/defs.rs); nothing is copied.
 */
#ifndef _UAPI_LINUX_PINWB_H
#define _UAPI_LINUX_PINWB_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Bumped on every incompatible change of this header. */
#define PINWB_ABI_VERSION	1

/* 0xB9 is unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define PINWB_IOC_MAGIC		0xB9

/* Returns PINWB_ABI_VERSION (as the ioctl's return value, as KVM does). */
#define PINWB_IOC_VERSION	_IO(PINWB_IOC_MAGIC, 0x00)

#endif /* _UAPI_LINUX_PINWB_H */
