// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers of folios and pages at the kernel boundary, in the
//! style of `rust/kernel/`: a referenced [`Folio`], a [`LockedFolio`] that
//! unlocks on drop, [`UnderWriteback`] for a folio whose writeback pinwbfs
//! started, a [`FolioBatch`], and [`KmapLocal`] for the bytes of a page.
//! Raw folio pointers of writeback, truncation and the store stay here.
//!
//! pinwbfs folios are order-0 (the mapping never enables large folios), so a
//! folio is one page: `Folio::page` is its only page and a mapping of it is
//! `PAGE_SIZE` bytes.

use crate::helpers::*;
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};
use kernel::{
    bindings,
    ffi::c_ulong,
    page::Page,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};

/// A folio.
///
/// # Invariants
///
/// A `&Folio` exists only while someone holds a reference (or a pin) on
/// the folio for the whole borrow; an `ARef<Folio>` owns one.
#[repr(transparent)]
pub(crate) struct Folio(Opaque<bindings::folio>);

// SAFETY: `folio_get()` keeps a folio in memory until the matching `folio_put()`, and every
// folio is reference-counted.
unsafe impl AlwaysRefCounted for Folio {
    fn inc_ref(&self) {
        // SAFETY: The refcount is not zero: `&self` proves a reference (type invariant).
        unsafe { pinwb_folio_get(self.as_raw()) }
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns.
        unsafe { pinwb_folio_put(obj.cast().as_ptr()) }
    }
}

impl Folio {
    /// # Safety
    ///
    /// `ptr` is a folio that stays referenced (or pinned) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::folio) -> &'a Folio {
        // SAFETY: `Folio` is a transparent wrapper of `struct folio`.
        // INVARIANT: The folio stays referenced for `'a`, as the caller guarantees.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::folio {
        self.0.get()
    }

    /// The folio's page (`folio_page(folio, 0)`: the folio's first member).
    pub(crate) fn page(&self) -> *mut bindings::page {
        // SAFETY: The folio is valid (type invariant); no memory is read.
        unsafe { &raw mut (*self.as_raw()).__bindgen_anon_1.page }
    }

    /// `folio->index`. pinwbfs folios are never split or migrated, so it
    /// does not change while the folio is in the page cache.
    pub(crate) fn index(&self) -> usize {
        // SAFETY: The folio is valid (type invariant).
        unsafe {
            (*self.as_raw())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .__bindgen_anon_2
                .index
        }
    }

    /// `folio->mapping`, to compare with a mapping only: it goes null when
    /// truncation detaches the folio, unless the folio is locked.
    pub(crate) fn mapping(&self) -> *mut bindings::address_space {
        // SAFETY: The folio is valid (type invariant); a volatile read is READ_ONCE().
        unsafe {
            (&raw const (*self.as_raw()).__bindgen_anon_1.__bindgen_anon_1.mapping).read_volatile()
        }
    }

    /// `folio->private`, read once (pinwbfs keeps pin counts there:
    /// `folio_index.rs`).
    pub(crate) fn private(&self) -> usize {
        // SAFETY: The folio is valid (type invariant); a volatile read is READ_ONCE().
        unsafe {
            (&raw const (*self.as_raw())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .__bindgen_anon_3
                .private)
                .read_volatile() as usize
        }
    }

    /// `folio_maybe_dma_pinned()`: `FOLL_PIN` pins only; plain
    /// `get_user_pages()` references are invisible to it.
    pub(crate) fn maybe_dma_pinned(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { pinwb_folio_maybe_dma_pinned(self.as_raw()) }
    }

    /// `FOLL_PIN` pins as `folio_maybe_dma_pinned()` counts them (an upper
    /// estimate for order-0 folios: refcount / `GUP_PIN_COUNTING_BIAS`).
    pub(crate) fn dma_pins(&self) -> usize {
        // SAFETY: The folio is valid (type invariant).
        unsafe { pinwb_folio_dma_pins(self.as_raw()) }
    }

    /// `folio_mapped()`: some page table maps it.
    pub(crate) fn is_mapped(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { pinwb_folio_mapped(self.as_raw()) }
    }

    /// `folio_test_anon()`.
    pub(crate) fn is_anon(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { pinwb_folio_test_anon(self.as_raw()) }
    }

    /// `folio_test_uptodate()`.
    pub(crate) fn is_uptodate(&self) -> bool {
        // SAFETY: The folio is valid (type invariant).
        unsafe { pinwb_folio_test_uptodate(self.as_raw()) }
    }

    /// Locks the folio (may sleep).
    pub(crate) fn lock(&self) -> LockedFolio<'_> {
        // SAFETY: The folio is valid (type invariant); process context.
        unsafe { pinwb_folio_lock(self.as_raw()) };
        // INVARIANT: Locked just now, by us.
        LockedFolio { folio: self }
    }

    /// Maps the folio's page.
    pub(crate) fn map(&self) -> KmapLocal<'_> {
        // SAFETY: The page stays valid for the borrow (type invariant).
        unsafe { KmapLocal::new(self.page()) }
    }
}

