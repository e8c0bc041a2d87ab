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
#define PINWB_ABI_VERSION	4

/* 0xB9 is unassigned in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define PINWB_IOC_MAGIC		0xB9

/* Returns PINWB_ABI_VERSION (as the ioctl's return value, as KVM does). */
#define PINWB_IOC_VERSION	_IO(PINWB_IOC_MAGIC, 0x00)

/*
 * PINWB_IOC_PIN: pin every page that [addr, addr + len) touches, and keep the
 * pin, owned by the open file, until PINWB_IOC_UNPIN or the last close.
 */
#define PINWB_PIN_LONGTERM	(1U << 0)	/* FOLL_LONGTERM */
#define PINWB_PIN_WRITE		(1U << 1)	/* FOLL_WRITE */
#define PINWB_PIN_FAST		(1U << 2)	/* pin_user_pages_fast() */
#define PINWB_PIN_GET		(1U << 3)	/* get_user_pages*(): references, not FOLL_PIN */
/*
 * Pin nothing: the simulated device mirrors the range instead, as an HMM
 * device does (an mmu_interval_notifier, and hmm_range_fault() for each page
 * it writes). Alone or with PINWB_PIN_WRITE; EINVAL with the other flags,
 * EOPNOTSUPP in a kernel without CONFIG_HMM_MIRROR. nr_pages counts the
 * pages the range touches.
 */
#define PINWB_PIN_MIRROR	(1U << 4)
#define PINWB_PIN_FLAGS		(PINWB_PIN_LONGTERM | PINWB_PIN_WRITE | \
				 PINWB_PIN_FAST | PINWB_PIN_GET | PINWB_PIN_MIRROR)

struct pinwb_pin {
	__u64 addr;		/* in: first byte of the range (any alignment) */
	__u64 len;		/* in: length in bytes, > 0 */
	__u32 flags;		/* in: PINWB_PIN_* */
	__u32 handle;		/* out: non-zero, unique among this file's live pins */
	__u64 nr_pages;		/* out: pages pinned (every page the range touches) */
	__u64 reserved[4];	/* must be zero */
};

/* PINWB_IOC_UNPIN: release a pin. */
#define PINWB_UNPIN_DIRTY	(1U << 0)	/* mark the pages dirty: unpin_user_pages_dirty_lock(, true) */
#define PINWB_UNPIN_FLAGS	PINWB_UNPIN_DIRTY

struct pinwb_unpin {
	__u32 handle;		/* in */
	__u32 flags;		/* in: PINWB_UNPIN_* */
	__u64 reserved[2];	/* must be zero */
};

/* PINWB_IOC_QUERY: describe a live pin of this file. */
struct pinwb_query {
	__u32 handle;		/* in */
	__u32 flags;		/* out: the PINWB_PIN_* flags it was made with */
	__u64 addr;		/* out: as given to PINWB_IOC_PIN */
	__u64 len;		/* out: as given to PINWB_IOC_PIN */
	__u64 nr_pages;		/* out */
	__s32 owner_pid;	/* out: thread group id of the pinning process (init pid namespace) */
	__u32 reserved0;	/* must be zero */
	__u64 age_ns;		/* out: time since the pin was made */
	__u64 reserved[4];	/* must be zero */
};

/*
 * PINWB_IOC_PAGE_STATE: what pinwb and mm know about the folio that backs the
 * page at addr in the caller's address space (looked up without pinning).
 */
#define PINWB_PAGE_DMA_PINNED	(1U << 0)	/* folio_maybe_dma_pinned() */
#define PINWB_PAGE_ANON		(1U << 1)	/* anonymous memory */

struct pinwb_page_state {
	__u64 addr;		/* in */
	__u32 flags;		/* out: PINWB_PAGE_* */
	__u32 writable;		/* in: must be zero; out: those of pinwb's pins with FOLL_WRITE */
	__u64 longterm;		/* out: pinwb's FOLL_LONGTERM pins of pages of this folio */
	__u64 shortterm;	/* out: pinwb's other FOLL_PIN pins of pages of this folio */
	__u64 reserved[4];	/* must be zero */
};

