// SPDX-License-Identifier: GPL-2.0

//! pinwbfs's `address_space_operations`, and writeback with the policies.
//!
//! `writepages` runs in three steps:
//!
//! 1. A walk over the resident folios of the range (`filemap_get_folios`):
//!    - a mapped, clean folio whose PTEs are dirty is marked dirty
//!      (`folio_mkclean()` harvests the PTE dirty bits). On a noop-bdi
//!      mapping nothing else would: a load followed by a store through
//!      `MAP_SHARED` never dirties the folio;
//!    - at data-integrity sync, under every policy but `mainline`, a clean
//!      folio pinned for writing (by pinwb or anyone) is marked dirty: a
//!      device may have written into it without dirtying it (see
//!      `policy::possibly_dirty`).
//! 2. The `writeback_iter()` loop over dirty folios, where the policy
//!    decides: write, skip, wait, bounce or fail (`policy::decide`). The
//!    policy is read once per call.
//! 3. The IO, in batches of at most `store::IO_BATCH` folios: submitted
//!    folios stay unlocked under writeback for `io_delay_us`, then
//!    `Batch::complete` stores and checks them. A batch is completed when it
//!    is full, before any wait for a pin, and at the end, so no folio stays
//!    under writeback while writeback sleeps on another one, and memory in
//!    flight is bounded whatever the file size.
//!
//! Lock order: `i_rwsem` → `invalidate_lock` → `wb_lock` → folio lock →
//! the store's mutex.

use crate::{
    folio::{Folio, FolioBatch, LockedFolio},
    folio_index::FolioIndex,
    fs_data::{Inode, Ops},
    helpers::{cond_resched, pinwb_folio_put, pinwb_i_size_write, pinwb_write_begin_get_folio},
    policy::{decide, possibly_dirty, Action, Pinned, Policy},
    stats::{COUNTERS, TUNABLES},
    store::{Batch, Io, Source, Store},
    trace,
};
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_void},
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::atomic::Relaxed,
    time::{Delta, Instant, Monotonic},
};

/// Regular files' address_space operations (`fs_glue.c` sets them).
#[export_name = "pinwbfs_aops"]
pub(crate) static AOPS: Ops<bindings::address_space_operations> =
    Ops(bindings::address_space_operations {
        read_folio: Some(read_folio),
        writepages: Some(writepages),
        dirty_folio: Some(bindings::filemap_dirty_folio),
        write_begin: Some(write_begin),
        write_end: Some(write_end),
        ..pin_init::zeroed()
    });

/// Fills a locked folio from the backing store (zeroes for holes) and
/// marks it uptodate; `EIO` if the stored page fails its checksum (the
/// folio then stays not uptodate).
fn fill_from_store(store: &Store, folio: &LockedFolio<'_>) -> Result {
    store.read(folio.index(), &folio.map())?;
    folio.mark_uptodate();
    Ok(())
}

