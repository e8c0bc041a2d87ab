// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb's trace events (src/pinwb_trace.h), defined here once.
 *
 * CREATE_RUST_TRACE_POINTS also makes define_trace.h emit
 * rust_do_trace_<event>() for each event: the event's body without the
 * static branch, which src/trace.rs tests inline in Rust, so a disabled
 * event costs a patched-out jump and no call.
 */
#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "pinwb_trace.h"
