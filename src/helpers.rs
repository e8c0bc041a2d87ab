// SPDX-License-Identifier: GPL-2.0

//! Rust declarations of the C wrappers in `helpers.c` (static inlines and
//! macros that `kernel::bindings` cannot offer). See `helpers.h`.

use kernel::{bindings, ffi::c_void};

// `struct page` contains an empty struct on this configuration, which the lint
// flags; bindgen allows it the same way for the kernel's own declarations.
#[allow(improper_ctypes)]
extern "C" {
    /// `folio_maybe_dma_pinned(page_folio(page))`.
    pub(crate) fn pinwb_page_maybe_dma_pinned(page: *mut bindings::page) -> bool;
    /// `folio_test_anon(page_folio(page))`.
    pub(crate) fn pinwb_page_is_anon(page: *mut bindings::page) -> bool;
    /// `folio_pfn(page_folio(page))`.
    pub(crate) fn pinwb_page_folio_pfn(page: *mut bindings::page) -> usize;
    /// `put_page(page)`: only for `get_user_pages*()` references.
    pub(crate) fn pinwb_put_page(page: *mut bindings::page);
    /// `rlimit(RLIMIT_MEMLOCK)` of current, in bytes.
    pub(crate) fn pinwb_rlimit_memlock() -> usize;
    /// `xa_mk_value(v)`.
    pub(crate) fn pinwb_xa_mk_value(v: usize) -> *mut c_void;
    /// `xa_to_value(entry)`.
    pub(crate) fn pinwb_xa_to_value(entry: *const c_void) -> usize;
}
