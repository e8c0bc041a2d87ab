/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of the module's bindgen run for the C side (Kbuild:
 * src/helpers_generated.rs): pinwb's own C functions, and two exported
 * kernel functions that rust/bindings/bindings_helper.h does not include.
 */
#include <linux/crc32.h>
#include <linux/fs.h>
#include <linux/rmap.h>

#include "helpers.h"
#include "fs_glue.h"
#include "mirror.h"
/* __tracepoint_<event> and rust_do_trace_<event>() of pinwb's events. */
#include "pinwb_trace.h"