/// # Safety
///
/// Called only by the VFS, as `address_space_operations::read_folio`, with its arguments, locking and reference rules.
unsafe extern "C" fn read_folio(_file: *mut bindings::file, folio: *mut bindings::folio) -> c_int {
    // SAFETY: The VFS passes a locked, referenced folio of one of our mappings and hands us
    // its unlock (truncation cannot detach it: it is locked, and the caller holds the
    // mapping's invalidate_lock shared, or i_rwsem).
    let (folio, inode) = unsafe {
        let folio = LockedFolio::from_locked(Folio::from_raw(folio));
        let inode = Inode::of_mapping(folio.mapping());
        (folio, inode)
    };
    match fill_from_store(&inode.data().store, &folio) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Like `simple_write_begin`, but a folio that is not uptodate is filled
/// from the backing store (it may have been reclaimed after writeback)
/// instead of zeroed around the write.
/// # Safety
///
/// Called only by the VFS, as `address_space_operations::write_begin`, with its arguments, locking and reference rules.
unsafe extern "C" fn write_begin(
    iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: i64,
    len: c_uint,
    foliop: *mut *mut bindings::folio,
    _fsdata: *mut *mut c_void,
) -> c_int {
    let index = (pos as u64 >> PAGE_SHIFT) as usize;
    // SAFETY: VFS callback contract: `mapping` is ours and locked by i_rwsem.
    let (folio, inode) = unsafe {
        (
            pinwb_write_begin_get_folio(iocb, mapping, index, len as usize),
            Inode::of_mapping(mapping),
        )
    };
    let folio = match kernel::error::from_err_ptr(folio) {
        // SAFETY: A folio from `write_begin_get_folio()` is locked and referenced; the
        // reference goes to the VFS with it, or is dropped below.
        Ok(f) => unsafe { LockedFolio::from_locked(Folio::from_raw(f)) },
        Err(e) => return e.to_errno(),
    };
    // `cow`: the folio's clean->dirty transition takes the block its write will need, so a
    // full budget fails this write with ENOSPC, not a writeback later.
    let reserve = || match &inode.sb_info().blocks {
        Some(b) if !folio.is_dirty() => inode.data().reserve(b, index).map(|_| ()),
        _ => Ok(()),
    };
    // A write of the whole page needs nothing of the old data (it may even be
    // unreadable: a failed checksum); `write_end` marks it uptodate once copied.
    let whole = pos as u64 % PAGE_SIZE as u64 == 0 && len as usize == PAGE_SIZE;
    let ready = reserve().and_then(|()| {
        if !whole && !folio.is_uptodate() {
            fill_from_store(&inode.data().store, &folio)
        } else {
            Ok(())
        }
    });
    {
        if let Err(e) = ready {
            let raw = folio.as_raw();
            drop(folio);
            // SAFETY: Drops `write_begin_get_folio()`'s reference, after the unlock.
            unsafe { pinwb_folio_put(raw) };
            return e.to_errno();
        }
    }
    // SAFETY: `foliop` is valid for a write (VFS contract); the folio goes out locked.
    unsafe { *foliop = folio.into_locked().as_raw() };
    0
}

/// `simple_write_end` (static in 7.3's fs/libfs.c).
/// # Safety
///
/// Called only by the VFS, as `address_space_operations::write_end`, with its arguments, locking and reference rules.
unsafe extern "C" fn write_end(
    _iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: i64,
    len: c_uint,
    copied: c_uint,
    folio: *mut bindings::folio,
    _fsdata: *mut c_void,
) -> c_int {
    // SAFETY: VFS callback contract: the folio is locked and referenced by write_begin; the
    // unlock is ours, the reference is dropped below.
    let (raw, folio, inode) = unsafe {
        (
            folio,
            LockedFolio::from_locked(Folio::from_raw(folio)),
            Inode::of_mapping(mapping),
        )
    };
    let ret = (|| {
        if !folio.is_uptodate() {
            // A whole-page write that `write_begin` did not fill: only a full copy makes
            // it uptodate; after a short one the caller retries (as `simple_write_end`).
            if copied < len {
                return 0;
            }
            folio.mark_uptodate();
        }
        let last = pos + i64::from(copied);
        if last > inode.size() {
            // SAFETY: The inode is live, and its i_rwsem held by the caller, as i_size_write()
            // requires (so i_size cannot change under us either).
            unsafe { pinwb_i_size_write(inode.as_raw(), last) };
        }
        folio.mark_dirty();
        copied as c_int
    })();
    drop(folio);
    // SAFETY: Drops write_begin's reference, after the unlock.
    unsafe { pinwb_folio_put(raw) };
    ret
}

/// Step 1 of writepages (see the module documentation). `harvest`: look
/// for PTE dirty bits (default mounts only: with `mmwb`, write-notify and
/// `folio_clear_dirty_for_io()` already track CPU stores).
///
/// The writeback lock of `inode` is held. Under `cow_fixup` a folio is
/// reserved for before it is marked dirty; `ENOSPC` if that failed for
/// some (they stay clean: nothing is lost, a later sync tries again).
fn prepass(
    index: &FolioIndex,
    inode: &Inode,
    first: usize,
    last: usize,
    integrity: bool,
    harvest: bool,
    policy: Policy,
) -> Result {
    let sbi = inode.sb_info();
    let fixup = sbi.blocks.as_ref().filter(|_| sbi.cow_fixup);
    let mut ret = Ok(());
    let mapping = inode.mapping();
    let mut batch = FolioBatch::new();
    let mut next = first;
    // SAFETY: The inode, and so its mapping, is live.
    while unsafe { batch.fill(mapping, &mut next, last) } {
        for folio in batch.iter() {
            let pinned = index.classify(folio);
            let mapped = harvest && folio.is_mapped();
            let want_pinned = possibly_dirty(policy, integrity, pinned);
            if !mapped && !want_pinned {
                continue;
            }
            let folio = folio.lock();
            if folio.mapping() == mapping && !folio.is_dirty() {
                // Before a PTE's dirty bit is taken (it could not be given back).
                let reserved_now = match fixup.map(|b| inode.data().reserve(b, folio.index())) {
                    Some(Err(e)) => {
                        ret = Err(e);
                        continue;
                    }
                    Some(Ok(new)) => new,
                    None => false,
                };
                if mapped && folio.mkclean() {
                    folio.mark_dirty();
                    COUNTERS.redirtied_mapped.add(1, Relaxed);
                    trace::redirty(&folio, pinned, trace::Redirty::Pte);
                } else if want_pinned {
                    folio.mark_dirty();
                    COUNTERS.redirtied_pinned.add(1, Relaxed);
                    trace::redirty(&folio, pinned, trace::Redirty::Pin);
                } else if let (true, Some(b)) = (reserved_now, fixup) {
                    inode.data().unreserve(b, folio.index());
                }
            }
        }
        cond_resched();
    }
    ret
}

/// Waits (interruptibly) until nobody pins `folio`, at most until
/// `deadline`: the budget of the whole sync. The folio must not be locked:
/// the pinner's unpin may lock it.
fn wait_unpinned(index: &FolioIndex, folio: &Folio, deadline: Instant<Monotonic>) -> Result {
    let start = Instant::<Monotonic>::now();
    trace::wait_start(folio, (deadline - start).as_millis().max(0));
    let ret = index.wait_until(|| index.classify(folio) == Pinned::No, deadline);
    COUNTERS.waited.add(1, Relaxed);
    COUNTERS
        .wait_ns
        .add(start.elapsed().as_nanos() as u64, Relaxed);
    if ret == Err(ETIMEDOUT) {
        COUNTERS.wait_timeouts.add(1, Relaxed);
    }
    trace::wait_end(folio, &ret, start);
    ret
}

/// One `writepages` call: what every folio of it shares.
struct Writeback<'a> {
    inode: &'a Inode,
    wbc: &'a mut bindings::writeback_control,
    index: &'a FolioIndex,
    store: &'a Store,
    integrity: bool,
    /// Read once per call: a debugfs write meanwhile applies to the next.
    policy: Policy,
    /// The end of the wait budget (`wait_timeout_ms` after the sync began).
    deadline: Instant<Monotonic>,
    batch: Batch,
    /// The first error of a completed batch.
    io_err: c_int,
}

