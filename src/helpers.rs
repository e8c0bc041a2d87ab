// SPDX-License-Identifier: GPL-2.0

//! Rust declarations of the C wrappers in `helpers.c` (static inlines and
//! macros that `kernel::bindings` cannot offer). See `helpers.h`.

use kernel::{bindings, ffi::c_void};

use bindings::{address_space, folio, folio_batch, inode, page};

// `struct page` contains an empty struct on this configuration, which the lint
// flags; bindgen allows it the same way for the kernel's own declarations.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn pinwb_folio_test_anon(folio: *mut folio) -> bool;
    /// `put_page(page)`: only for `get_user_pages*()` references.
    pub(crate) fn pinwb_put_page(page: *mut bindings::page);
    /// `rlimit(RLIMIT_MEMLOCK)` of current, in bytes.
    pub(crate) fn pinwb_rlimit_memlock() -> usize;

    pub(crate) fn pinwb_folio_page(folio: *mut folio) -> *mut page;
    pub(crate) fn pinwb_page_folio(page: *mut page) -> *mut folio;
    /// `folio_get_private(folio)`.
    pub(crate) fn pinwb_folio_get_private(folio: *mut folio) -> *mut c_void;
    pub(crate) fn pinwb_folio_mapping(folio: *mut folio) -> *mut address_space;
    pub(crate) fn pinwb_folio_index(folio: *mut folio) -> usize;
    pub(crate) fn pinwb_folio_maybe_dma_pinned(folio: *mut folio) -> bool;
    pub(crate) fn pinwb_folio_lock(folio: *mut folio);
    pub(crate) fn pinwb_folio_test_uptodate(folio: *mut folio) -> bool;
    pub(crate) fn pinwb_folio_test_dirty(folio: *mut folio) -> bool;
    pub(crate) fn pinwb_folio_mapped(folio: *mut folio) -> bool;
    pub(crate) fn pinwb_folio_mark_uptodate(folio: *mut folio);
    pub(crate) fn pinwb_folio_put(folio: *mut folio);
    pub(crate) fn pinwb_folio_get(folio: *mut folio);
    /// `FOLL_PIN` pins of the folio as `folio_maybe_dma_pinned()` counts them (an upper
    /// estimate for order-0 folios: refcount / `GUP_PIN_COUNTING_BIAS`).
    pub(crate) fn pinwb_folio_dma_pins(folio: *mut folio) -> usize;
    /// `folio_start_writeback()` (a macro).
    pub(crate) fn pinwb_folio_start_writeback(folio: *mut folio);

    /// The first index `>= from` of `pages[..n]` whose folio belongs to a mapping with `aops`
    /// (or `n`); with a non-null `bits`, every such index is set in it.
    pub(crate) fn pinwb_pages_with_aops(
        pages: *const *mut page,
        n: usize,
        from: usize,
        aops: *const bindings::address_space_operations,
        bits: *mut usize,
    ) -> usize;

    /// Adds `delta` to `->private` of the folio of every page of `pages[..n]` whose bit is
    /// set in `bits`.
    pub(crate) fn pinwb_folios_private_add(
        pages: *const *mut page,
        n: usize,
        bits: *const usize,
        delta: isize,
    );

    /// For the folio of every page of `pages[..n]` whose bit is set in `bits`: lock it, wait
    /// for its writeback, unlock it.
    pub(crate) fn pinwb_folios_wait_writeback(
        pages: *const *mut page,
        n: usize,
        bits: *const usize,
    );

    pub(crate) fn pinwb_folio_batch_init(fbatch: *mut folio_batch);
    pub(crate) fn pinwb_folio_batch_count(fbatch: *mut folio_batch) -> u32;
    pub(crate) fn pinwb_folio_batch_get(fbatch: *mut folio_batch, i: u32) -> *mut folio;
    pub(crate) fn pinwb_folio_batch_release(fbatch: *mut folio_batch);

    /// `__filemap_get_folio(mapping, index, FGP_WRITEBEGIN, mapping_gfp_mask(mapping))`.
    pub(crate) fn pinwb_write_begin_get_folio(
        mapping: *mut address_space,
        index: usize,
    ) -> *mut folio;

    /// `INIT_DELAYED_WORK(dwork, func)`.
    pub(crate) fn pinwb_init_delayed_work(
        dwork: *mut bindings::delayed_work,
        func: unsafe extern "C" fn(*mut bindings::work_struct),
    );

    /// `queue_delayed_work(system_unbound_wq, dwork, delay)`.
    pub(crate) fn pinwb_queue_delayed_work(
        dwork: *mut bindings::delayed_work,
        delay: usize,
    ) -> bool;

    /// `mapping_set_stable_writes(mapping)`.
    pub(crate) fn pinwb_mapping_set_stable_writes(mapping: *mut address_space);
    /// `mapping_set_error(mapping, error)`: errseq for fsync and syncfs.
    pub(crate) fn pinwb_mapping_set_error(mapping: *mut address_space, error: i32);
    /// `filemap_invalidate_lock(mapping)`.
    pub(crate) fn pinwb_invalidate_lock(mapping: *mut address_space);
    /// `filemap_invalidate_unlock(mapping)`.
    pub(crate) fn pinwb_invalidate_unlock(mapping: *mut address_space);

    /// Dirty folios of `mapping` (`PAGECACHE_TAG_DIRTY`).
    pub(crate) fn pinwb_mapping_count_dirty(mapping: *mut address_space) -> usize;
    /// `file->f_mode & FMODE_READ`.
    pub(crate) fn pinwb_file_readable(file: *mut bindings::file) -> bool;

    /// `mod_delayed_work(system_unbound_wq, dwork, delay)`.
    pub(crate) fn pinwb_mod_delayed_work(dwork: *mut bindings::delayed_work, delay: usize) -> bool;
    /// `cond_resched()`.
    pub(crate) fn pinwb_cond_resched();
    /// `fatal_signal_pending(current)`.
    pub(crate) fn pinwb_fatal_signal_pending() -> bool;

    pub(crate) fn pinwb_i_size_read(inode: *const inode) -> i64;
    pub(crate) fn pinwb_i_size_write(inode: *mut inode, size: i64);
}