/// A folio locked by the current task; unlocked when dropped.
///
/// # Invariants
///
/// `folio` is locked, and this value owns the lock.
pub(crate) struct LockedFolio<'a> {
    folio: &'a Folio,
}

impl<'a> LockedFolio<'a> {
    /// Takes over the lock of a folio handed over locked (by the VFS or
    /// `writeback_iter()`).
    ///
    /// # Safety
    ///
    /// `folio` is locked, and the caller hands its unlock to this value.
    pub(crate) unsafe fn from_locked(folio: &'a Folio) -> Self {
        // INVARIANT: As the caller guarantees.
        LockedFolio { folio }
    }

    /// Gives the lock back to the caller's caller, still held (e.g.
    /// `write_begin` returns the folio locked).
    pub(crate) fn into_locked(self) -> &'a Folio {
        let folio = self.folio;
        core::mem::forget(self);
        folio
    }

    /// Unlocks the folio; it stays referenced as before.
    pub(crate) fn unlock(self) -> &'a Folio {
        let folio = self.folio;
        drop(self);
        folio
    }

    /// `folio_test_dirty()`.
    pub(crate) fn is_dirty(&self) -> bool {
        // SAFETY: The folio is valid and locked (type invariants).
        unsafe { pinwb_folio_test_dirty(self.as_raw()) }
    }

    /// `folio_mark_uptodate()`.
    pub(crate) fn mark_uptodate(&self) {
        // SAFETY: The folio is valid and locked (type invariants).
        unsafe { pinwb_folio_mark_uptodate(self.as_raw()) }
    }

    /// `folio_mark_dirty()`.
    pub(crate) fn mark_dirty(&self) {
        // SAFETY: The folio is valid and locked (type invariants).
        unsafe { bindings::folio_mark_dirty(self.as_raw()) };
    }

    /// `folio_mkclean()`: write-protects the folio's PTEs; true if one of
    /// them was dirty.
    pub(crate) fn mkclean(&self) -> bool {
        // SAFETY: The folio is valid and locked, as folio_mkclean() requires.
        unsafe { folio_mkclean(self.as_raw()) > 0 }
    }

    /// `folio_clear_dirty_for_io()`.
    pub(crate) fn clear_dirty_for_io(&self) -> bool {
        // SAFETY: The folio is valid and locked (type invariants).
        unsafe { bindings::folio_clear_dirty_for_io(self.as_raw()) }
    }

    /// `folio_redirty_for_writepage()`: leaves a folio that `writeback_iter`
    /// cleaned dirty for a later writeback, and unlocks it.
    pub(crate) fn redirty(self, wbc: &mut bindings::writeback_control) {
        // SAFETY: The folio is valid and locked; `wbc` is the writeback's control.
        unsafe { bindings::folio_redirty_for_writepage(wbc, self.as_raw()) };
    }

    /// Write-protects the folio if it is mapped (a later store faults and
    /// dirties it again), starts its writeback, takes a reference for the
    /// IO, and unlocks it.
    pub(crate) fn start_writeback(self) -> UnderWriteback {
        if self.is_mapped() {
            self.mkclean();
        }
        // SAFETY: The folio is valid and locked, as folio_start_writeback() requires.
        unsafe { pinwb_folio_start_writeback(self.as_raw()) };
        // INVARIANT: Under writeback since just now; the `ARef` is the IO's reference.
        UnderWriteback {
            folio: self.folio.into(),
        }
    }
}

impl Deref for LockedFolio<'_> {
    type Target = Folio;

    fn deref(&self) -> &Folio {
        self.folio
    }
}

impl Drop for LockedFolio<'_> {
    fn drop(&mut self) {
        // SAFETY: Locked, and the lock is ours (type invariants).
        unsafe { bindings::folio_unlock(self.as_raw()) };
    }
}

/// A referenced folio under writeback that this value must end
/// ([`UnderWriteback::end`]): dropping it unended leaves the folio under
/// writeback for good, so `Batch` always completes its IOs.
///
/// # Invariants
///
/// `folio` is under writeback, started by whoever made this value. While
/// it is, truncation waits for it, so the folio keeps its mapping.
pub(crate) struct UnderWriteback {
    folio: ARef<Folio>,
}

impl UnderWriteback {
    pub(crate) fn folio(&self) -> &Folio {
        &self.folio
    }