impl Writeback<'_> {
    /// Completes the IO in flight (sleeps `io_delay_us`).
    fn complete(&mut self) {
        let inode = self.inode;
        let res = self
            .batch
            .complete(self.store, inode.ino(), |e| inode.set_error(e));
        if let Err(e) = res {
            if self.io_err == 0 {
                self.io_err = e.to_errno();
            }
        }
    }

    /// `cow`: the block that writing page `index` needs (a new one: the old
    /// one is freed when the store replaces it). Its reservation if it has
    /// one; otherwise it was dirtied where none was taken (counted in
    /// `unreserved_dirty`) and takes a free block now, or fails with
    /// `ENOSPC` (`enospc_at_writeback`): the error Chinner's model avoids.
    fn take_block(&self, index: usize) -> Result {
        let Some(blocks) = &self.inode.sb_info().blocks else {
            return Ok(());
        };
        if self.inode.data().consume_reservation(index) {
            return Ok(());
        }
        COUNTERS.unreserved_dirty.add(1, Relaxed);
        blocks.take().inspect_err(|_| {
            COUNTERS.enospc_at_writeback.add(1, Relaxed);
        })
    }

    /// `cow_fixup`: reserves for page `index`, which writeback keeps dirty
    /// (bounce, direct), before it does: the folio's next write then has its
    /// block. Returns the errno for the folio: `ENOSPC` if the budget is
    /// spent (it stays dirty either way).
    fn fixup(&self, index: usize) -> c_int {
        let sbi = self.inode.sb_info();
        match &sbi.blocks {
            Some(b) if sbi.cow_fixup => match self.inode.data().reserve(b, index) {
                Ok(_) => 0,
                Err(e) => e.to_errno(),
            },
            _ => 0,
        }
    }

    /// Adds a submitted IO; completes the batch when it is full.
    fn push(&mut self, io: Io) {
        self.batch.push(io);
        if self.batch.is_full() {
            self.complete();
        }
    }

    /// Handles one folio of the writeback loop, locked and cleaned by
    /// `writeback_iter` (which holds a reference on it until its next
    /// call), and unlocked here in every case. Returns the error to report
    /// for it, or 0.
    fn folio(&mut self, mut locked: LockedFolio<'_>) -> c_int {
        let (index, policy, integrity) = (self.index, self.policy, self.integrity);
        let mut pinned = index.classify_for_writeback(&locked);
        if pinned != Pinned::No {
            COUNTERS.pinned_seen.add(1, Relaxed);
            if pinned == Pinned::Foreign {
                COUNTERS.foreign_seen.add(1, Relaxed);
            }
        }
        let mut action = decide(policy, integrity, pinned);
        if action == Action::Wait {
            // Unlocked so that the pinner's unpin can lock it; `writeback_iter`'s batch keeps
            // it referenced while we sleep.
            let folio = locked.unlock();
            // Nothing stays under writeback while we sleep.
            self.complete();
            let waited = wait_unpinned(index, folio, self.deadline);
            locked = folio.lock();
            if locked.mapping() != self.inode.mapping() {
                // Truncated while we waited: nothing to write.
                return 0;
            }
            action = match waited {
                Ok(()) => {
                    // A DIRTY unpin marked it dirty again: we write it now.
                    locked.clear_dirty_for_io();
                    pinned = index.classify_for_writeback(&locked);
                    match decide(policy, integrity, pinned) {
                        Action::Wait => Action::Skip, // pinned again at once: leave it for later
                        a => a,
                    }
                }
                Err(e) => {
                    locked.redirty(self.wbc);
                    return e.to_errno();
                }
            };
        }
        let page_index = locked.index();
        let ino = self.inode.ino();
        trace::decision(ino, page_index, integrity, policy, pinned, action);
        if matches!(action, Action::Write | Action::Bounce | Action::Direct) {
            if let Err(e) = self.take_block(page_index) {
                locked.redirty(self.wbc);
                return e.to_errno();
            }
        }
        match action {
            Action::Write => {
                let io = Io::submit(page_index, Source::Folio(locked.start_writeback()));
                trace::io_submit(ino, page_index, false);
                self.push(io);
                0
            }
            Action::Bounce => {
                let Ok(bounce) = Page::alloc_page(GFP_KERNEL) else {
                    locked.redirty(self.wbc);
                    return ENOMEM.to_errno();
                };
                // The folio is locked, so no other writeback runs on it (a device may still
                // write into it: that is why we copy).
                locked.map().copy_to(&bounce);
                COUNTERS.bounced.add(1, Relaxed);
                COUNTERS.bounced_bytes.add(PAGE_SIZE as u64, Relaxed);
                trace::bounce(ino, page_index);
                // The device may still be writing: the folio stays dirty.
                let fixed = self.fixup(page_index);
                locked.redirty(self.wbc);
                let io = Io::submit(page_index, Source::Bounce(bounce));
                trace::io_submit(ino, page_index, true);
                self.push(io);
                fixed
            }
            Action::Direct => {
                // The folio is locked, so no other writeback runs on it; a device may
                // still write into it, and what the store gets is what the page holds now.
                let res = self.store.write_direct(page_index, &locked);
                // Registered like MAP_PRIVATE: the folio stays dirty.
                let fixed = self.fixup(page_index);
                locked.redirty(self.wbc);
                match res {
                    Ok(()) => {
                        COUNTERS.direct_writes.add(1, Relaxed);
                        COUNTERS.folios_written.add(1, Relaxed);
                        fixed
                    }
                    Err(e) => {
                        COUNTERS.store_errors.add(1, Relaxed);
                        self.inode.set_error(e);
                        e.to_errno()
                    }
                }
            }
            Action::Defer => {
                COUNTERS.deferred.add(1, Relaxed);
                locked.redirty(self.wbc);
                0
            }
            Action::Skip => {
                COUNTERS.skipped.add(1, Relaxed);
                locked.redirty(self.wbc);
                if integrity {
                    EBUSY.to_errno()
                } else {
                    0
                }
            }
            // `Wait` was resolved above; a second wait is never asked for.
            Action::Fail | Action::Wait => {
                locked.redirty(self.wbc);
                EBUSY.to_errno()
            }
        }
    }
}