// Exported functions that 7.3's `kernel::bindings` does not include (their
// headers are not in rust/bindings/bindings_helper.h).
#[allow(improper_ctypes)]
extern "C" {
    /// linux/crc32.h.
    pub(crate) fn crc32c(crc: u32, p: *const c_void, len: usize) -> u32;
    /// linux/rmap.h; the folio must be locked.
    pub(crate) fn folio_mkclean(folio: *mut folio) -> i32;
}

/// A page mapped with `kmap_local_page()`, unmapped on drop.
///
/// # Invariants
///
/// `addr` is the local mapping of a page that the creator keeps alive (by a
/// reference or pin) for the lifetime of this value, which is not `Send`:
/// local mappings belong to the CPU and task that made them.
pub(crate) struct KmapLocal {
    addr: *mut u8,
}

impl KmapLocal {
    /// Maps `page`.
    ///
    /// # Safety
    ///
    /// `page` must stay valid (referenced or pinned) while the result lives.
    pub(crate) unsafe fn new(page: *mut page) -> Self {
        // SAFETY: `page` is valid, as the caller guarantees.
        let addr = unsafe { bindings::kmap_local_page(page) }.cast();
        // INVARIANT: The mapping is valid until `kunmap_local` in drop.
        KmapLocal { addr }
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.addr
    }

    /// crc32c of the whole page, as it is now (it may change concurrently:
    /// that is what the checksums are there to catch).
    pub(crate) fn crc(&self) -> u32 {
        // SAFETY: `addr` maps PAGE_SIZE bytes (type invariant); crc32c reads them.
        unsafe { crc32c(!0, self.addr.cast(), kernel::page::PAGE_SIZE) }
    }
}

impl Drop for KmapLocal {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `kmap_local_page` and is unmapped once, in reverse order
        // of mapping since values drop in reverse order of creation.
        unsafe { bindings::kunmap_local(self.addr.cast()) };
    }
}