    /// Ends the writeback; `redirty` first marks the folio dirty again
    /// (its data did not reach the store).
    pub(crate) fn end(self, redirty: bool) {
        // SAFETY: The folio is under writeback (type invariant), so it is in its mapping and
        // may be marked dirty without its lock, as end-of-IO handlers do; the writeback is
        // ended once, here, and the reference goes with `self.folio`.
        unsafe {
            if redirty {
                bindings::folio_mark_dirty(self.folio.as_raw());
            }
            bindings::folio_end_writeback(self.folio.as_raw());
        }
    }
}

/// A `struct folio_batch` on the stack, released on drop.
pub(crate) struct FolioBatch {
    fb: bindings::folio_batch,
}

impl FolioBatch {
    pub(crate) fn new() -> Self {
        // An all-zero batch is `folio_batch_init()`'s.
        FolioBatch {
            fb: pin_init::zeroed(),
        }
    }

    /// `filemap_get_folios()`: the next folios of `mapping` from `*index`
    /// to `last`; false when there are none. Releases the previous ones.
    ///
    /// # Safety
    ///
    /// `mapping` is a live mapping.
    pub(crate) unsafe fn fill(
        &mut self,
        mapping: *mut bindings::address_space,
        index: &mut usize,
        last: usize,
    ) -> bool {
        self.release();
        let mut i = *index as c_ulong;
        // SAFETY: `mapping` is live, as the caller guarantees; the batch is empty.
        let n =
            unsafe { bindings::filemap_get_folios(mapping, &mut i, last as c_ulong, &mut self.fb) };
        *index = i as usize;
        n > 0
    }

    /// The folios of the batch, each referenced by it.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Folio> {
        self.fb.folios[..usize::from(self.fb.nr)].iter().map(|&f| {
            // SAFETY: The batch holds a reference on each of its first `nr` folios until it
            // is released, which needs `&mut self`.
            unsafe { Folio::from_raw(f) }
        })
    }

    fn release(&mut self) {
        if self.fb.nr > 0 {
            // SAFETY: Drops the batch's references and empties it.
            unsafe { pinwb_folio_batch_release(&mut self.fb) };
        }
    }
}

impl Drop for FolioBatch {
    fn drop(&mut self) {
        self.release();
    }
}

/// A page mapped with `kmap_local_page()`, unmapped on drop.
///
/// # Invariants
///
/// `addr` is the local mapping of a page that stays valid (referenced or
/// pinned) for `'a`. It is not `Send`: local mappings belong to the task
/// and CPU that made them.
pub(crate) struct KmapLocal<'a> {
    addr: *mut u8,
    _page: PhantomData<&'a ()>,
}

impl KmapLocal<'_> {
    /// Maps `page`.
    ///
    /// # Safety
    ///
    /// `page` must stay valid (referenced or pinned) while the result lives.
    pub(crate) unsafe fn new(page: *mut bindings::page) -> Self {
        // SAFETY: `page` is valid, as the caller guarantees.
        let addr = unsafe { bindings::kmap_local_page(page) }.cast();
        // INVARIANT: The mapping is valid until `kunmap_local` in drop.
        KmapLocal {
            addr,
            _page: PhantomData,
        }
    }

    /// Maps a page of our own.
    pub(crate) fn of(page: &Page) -> KmapLocal<'_> {
        // SAFETY: `page` is owned and outlives the mapping.
        unsafe { KmapLocal::new(page.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.addr
    }

    /// crc32c of the whole page, as it is now (it may change concurrently:
    /// that is what the checksums are there to catch).
    pub(crate) fn crc(&self) -> u32 {
        // SAFETY: `addr` maps a whole page (type invariant); the C side reads it under
        // `data_race()`.
        unsafe { pinwb_page_crc32c(self.addr.cast()) }
    }

    /// Copies the whole page, as it is now, into `dst`.
    pub(crate) fn copy_to(&self, dst: &Page) {
        KmapLocal::of(dst).copy_page(self);
    }

    /// Copies all of `src` into the page.
    pub(crate) fn copy_from(&self, src: &Page) {
        self.copy_page(&KmapLocal::of(src));
    }

    fn copy_page(&self, src: &KmapLocal<'_>) {
        // SAFETY: Both map whole pages (type invariant), distinct ones: `copy_to` and
        // `copy_from` pair a mapped page with a page of our own. The C side copies under
        // `data_race()`.
        unsafe { pinwb_page_copy(self.addr.cast(), src.addr.cast()) };
    }

    /// Zeroes the page.
    pub(crate) fn zero(&self) {
        // SAFETY: `addr` maps a whole writable page (type invariant).
        unsafe { pinwb_page_zero(self.addr.cast()) };
    }
}

impl Drop for KmapLocal<'_> {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `kmap_local_page` and is unmapped once, in reverse order
        // of mapping since values drop in reverse order of creation.
        unsafe { bindings::kunmap_local(self.addr.cast()) };
    }
}
