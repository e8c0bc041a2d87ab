// SPDX-License-Identifier: GPL-2.0

//! Rust declarations of the C side: the wrappers of `helpers.c` (static
//! inlines and macros that `kernel::bindings` cannot offer), the VFS glue of
//! `fs_glue.c`, and two exported functions whose headers 7.3's
//! `kernel::bindings` does not include (`crc32c`, `folio_mkclean`).
//!
//! bindgen generates them from the C headers (`helpers_bindgen.h`, Kbuild),
//! against the kernel's own types, so a prototype that changes on either
//! side fails the build instead of the call.

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unreachable_pub
)]
mod generated {
    #[allow(unused_imports)]
    use kernel::{bindings::*, ffi};
    include!("helpers_generated.rs");
}

pub(crate) use generated::*;

/// `cond_resched()`: lets others run in a long loop (process context).
pub(crate) fn cond_resched() {
    // SAFETY: Callable in any process context; a no-op where preemption is not allowed.
    unsafe { pinwb_cond_resched() }
}

/// `fatal_signal_pending(current)`.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: Reads the current task's pending signals; always valid.
    unsafe { pinwb_fatal_signal_pending() }
}
