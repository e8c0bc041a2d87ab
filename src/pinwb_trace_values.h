/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The values that pinwb's trace events carry as numbers and print as names
 * (src/pinwb_trace.h). src/trace.rs maps the Rust enums onto them, so the
 * Rust discriminants may change without changing the events.
 *
 * Rust calls each event through rust_do_trace_<event>(), which
 * CREATE_RUST_TRACE_POINTS makes src/trace.c generate, behind a static
 * branch on __tracepoint_<event>.key. Including pinwb_trace.h declares both,
 * so a bindgen of that header (as rust/bindings/bindings_helper.h does for
 * Rust binder's events) can replace the declarations in src/trace.rs.
 */
#ifndef PINWB_TRACE_VALUES_H
#define PINWB_TRACE_VALUES_H

/* How a pin holds its pages (PINWB_IOC_PIN flags). */
enum pinwb_trace_kind {
	PINWB_TRACE_KIND_LONGTERM,	/* FOLL_PIN | FOLL_LONGTERM */
	PINWB_TRACE_KIND_SHORTTERM,	/* FOLL_PIN */
	PINWB_TRACE_KIND_GET,		/* get_user_pages() references */
	PINWB_TRACE_KIND_MIRROR,	/* nothing held: the device mirrors the range */
};

/* The writeback policy of the mount. */
enum pinwb_trace_policy {
	PINWB_TRACE_POLICY_MAINLINE,
	PINWB_TRACE_POLICY_NAIVE,
	PINWB_TRACE_POLICY_SKIP,
	PINWB_TRACE_POLICY_WAIT,
	PINWB_TRACE_POLICY_BOUNCE,
	PINWB_TRACE_POLICY_FAIL,
	PINWB_TRACE_POLICY_AUTO,
	PINWB_TRACE_POLICY_DIRECT,
	PINWB_TRACE_POLICY_DEFER,
};

/* Who pins a folio, as writeback classifies it. */
enum pinwb_trace_pinned {
	PINWB_TRACE_PINNED_NO,
	PINWB_TRACE_PINNED_READONLY,
	PINWB_TRACE_PINNED_SHORTTERM,
	PINWB_TRACE_PINNED_LONGTERM,
	PINWB_TRACE_PINNED_FOREIGN,
};

/*
 * What writeback did with a dirty folio. A wait is not an outcome: it is
 * traced on its own (pinwb_wait_start/end), and the decision after it is.
 */
enum pinwb_trace_action {
	PINWB_TRACE_ACTION_WRITE,	/* written in place */
	PINWB_TRACE_ACTION_SKIP,	/* left dirty */
	PINWB_TRACE_ACTION_BOUNCE,	/* a copy written, left dirty */
	PINWB_TRACE_ACTION_FAIL,	/* left dirty, the sync fails */
	PINWB_TRACE_ACTION_DIRECT,	/* copied to the store at once, left dirty */
	PINWB_TRACE_ACTION_DEFER,	/* left dirty until the unpin, no error */
};

/* Why the walk before writeback marked a clean folio dirty. */
enum pinwb_trace_redirty {
	PINWB_TRACE_REDIRTY_PTE,	/* a PTE of the folio was dirty */
	PINWB_TRACE_REDIRTY_PIN,	/* pinned for writing, at integrity sync */
};

#endif /* PINWB_TRACE_VALUES_H */