/*
 * PINWB_IOC_DMA_START / _STOP: a simulated device writing into the pages of a
 * PINWB_PIN_WRITE pin of this file, through kernel mappings, never touching
 * PTEs or dirty bits. On a PINWB_PIN_MIRROR range it writes each page only
 * while its mirror of the page is valid, faulting it in for writing first,
 * and marks the folio dirty (as a device with its own dirty bits); it stops
 * at the first page it cannot fault in (the range unmapped, the process
 * gone). Pass n (from 0) writes bytes [n * bytes_per_pass, ...)
 * of the pinned pages (cyclically); then it sleeps interval_us. It stops on
 * DMA_STOP, unpin, close or rmmod, within one pass whatever the interval.
 *
 * Each byte of pass n is (pattern + n) & 0xff; with PINWB_DMA_STAMP64, each
 * aligned 8-byte word is PINWB_DMA_STAMP(pattern, n) instead (native byte
 * order), so that a page mixing two passes is always recognised (the byte
 * pattern repeats every 256 passes).
 */
#define PINWB_DMA_STAMP64	(1U << 0)
#define PINWB_DMA_FLAGS		PINWB_DMA_STAMP64
#define PINWB_DMA_STAMP(pattern, n) \
	(((__u64)(pattern) << 32) | ((__u64)(n) & 0xffffffffULL))
/* Longest pause between passes, in microseconds; EINVAL beyond. */
#define PINWB_DMA_MAX_INTERVAL_US	1000000

struct pinwb_dma {
	__u32 handle;		/* in */
	__u32 pattern;		/* in (START): first byte value, or stamp's high half */
	__u64 bytes_per_pass;	/* in (START): 0 = every pinned page, each pass;
				 * a multiple of 8 with PINWB_DMA_STAMP64 */
	__u64 interval_us;	/* in (START): pause between passes, at most
				 * PINWB_DMA_MAX_INTERVAL_US; below 10 the writer
				 * still sleeps 10 (it never spins) */
	__u64 passes;		/* out (STOP): passes completed */
	__u64 bytes;		/* out (STOP): bytes written */
	__u32 flags;		/* in (START): PINWB_DMA_* */
	__u32 reserved0;	/* must be zero */
	__u64 reserved[3];	/* must be zero */
};

/*
 * PINWBFS_IOC_READ_STORE, on a pinwbfs file: copy [offset, offset + len) of
 * the backing store (what writeback persisted; holes read as zeroes) to buf,
 * bypassing the page cache. Returns the number of bytes copied.
 */
struct pinwbfs_read_store {
	__u64 offset;
	__u64 len;
	__u64 buf;		/* user pointer */
	__u64 reserved[2];	/* must be zero */
};

#define PINWB_IOC_PIN		_IOWR(PINWB_IOC_MAGIC, 0x01, struct pinwb_pin)
#define PINWB_IOC_UNPIN		_IOW(PINWB_IOC_MAGIC, 0x02, struct pinwb_unpin)
#define PINWB_IOC_QUERY		_IOWR(PINWB_IOC_MAGIC, 0x03, struct pinwb_query)
#define PINWB_IOC_PAGE_STATE	_IOWR(PINWB_IOC_MAGIC, 0x04, struct pinwb_page_state)
#define PINWB_IOC_DMA_START	_IOW(PINWB_IOC_MAGIC, 0x05, struct pinwb_dma)
#define PINWB_IOC_DMA_STOP	_IOWR(PINWB_IOC_MAGIC, 0x06, struct pinwb_dma)
#define PINWBFS_IOC_READ_STORE	_IOW(PINWB_IOC_MAGIC, 0x40, struct pinwbfs_read_store)

#endif /* _UAPI_LINUX_PINWB_H */
