/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pinwb's trace events: pins, pinwbfs writeback decisions, the store's IO,
 * waits for pins, bounces and the simulated device. Documentation/pinwb.rst
 * ("Tracing") describes each event; src/trace.rs calls them from Rust.
 *
 * Out of tree, define_trace.h finds this file through TRACE_INCLUDE_PATH
 * "." and the -I$(src)/src of trace.o (Kbuild).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM pinwb

#if !defined(_PINWB_TRACE_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _PINWB_TRACE_EVENTS_H

#include <linux/pagemap.h>
#include <linux/tracepoint.h>

#include "pinwb_trace_values.h"

#define PINWB_KINDS						\
	EM(PINWB_TRACE_KIND_LONGTERM,	"longterm")		\
	EM(PINWB_TRACE_KIND_SHORTTERM,	"shortterm")		\
	EM(PINWB_TRACE_KIND_GET,	"get")			\
	EMe(PINWB_TRACE_KIND_MIRROR,	"mirror")

#define PINWB_POLICIES						\
	EM(PINWB_TRACE_POLICY_MAINLINE,	"mainline")		\
	EM(PINWB_TRACE_POLICY_NAIVE,	"naive")		\
	EM(PINWB_TRACE_POLICY_SKIP,	"skip")			\
	EM(PINWB_TRACE_POLICY_WAIT,	"wait")			\
	EM(PINWB_TRACE_POLICY_BOUNCE,	"bounce")		\
	EM(PINWB_TRACE_POLICY_FAIL,	"fail")			\
	EM(PINWB_TRACE_POLICY_AUTO,	"auto")			\
	EM(PINWB_TRACE_POLICY_DIRECT,	"direct")		\
	EMe(PINWB_TRACE_POLICY_DEFER,	"defer")

#define PINWB_PINNED						\
	EM(PINWB_TRACE_PINNED_NO,	"no")			\
	EM(PINWB_TRACE_PINNED_READONLY,	"readonly")		\
	EM(PINWB_TRACE_PINNED_SHORTTERM, "shortterm")		\
	EM(PINWB_TRACE_PINNED_LONGTERM,	"longterm")		\
	EMe(PINWB_TRACE_PINNED_FOREIGN,	"foreign")

#define PINWB_ACTIONS						\
	EM(PINWB_TRACE_ACTION_WRITE,	"write")		\
	EM(PINWB_TRACE_ACTION_SKIP,	"skip")			\
	EM(PINWB_TRACE_ACTION_BOUNCE,	"bounce")		\
	EM(PINWB_TRACE_ACTION_FAIL,	"fail")			\
	EM(PINWB_TRACE_ACTION_DIRECT,	"direct")		\
	EMe(PINWB_TRACE_ACTION_DEFER,	"defer")

#define PINWB_REDIRTY_REASONS					\
	EM(PINWB_TRACE_REDIRTY_PTE,	"pte")			\
	EMe(PINWB_TRACE_REDIRTY_PIN,	"pin")

/* First the enum values for userspace (the format files show numbers)... */
#undef EM
#undef EMe
#define EM(a, b)	TRACE_DEFINE_ENUM(a);
#define EMe(a, b)	TRACE_DEFINE_ENUM(a);

PINWB_KINDS
PINWB_POLICIES
PINWB_PINNED
PINWB_ACTIONS
PINWB_REDIRTY_REASONS

/* ...then their names for __print_symbolic(). */
#undef EM
#undef EMe
#define EM(a, b)	{ a, b },
#define EMe(a, b)	{ a, b }

/*
 * ino and index of a referenced folio that may have been truncated (0 for
 * the inode then), as the writeback events read them.
 */
#define pinwb_folio_ino(folio)						\
	({								\
		struct address_space *__m = folio_mapping(folio);	\
		__m && __m->host ? __m->host->i_ino : 0;		\
	})