/// `writepages` of `inode` with the wait budget ending at `deadline`, or
/// `wait_timeout_ms` from now.
fn do_writepages(
    inode: &Inode,
    wbc: &mut bindings::writeback_control,
    deadline: Option<Instant<Monotonic>>,
) -> c_int {
    let (mapping, data, sbi) = (inode.mapping(), inode.data(), inode.sb_info());
    let integrity = wbc.sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL;
    if integrity {
        COUNTERS.writepages_all.add(1, Relaxed);
    } else {
        COUNTERS.writepages_none.add(1, Relaxed);
    }
    // Cleaning writeback does not queue behind a sync that may be waiting on pins: the
    // folios stay dirty for the next pass.
    let _wb = if integrity {
        data.wb_lock.lock()
    } else {
        match data.wb_lock.try_lock() {
            Some(g) => g,
            None => return 0,
        }
    };
    let (first, last) = if wbc.range_cyclic() != 0 {
        (0, usize::MAX)
    } else {
        (
            (wbc.range_start as u64 >> PAGE_SHIFT) as usize,
            (wbc.range_end as u64 >> PAGE_SHIFT) as usize,
        )
    };
    let policy = sbi.policy();
    let index = &*sbi.shared.index;
    // The walk has nothing to do in cleaning writeback of an mmwb mount.
    let harvest = !sbi.mmwb;
    let mut prepass_err = 0;
    if harvest || integrity {
        if let Err(e) = prepass(index, inode, first, last, integrity, harvest, policy) {
            prepass_err = e.to_errno();
        }
    }
    let Ok(batch) = Batch::new() else {
        return ENOMEM.to_errno();
    };
    let mut wb = Writeback {
        inode,
        wbc,
        index,
        store: &data.store,
        integrity,
        policy,
        deadline: deadline.unwrap_or_else(sync_deadline),
        batch,
        io_err: 0,
    };
    let mut err: c_int = 0;
    let mut folio = core::ptr::null_mut();
    loop {
        // SAFETY: `mapping` is live, `wbc` its writeback's control; `folio` is null or the one
        // the previous call returned.
        folio = unsafe { bindings::writeback_iter(mapping, &raw mut *wb.wbc, folio, &mut err) };
        if folio.is_null() {
            break;
        }
        // SAFETY: `writeback_iter` returns its next folio locked, and referenced until its next
        // call; the unlock is ours.
        let locked = unsafe { LockedFolio::from_locked(Folio::from_raw(folio)) };
        let e = wb.folio(locked);
        if e != 0 {
            err = e;
        }
    }
    wb.complete();
    if err == 0 {
        err = wb.io_err;
    }
    if err == 0 && integrity {
        err = prepass_err;
    }
    if integrity && err != 0 {
        COUNTERS.sync_errors.add(1, Relaxed);
    }
    err
}

