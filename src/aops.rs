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
    folio_index::{wait_until, INDEX},
    fs::{inode_data, policy_of, sb_info, Ops},
    helpers::*,
    policy::{decide, possibly_dirty, Action, Pinned, Policy},
    stats::{COUNTERS, TUNABLES},
    store::{Batch, Io, Source, Store},
};
use core::mem::MaybeUninit;
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_ulong, c_void},
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::atomic::Relaxed,
    time::{msecs_to_jiffies, Delta, Instant, Monotonic},
};

pub(crate) static AOPS: Ops<bindings::address_space_operations> =
    Ops(bindings::address_space_operations {
        read_folio: Some(read_folio),
        writepages: Some(writepages),
        dirty_folio: Some(bindings::filemap_dirty_folio),
        write_begin: Some(write_begin),
        write_end: Some(write_end),
        ..pin_init::zeroed()
    });

/// Who pins `folio`, as far as writeback can tell: pinwb's counts, and
/// whether the folio has more `FOLL_PIN` pins than pinwb's (someone
/// else's, which dominate every pinwb kind but a long-term pin for
/// writing). A folio with a long-term pin and a pin for writing counts as
/// long-term pinned for writing even if those are two different pins.
///
/// # Safety
///
/// The caller holds a reference on `folio`, a pinwbfs folio.
pub(crate) unsafe fn classify(folio: *mut bindings::folio) -> Pinned {
    // SAFETY: As the caller guarantees.
    unsafe {
        if !pinwb_folio_maybe_dma_pinned(folio) {
            return Pinned::No;
        }
        let pins = INDEX.lookup_folio(folio);
        let foreign = pinwb_folio_dma_pins(folio) > pins.total();
        if pins.longterm > 0 && pins.writable > 0 {
            Pinned::LongTerm
        } else if foreign || pins.total() == 0 {
            Pinned::Foreign
        } else if pins.writable > 0 {
            Pinned::ShortTerm
        } else {
            Pinned::ReadOnly
        }
    }
}

/// Fills a locked folio from the backing store (zeroes for holes) and
/// marks it uptodate; `EIO` if the stored page fails its checksum (the
/// folio then stays not uptodate).
///
/// # Safety
///
/// `folio` is a locked order-0 folio of `mapping`, a live pinwbfs file.
unsafe fn fill_from_store(
    mapping: *mut bindings::address_space,
    folio: *mut bindings::folio,
) -> Result {
    // SAFETY: As the caller guarantees.
    unsafe {
        let data = inode_data((*mapping).host);
        data.store
            .read(pinwb_folio_index(folio), pinwb_folio_page(folio))?;
        pinwb_folio_mark_uptodate(folio);
    }
    Ok(())
}