/* A pin was made: PINWB_IOC_PIN succeeded. */
TRACE_EVENT(pinwb_pin,
	TP_PROTO(u32 handle, u64 start, u64 pages, u8 kind, bool writable),
	TP_ARGS(handle, start, pages, kind, writable),

	TP_STRUCT__entry(
		__field(u64,	start)
		__field(u64,	pages)
		__field(u32,	handle)
		__field(u8,	kind)
		__field(bool,	writable)
	),

	TP_fast_assign(
		__entry->start		= start;
		__entry->pages		= pages;
		__entry->handle		= handle;
		__entry->kind		= kind;
		__entry->writable	= writable;
	),

	TP_printk("handle=%u start=0x%llx pages=%llu kind=%s writable=%d",
		  __entry->handle, __entry->start, __entry->pages,
		  __print_symbolic(__entry->kind, PINWB_KINDS),
		  __entry->writable)
);

/* A pin's pages are given back: PINWB_IOC_UNPIN, close or a failed ioctl. */
TRACE_EVENT(pinwb_unpin,
	TP_PROTO(u32 handle, u64 start, u64 pages, u8 kind, bool dirty),
	TP_ARGS(handle, start, pages, kind, dirty),

	TP_STRUCT__entry(
		__field(u64,	start)
		__field(u64,	pages)
		__field(u32,	handle)
		__field(u8,	kind)
		__field(bool,	dirty)
	),

	TP_fast_assign(
		__entry->start		= start;
		__entry->pages		= pages;
		__entry->handle		= handle;
		__entry->kind		= kind;
		__entry->dirty		= dirty;
	),

	TP_printk("handle=%u start=0x%llx pages=%llu kind=%s dirty=%d",
		  __entry->handle, __entry->start, __entry->pages,
		  __print_symbolic(__entry->kind, PINWB_KINDS),
		  __entry->dirty)
);

/* The walk before writeback marked a clean folio dirty. */
TRACE_EVENT(pinwb_writeback_redirty,
	TP_PROTO(struct folio *folio, u8 pinned, u8 reason),
	TP_ARGS(folio, pinned, reason),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(u8,		pinned)
		__field(u8,		reason)
	),

	TP_fast_assign(
		__entry->ino		= pinwb_folio_ino(folio);
		__entry->index		= folio->index;
		__entry->pinned		= pinned;
		__entry->reason		= reason;
	),

	TP_printk("ino=%llu index=%lu pinned=%s reason=%s",
		  __entry->ino, __entry->index,
		  __print_symbolic(__entry->pinned, PINWB_PINNED),
		  __print_symbolic(__entry->reason, PINWB_REDIRTY_REASONS))
);

/*
 * What writeback did with one dirty folio that writeback_iter() handed it,
 * by the policy and the pin state (classified again after a wait).
 */
TRACE_EVENT(pinwb_writeback_folio,
	TP_PROTO(u64 ino, unsigned long index, bool integrity, u8 policy,
		 u8 pinned, u8 action),
	TP_ARGS(ino, index, integrity, policy, pinned, action),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(bool,		integrity)
		__field(u8,		policy)
		__field(u8,		pinned)
		__field(u8,		action)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->index		= index;
		__entry->integrity	= integrity;
		__entry->policy		= policy;
		__entry->pinned		= pinned;
		__entry->action		= action;
	),

	TP_printk("ino=%llu index=%lu sync=%s policy=%s pinned=%s action=%s",
		  __entry->ino, __entry->index,
		  __entry->integrity ? "all" : "none",
		  __print_symbolic(__entry->policy, PINWB_POLICIES),
		  __print_symbolic(__entry->pinned, PINWB_PINNED),
		  __print_symbolic(__entry->action, PINWB_ACTIONS))
);

/* Writeback copied a pinned folio to write the copy (policy bounce, auto). */
TRACE_EVENT(pinwb_bounce,
	TP_PROTO(u64 ino, unsigned long index),
	TP_ARGS(ino, index),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->index		= index;
	),

	TP_printk("ino=%llu index=%lu", __entry->ino, __entry->index)
);