/// The end of the wait budget of a sync that starts now.
pub(crate) fn sync_deadline() -> Instant<Monotonic> {
    // At most MAX_WAIT_TIMEOUT_MS (stats.rs).
    let ms = TUNABLES.wait_timeout_ms.load(Relaxed) as i64;
    Instant::<Monotonic>::now() + Delta::from_millis(ms)
}

/// # Safety
///
/// Called only by the VFS, as `address_space_operations::writepages`, with its arguments, locking and reference rules.
unsafe extern "C" fn writepages(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    // SAFETY: VFS callback contract: `mapping` is a live pinwbfs file's, `wbc` valid and ours
    // for the call.
    unsafe { do_writepages(Inode::of_mapping(mapping), &mut *wbc, None) }
}

/// Writeback of `[start, end]` of a pinwbfs file, as fsync (`integrity`) or
/// the flusher do on a noop-bdi mount, where the kernel never calls
/// `writepages`. `deadline`: the end of the sync's wait budget (syncfs
/// shares one among its files); `None` starts one now.
pub(crate) fn sync_mapping(
    inode: &Inode,
    start: i64,
    end: i64,
    integrity: bool,
    deadline: Option<Instant<Monotonic>>,
) -> c_int {
    let mut wbc: bindings::writeback_control = pin_init::zeroed();
    wbc.sync_mode = if integrity {
        bindings::writeback_sync_modes_WB_SYNC_ALL
    } else {
        bindings::writeback_sync_modes_WB_SYNC_NONE
    };
    // Without this, WB_SYNC_NONE stops early (writeback_iter's contract).
    wbc.nr_to_write = isize::MAX;
    wbc.range_start = start;
    wbc.range_end = end;
    do_writepages(inode, &mut wbc, deadline)
}