/// # Safety
///
/// Called only by the VFS, as `address_space_operations::read_folio`, with its arguments, locking and reference rules.
unsafe extern "C" fn read_folio(_file: *mut bindings::file, folio: *mut bindings::folio) -> c_int {
    // SAFETY: The VFS passes a locked folio of one of our mappings (truncation and
    // invalidation cannot detach it: the folio is locked and the caller holds the
    // mapping's invalidate_lock shared, or i_rwsem).
    unsafe {
        let ret = fill_from_store(pinwb_folio_mapping(folio), folio);
        bindings::folio_unlock(folio);
        match ret {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

/// Like `simple_write_begin`, but a folio that is not uptodate is filled
/// from the backing store (it may have been reclaimed after writeback)
/// instead of zeroed around the write.
/// # Safety
///
/// Called only by the VFS, as `address_space_operations::write_begin`, with its arguments, locking and reference rules.
unsafe extern "C" fn write_begin(
    _iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: i64,
    len: c_uint,
    foliop: *mut *mut bindings::folio,
    _fsdata: *mut *mut c_void,
) -> c_int {
    // SAFETY: VFS callback contract: `mapping` is ours and locked by i_rwsem.
    unsafe {
        let folio = pinwb_write_begin_get_folio(mapping, (pos as u64 >> PAGE_SHIFT) as usize);
        let folio = match kernel::error::from_err_ptr(folio) {
            Ok(f) => f,
            Err(e) => return e.to_errno(),
        };
        // A write of the whole page needs nothing of the old data (it may even be
        // unreadable: a failed checksum); `write_end` marks it uptodate once copied.
        let whole = pos as u64 % PAGE_SIZE as u64 == 0 && len as usize == PAGE_SIZE;
        if !whole && !pinwb_folio_test_uptodate(folio) {
            if let Err(e) = fill_from_store(mapping, folio) {
                bindings::folio_unlock(folio);
                pinwb_folio_put(folio);
                return e.to_errno();
            }
        }
        *foliop = folio;
    }
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
    // SAFETY: VFS callback contract: the folio is locked and referenced by write_begin.
    unsafe {
        if !pinwb_folio_test_uptodate(folio) {
            // A whole-page write that `write_begin` did not fill: only a full copy makes
            // it uptodate; after a short one the caller retries (as `simple_write_end`).
            if copied < len {
                bindings::folio_unlock(folio);
                pinwb_folio_put(folio);
                return 0;
            }
            pinwb_folio_mark_uptodate(folio);
        }
        let inode = (*mapping).host;
        let last = pos + i64::from(copied);
        // i_size cannot change under us: the caller holds i_rwsem.
        if last > pinwb_i_size_read(inode) {
            pinwb_i_size_write(inode, last);
        }
        bindings::folio_mark_dirty(folio);
        bindings::folio_unlock(folio);
        pinwb_folio_put(folio);
    }
    copied as c_int
}

/// Step 1 of writepages (see the module documentation). `harvest`: look
/// for PTE dirty bits (default mounts only: with `mmwb`, write-notify and
/// `folio_clear_dirty_for_io()` already track CPU stores).
///
/// # Safety
///
/// `mapping` is a live pinwbfs mapping whose writeback lock is held.
unsafe fn prepass(
    mapping: *mut bindings::address_space,
    first: usize,
    last: usize,
    integrity: bool,
    harvest: bool,
    policy: Policy,
) {
    let mut fbatch = MaybeUninit::<bindings::folio_batch>::uninit();
    let fb = fbatch.as_mut_ptr();
    let mut index: c_ulong = first as c_ulong;
    // SAFETY: `fb` is valid memory for a batch, initialised here.
    unsafe { pinwb_folio_batch_init(fb) };
    // SAFETY: `mapping` is live; each folio comes with a reference held by the batch.
    unsafe {
        while bindings::filemap_get_folios(mapping, &mut index, last as c_ulong, fb) > 0 {
            for i in 0..pinwb_folio_batch_count(fb) {
                let folio = pinwb_folio_batch_get(fb, i);
                let pinned = classify(folio);
                let mapped = harvest && pinwb_folio_mapped(folio);
                let want_pinned = possibly_dirty(policy, integrity, pinned);
                if !mapped && !want_pinned {
                    continue;
                }
                pinwb_folio_lock(folio);
                if pinwb_folio_mapping(folio) == mapping && !pinwb_folio_test_dirty(folio) {
                    if mapped && folio_mkclean(folio) > 0 {
                        bindings::folio_mark_dirty(folio);
                        COUNTERS.redirtied_mapped.add(1, Relaxed);
                        crate::trace::redirty(folio, pinned, crate::trace::Redirty::Pte);
                    } else if want_pinned {
                        bindings::folio_mark_dirty(folio);
                        COUNTERS.redirtied_pinned.add(1, Relaxed);
                        crate::trace::redirty(folio, pinned, crate::trace::Redirty::Pin);
                    }
                }
                bindings::folio_unlock(folio);
            }
            pinwb_folio_batch_release(fb);
            pinwb_cond_resched();
        }
    }
}

/// Waits (interruptibly) until nobody pins `folio`, at most until
/// `deadline`: the budget of the whole sync. The folio must not be locked:
/// the pinner's unpin may lock it.
///
/// # Safety
///
/// The caller holds a reference on `folio`.
unsafe fn wait_unpinned(folio: *mut bindings::folio, deadline: Instant<Monotonic>) -> Result {
    let start = Instant::<Monotonic>::now();
    let left_ms = (deadline - start).as_millis().max(0);
    // `left_ms` is at most MAX_WAIT_TIMEOUT_MS (stats.rs): fits a u32.
    let jiffies = msecs_to_jiffies(left_ms.min(i64::from(u32::MAX)) as u32);
    // SAFETY: The caller holds a reference on `folio`.
    unsafe { crate::trace::wait_start(folio, left_ms) };
    // SAFETY: The folio stays referenced, as the caller guarantees.
    let ret = wait_until(
        || unsafe { classify(folio) } == Pinned::No,
        jiffies as i64,
        left_ms > 0,
    );
    COUNTERS.waited.add(1, Relaxed);
    COUNTERS
        .wait_ns
        .add(start.elapsed().as_nanos() as u64, Relaxed);
    if ret == Err(ETIMEDOUT) {
        COUNTERS.wait_timeouts.add(1, Relaxed);
    }
    // SAFETY: As above.
    unsafe { crate::trace::wait_end(folio, &ret, start) };
    ret
}

/// One `writepages` call: what every folio of it shares.
struct Writeback<'a> {
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
    store: &'a Store,
    ino: u64,
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
        // SAFETY: `mapping` is live for the whole call; every IO was submitted for it.
        let res = unsafe { self.batch.complete(self.store, self.mapping, self.ino) };
        if let Err(e) = res {
            if self.io_err == 0 {
                self.io_err = e.to_errno();
            }
        }
    }

    /// Adds a submitted IO; completes the batch when it is full.
    fn push(&mut self, io: Io) {
        self.batch.push(io);
        if self.batch.is_full() {
            self.complete();
        }
    }

    /// Handles one folio of the writeback loop: locked and cleaned by
    /// `writeback_iter`, and unlocked here in every case. Returns the error
    /// to report for it, or 0.
    ///
    /// # Safety
    ///
    /// `folio` comes from `writeback_iter` for `mapping` and `wbc`, which
    /// holds a reference on it until its next call.
    unsafe fn folio(&mut self, folio: *mut bindings::folio) -> c_int {
        let (mapping, wbc, policy, integrity) =
            (self.mapping, self.wbc, self.policy, self.integrity);
        // SAFETY: `folio` is locked and referenced (by writeback_iter's batch).
        let mut pinned = unsafe { classify(folio) };
        if pinned != Pinned::No {
            COUNTERS.pinned_seen.add(1, Relaxed);
            if pinned == Pinned::Foreign {
                COUNTERS.foreign_seen.add(1, Relaxed);
            }
        }
        // Leaves the folio dirty, for a later writeback, and unlocks it.
        let keep_dirty = || {
            // SAFETY: Locked.
            unsafe {
                bindings::folio_redirty_for_writepage(wbc, folio);
                bindings::folio_unlock(folio);
            }
        };
        let mut action = decide(policy, integrity, pinned);
        if action == Action::Wait {
            // SAFETY: Locked; unlocked so that the pinner's unpin can lock it.
            unsafe { bindings::folio_unlock(folio) };
            // Nothing stays under writeback while we sleep.
            self.complete();
            // SAFETY: The folio stays referenced by writeback_iter's batch while we sleep.
            let waited = unsafe { wait_unpinned(folio, self.deadline) };
            // SAFETY: Referenced; locked again.
            unsafe { pinwb_folio_lock(folio) };
            // SAFETY: Locked.
            if unsafe { pinwb_folio_mapping(folio) } != mapping {
                // Truncated while we waited: nothing to write.
                // SAFETY: Locked.
                unsafe { bindings::folio_unlock(folio) };
                return 0;
            }
            action = match waited {
                Ok(()) => {
                    // A DIRTY unpin marked it dirty again: we write it now.
                    // SAFETY: Locked.
                    unsafe { bindings::folio_clear_dirty_for_io(folio) };
                    // SAFETY: Locked and referenced.
                    pinned = unsafe { classify(folio) };
                    match decide(policy, integrity, pinned) {
                        Action::Wait => Action::Skip, // pinned again at once: leave it for later
                        a => a,
                    }
                }
                Err(e) => {
                    keep_dirty();
                    return e.to_errno();
                }
            };
        }
        // SAFETY: Locked, referenced, order-0 (pinwbfs does not enable large folios).
        let index = unsafe { pinwb_folio_index(folio) };
        crate::trace::decision(self.ino, index, integrity, policy, pinned, action);
        match action {
            Action::Write => {
                // SAFETY: Locked and referenced; the IO takes its own reference, dropped
                // when `Batch::complete` ends the writeback.
                let io = unsafe {
                    if pinwb_folio_mapped(folio) {
                        // Write-protect the PTEs: a store after this IO faults and re-dirties.
                        folio_mkclean(folio);
                    }
                    pinwb_folio_start_writeback(folio);
                    pinwb_folio_get(folio);
                    let io = Io::submit(index, Source::Folio(folio));
                    bindings::folio_unlock(folio);
                    io
                };
                crate::trace::io_submit(self.ino, index, false);
                self.push(io);
                0
            }
            Action::Bounce => {
                let Ok(bounce) = Page::alloc_page(GFP_KERNEL) else {
                    keep_dirty();
                    return ENOMEM.to_errno();
                };
                // SAFETY: Both pages are valid; the folio is locked, so no other writeback
                // runs on it (a device may still write into it: that is why we copy).
                unsafe {
                    let from = KmapLocal::new(pinwb_folio_page(folio));
                    let _ = bounce.write_raw(from.as_ptr(), 0, PAGE_SIZE);
                }
                COUNTERS.bounced.add(1, Relaxed);
                COUNTERS.bounced_bytes.add(PAGE_SIZE as u64, Relaxed);
                crate::trace::bounce(self.ino, index);
                // The device may still be writing: the folio stays dirty.
                keep_dirty();
                // SAFETY: A bounce source is owned by the IO.
                let io = unsafe { Io::submit(index, Source::Bounce(bounce)) };
                crate::trace::io_submit(self.ino, index, true);
                self.push(io);
                0
            }
            Action::Skip => {
                COUNTERS.skipped.add(1, Relaxed);
                keep_dirty();
                if integrity {
                    EBUSY.to_errno()
                } else {
                    0
                }
            }
            // `Wait` was resolved above; a second wait is never asked for.
            Action::Fail | Action::Wait => {
                keep_dirty();
                EBUSY.to_errno()
            }
        }
    }
}

/// `writepages` with the wait budget ending at `deadline`, or
/// `wait_timeout_ms` from now.
///
/// # Safety
///
/// `mapping` is a live pinwbfs file's mapping; `wbc` is valid.
unsafe fn do_writepages(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
    deadline: Option<Instant<Monotonic>>,
) -> c_int {
    // SAFETY: As the caller guarantees.
    unsafe {
        let inode = (*mapping).host;
        let data = inode_data(inode);
        let integrity = (*wbc).sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL;
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
        let (first, last) = if (*wbc).range_cyclic() != 0 {
            (0, usize::MAX)
        } else {
            (
                ((*wbc).range_start as u64 >> PAGE_SHIFT) as usize,
                ((*wbc).range_end as u64 >> PAGE_SHIFT) as usize,
            )
        };
        let policy = policy_of((*inode).i_sb);
        // The walk has nothing to do in cleaning writeback of an mmwb mount.
        let harvest = !sb_info((*inode).i_sb).mmwb;
        if harvest || integrity {
            prepass(mapping, first, last, integrity, harvest, policy);
        }
        let Ok(batch) = Batch::new() else {
            return ENOMEM.to_errno();
        };
        let mut wb = Writeback {
            mapping,
            wbc,
            store: &data.store,
            ino: (*inode).i_ino,
            integrity,
            policy,
            deadline: deadline.unwrap_or_else(sync_deadline),
            batch,
            io_err: 0,
        };
        let mut err: c_int = 0;
        let mut folio = core::ptr::null_mut();
        loop {
            folio = bindings::writeback_iter(mapping, wbc, folio, &mut err);
            if folio.is_null() {
                break;
            }
            let e = wb.folio(folio);
            if e != 0 {
                err = e;
            }
        }
        wb.complete();
        if err == 0 {
            err = wb.io_err;
        }
        if integrity && err != 0 {
            COUNTERS.sync_errors.add(1, Relaxed);
        }
        err
    }
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
    // SAFETY: VFS callback contract: `mapping` is a live pinwbfs file's, `wbc` valid.
    unsafe { do_writepages(mapping, wbc, None) }
}

/// Writeback of `[start, end]` of a pinwbfs file, as fsync (`integrity`) or
/// the flusher do on a noop-bdi mount, where the kernel never calls
/// `writepages`. `deadline`: the end of the sync's wait budget (syncfs
/// shares one among its files); `None` starts one now.
///
/// # Safety
///
/// `inode` is a live regular pinwbfs inode.
pub(crate) unsafe fn sync_mapping(
    inode: *mut bindings::inode,
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
    // SAFETY: As the caller guarantees.
    unsafe { do_writepages((*inode).i_mapping, &mut wbc, deadline) }
}