/* Writeback sleeps until nobody pins a folio, for at most timeout_ms. */
TRACE_EVENT(pinwb_wait_start,
	TP_PROTO(struct folio *folio, long timeout_ms),
	TP_ARGS(folio, timeout_ms),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(long,		timeout_ms)
	),

	TP_fast_assign(
		__entry->ino		= pinwb_folio_ino(folio);
		__entry->index		= folio->index;
		__entry->timeout_ms	= timeout_ms;
	),

	TP_printk("ino=%llu index=%lu timeout_ms=%ld",
		  __entry->ino, __entry->index, __entry->timeout_ms)
);

/* The wait ended: 0 (unpinned), -ETIMEDOUT or -EINTR. */
TRACE_EVENT(pinwb_wait_end,
	TP_PROTO(struct folio *folio, int err, u64 waited_ns),
	TP_ARGS(folio, err, waited_ns),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(u64,		waited_us)
		__field(int,		err)
	),

	TP_fast_assign(
		__entry->ino		= pinwb_folio_ino(folio);
		__entry->index		= folio->index;
		__entry->waited_us	= div_u64(waited_ns, NSEC_PER_USEC);
		__entry->err		= err;
	),

	TP_printk("ino=%llu index=%lu err=%d waited_us=%llu",
		  __entry->ino, __entry->index, __entry->err,
		  __entry->waited_us)
);

/* A page of IO to the backing store was submitted: the folio, or its copy. */
TRACE_EVENT(pinwb_io_submit,
	TP_PROTO(u64 ino, unsigned long index, bool bounce),
	TP_ARGS(ino, index, bounce),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(bool,		bounce)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->index		= index;
		__entry->bounce		= bounce;
	),

	TP_printk("ino=%llu index=%lu source=%s", __entry->ino, __entry->index,
		  __entry->bounce ? "bounce" : "folio")
);

/* A page of IO completed: stored (err 0), or not (the folio stays dirty). */
TRACE_EVENT(pinwb_io_complete,
	TP_PROTO(u64 ino, unsigned long index, int err),
	TP_ARGS(ino, index, err),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(int,		err)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->index		= index;
		__entry->err		= err;
	),

	TP_printk("ino=%llu index=%lu err=%d", __entry->ino, __entry->index,
		  __entry->err)
);

/* The stored bytes do not match the crc32c taken at submission. */
TRACE_EVENT(pinwb_torn_write,
	TP_PROTO(u64 ino, unsigned long index, u32 crc, u32 stored),
	TP_ARGS(ino, index, crc, stored),

	TP_STRUCT__entry(
		__field(u64,		ino)
		__field(unsigned long,	index)
		__field(u32,		crc)
		__field(u32,		stored)
	),

	TP_fast_assign(
		__entry->ino		= ino;
		__entry->index		= index;
		__entry->crc		= crc;
		__entry->stored		= stored;
	),

	TP_printk("ino=%llu index=%lu crc=0x%08x stored=0x%08x",
		  __entry->ino, __entry->index, __entry->crc, __entry->stored)
);

/*
 * The simulated device wrote one pass (pass number, byte offset into the
 * pin, bytes) into a pin of `pages` pages, with the DMA_START pattern.
 */
TRACE_EVENT(pinwb_dma_pass,
	TP_PROTO(u32 pattern, u64 pass, u64 offset, u64 bytes, u64 pages),
	TP_ARGS(pattern, pass, offset, bytes, pages),

	TP_STRUCT__entry(
		__field(u64,	pass)
		__field(u64,	offset)
		__field(u64,	bytes)
		__field(u64,	pages)
		__field(u32,	pattern)
	),

	TP_fast_assign(
		__entry->pass		= pass;
		__entry->offset		= offset;
		__entry->bytes		= bytes;
		__entry->pages		= pages;
		__entry->pattern	= pattern;
	),

	TP_printk("pattern=0x%x pass=%llu offset=%llu bytes=%llu pages=%llu",
		  __entry->pattern, __entry->pass, __entry->offset,
		  __entry->bytes, __entry->pages)
);

#endif /* _PINWB_TRACE_EVENTS_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE pinwb_trace
#include <trace/define_trace.h>
