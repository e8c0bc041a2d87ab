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
//!    - at data-integrity sync, a clean folio that is long-term pinned (by
//!      pinwb or anyone) is marked dirty: a device may have written into it
//!      without dirtying it (see `policy::possibly_dirty`).
//! 2. The `writeback_iter()` loop over dirty folios, where the policy
//!    decides: write, skip, wait, bounce or fail (`policy::decide`).
//! 3. The IO: submitted folios stay unlocked under writeback for
//!    `io_delay_us`, then `store::complete` copies and checks them.

use crate::{
    folio_index::{wait_until, INDEX},
    fs::{inode_data, policy_of, sb_info, Ops},
    helpers::*,
    policy::{decide, possibly_dirty, Action, Pinned},
    stats::{COUNTERS, TUNABLES},
    store::{self, Io, Source},
};
use core::mem::MaybeUninit;
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_ulong, c_void},
    page::{Page, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::atomic::Relaxed,
    time::{Instant, Monotonic},
};

pub(crate) static AOPS: Ops<bindings::address_space_operations> =
    Ops(bindings::address_space_operations {
        read_folio: Some(read_folio),
        writepages: Some(writepages),
        dirty_folio: Some(bindings::filemap_dirty_folio),
        write_begin: Some(write_begin),
        write_end: Some(write_end),
        // SAFETY: All-zero is a valid `address_space_operations`.
        ..unsafe { core::mem::zeroed() }
    });

/// Who pins `folio`, as far as writeback can tell.
///
/// # Safety
///
/// The caller holds a reference on `folio`.
pub(crate) unsafe fn classify(folio: *mut bindings::folio) -> Pinned {
    // SAFETY: As the caller guarantees.
    unsafe {
        if !pinwb_folio_maybe_dma_pinned(folio) {
            return Pinned::No;
        }
        let pins = INDEX.lookup_folio(folio);
        if pins.longterm > 0 {
            Pinned::LongTerm
        } else if pins.shortterm > 0 {
            Pinned::ShortTerm
        } else {
            Pinned::Foreign
        }
    }
}

/// Fills a locked folio from the backing store (zeroes for holes).
///
/// # Safety
///
/// `folio` is a locked order-0 folio of `mapping`, a live pinwbfs file.
unsafe fn fill_from_store(mapping: *mut bindings::address_space, folio: *mut bindings::folio) {
    // SAFETY: As the caller guarantees.
    unsafe {
        let data = inode_data((*mapping).host);
        data.store
            .read(pinwb_folio_index(folio), pinwb_folio_page(folio));
        pinwb_folio_mark_uptodate(folio);
    }
}

/// # Safety
///
/// Called only by the VFS, as `address_space_operations::read_folio`, with its arguments, locking and reference rules.
unsafe extern "C" fn read_folio(_file: *mut bindings::file, folio: *mut bindings::folio) -> c_int {
    // SAFETY: The VFS passes a locked folio of one of our mappings.
    unsafe {
        fill_from_store(pinwb_folio_mapping(folio), folio);
        bindings::folio_unlock(folio);
    }
    0
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
    _len: c_uint,
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
        if !pinwb_folio_test_uptodate(folio) {
            fill_from_store(mapping, folio);
        }
        *foliop = folio;
    }
    0
}

/// `simple_write_end` (static in 7.3's fs/libfs.c); the folio is always
/// uptodate here.
/// # Safety
///
/// Called only by the VFS, as `address_space_operations::write_end`, with its arguments, locking and reference rules.
unsafe extern "C" fn write_end(
    _iocb: *const bindings::kiocb,
    mapping: *mut bindings::address_space,
    pos: i64,
    _len: c_uint,
    copied: c_uint,
    folio: *mut bindings::folio,
    _fsdata: *mut c_void,
) -> c_int {
    // SAFETY: VFS callback contract: the folio is locked and referenced by write_begin.
    unsafe {
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
                let want_pinned = possibly_dirty(integrity, pinned);
                if !mapped && !want_pinned {
                    continue;
                }
                pinwb_folio_lock(folio);
                if pinwb_folio_mapping(folio) == mapping && !pinwb_folio_test_dirty(folio) {
                    if mapped && folio_mkclean(folio) > 0 {
                        bindings::folio_mark_dirty(folio);
                        COUNTERS.redirtied_mapped.add(1, Relaxed);
                    } else if want_pinned {
                        bindings::folio_mark_dirty(folio);
                        COUNTERS.redirtied_pinned.add(1, Relaxed);
                    }
                }
                bindings::folio_unlock(folio);
            }
            pinwb_folio_batch_release(fb);
        }
    }
}

/// Waits (interruptibly) until nobody pins `folio`, at most until `wait_timeout_ms`
/// after `since`, the start of the writepages call: the timeout bounds the whole
/// sync, not each folio. The folio must not be locked: the pinner's unpin may
/// lock it.
///
/// # Safety
///
/// The caller holds a reference on `folio`.
unsafe fn wait_unpinned(folio: *mut bindings::folio, since: Instant<Monotonic>) -> Result {
    let start = Instant::<Monotonic>::now();
    let budget_ms = TUNABLES.wait_timeout_ms.load(Relaxed) as i64;
    let left_ms = (budget_ms - since.elapsed().as_millis()).clamp(0, i64::from(u32::MAX));
    // SAFETY: Plain conversion.
    let jiffies = unsafe { bindings::__msecs_to_jiffies(left_ms as u32) } as i64;
    // SAFETY: The folio stays referenced, as the caller guarantees.
    let ret = wait_until(
        || unsafe { classify(folio) } == Pinned::No,
        jiffies,
        left_ms > 0,
    );
    COUNTERS.waited.add(1, Relaxed);
    COUNTERS
        .wait_ns
        .add(start.elapsed().as_nanos() as u64, Relaxed);
    if ret == Err(ETIMEDOUT) {
        COUNTERS.wait_timeouts.add(1, Relaxed);
    }
    ret
}

/// Handles one folio of the writeback loop: locked and cleaned by
/// `writeback_iter`, and unlocked here in every case. Returns the error to
/// report for it, or 0.
///
/// # Safety
///
/// `folio` comes from `writeback_iter` for `mapping` and `wbc`.
unsafe fn write_folio(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
    folio: *mut bindings::folio,
    integrity: bool,
    since: Instant<Monotonic>,
    ios: &mut KVec<Io>,
) -> c_int {
    // SAFETY: `mapping` is a live pinwbfs mapping.
    let policy = unsafe { policy_of((*(*mapping).host).i_sb) };
    // SAFETY: `folio` is locked and referenced (by writeback_iter's batch).
    let mut pinned = unsafe { classify(folio) };
    if pinned != Pinned::No {
        COUNTERS.pinned_seen.add(1, Relaxed);
        if pinned == Pinned::Foreign {
            COUNTERS.foreign_seen.add(1, Relaxed);
        }
    }
    let mut action = decide(policy, integrity, pinned);
    if action == Action::Wait {
        // SAFETY: The folio stays referenced by the batch while we sleep unlocked.
        let waited = unsafe {
            bindings::folio_unlock(folio);
            let ret = wait_unpinned(folio, since);
            pinwb_folio_lock(folio);
            ret
        };
        // SAFETY: Locked again.
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
                // SAFETY: Locked; keep it dirty.
                unsafe {
                    bindings::folio_redirty_for_writepage(wbc, folio);
                    bindings::folio_unlock(folio);
                }
                return e.to_errno();
            }
        };
    }
    // SAFETY: Locked, referenced, order-0 (pinwbfs does not enable large folios).
    let index = unsafe { pinwb_folio_index(folio) };
    // Leaves the folio dirty, for a later writeback, and unlocks it.
    let keep_dirty = || {
        // SAFETY: Locked.
        unsafe {
            bindings::folio_redirty_for_writepage(wbc, folio);
            bindings::folio_unlock(folio);
        }
    };
    if ios.reserve(1, GFP_KERNEL).is_err() {
        keep_dirty();
        return ENOMEM.to_errno();
    }
    match action {
        Action::Write => {
            // SAFETY: Locked and referenced; writeback ends in `store::complete`.
            unsafe {
                if pinwb_folio_mapped(folio) {
                    // Write-protect the PTEs: a store after this IO faults and re-dirties.
                    folio_mkclean(folio);
                }
                pinwb_folio_start_writeback(folio);
                let _ = ios.push(Io::submit(index, Source::Folio(folio)), GFP_KERNEL);
                bindings::folio_unlock(folio);
            }
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
            // The device may still be writing: the folio stays dirty.
            keep_dirty();
            // SAFETY: A bounce source is owned by the IO.
            let _ = ios.push(
                unsafe { Io::submit(index, Source::Bounce(bounce)) },
                GFP_KERNEL,
            );
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
        Action::Fail => {
            keep_dirty();
            EBUSY.to_errno()
        }
        Action::Wait => unreachable!(),
    }
}

/// # Safety
///
/// Called only by the VFS, as `address_space_operations::writepages`, with its arguments, locking and reference rules.
unsafe extern "C" fn writepages(
    mapping: *mut bindings::address_space,
    wbc: *mut bindings::writeback_control,
) -> c_int {
    // SAFETY: VFS callback contract: `mapping` is a live pinwbfs file's, `wbc` valid.
    unsafe {
        let inode = (*mapping).host;
        let data = inode_data(inode);
        let integrity = (*wbc).sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL;
        if integrity {
            COUNTERS.writepages_all.add(1, Relaxed);
        } else {
            COUNTERS.writepages_none.add(1, Relaxed);
        }
        let _wb = data.wb_lock.lock();
        let (first, last) = if (*wbc).range_cyclic() != 0 {
            (0, usize::MAX)
        } else {
            (
                ((*wbc).range_start as u64 >> PAGE_SHIFT) as usize,
                ((*wbc).range_end as u64 >> PAGE_SHIFT) as usize,
            )
        };
        // The walk has nothing to do in cleaning writeback of an mmwb mount.
        let harvest = !sb_info((*inode).i_sb).mmwb;
        if harvest || integrity {
            prepass(mapping, first, last, integrity, harvest);
        }

        let since = Instant::<Monotonic>::now();
        let mut ios = KVec::new();
        let mut err: c_int = 0;
        let mut folio = core::ptr::null_mut();
        loop {
            folio = bindings::writeback_iter(mapping, wbc, folio, &mut err);
            if folio.is_null() {
                break;
            }
            let e = write_folio(mapping, wbc, folio, integrity, since, &mut ios);
            if e != 0 {
                err = e;
            }
        }
        let io = store::complete(&data.store, (*inode).i_ino, ios);
        if err == 0 {
            if let Err(e) = io {
                err = e.to_errno();
            }
        }
        if integrity && err != 0 {
            COUNTERS.sync_errors.add(1, Relaxed);
        }
        err
    }
}

/// Writeback of `[start, end]` of a pinwbfs file, as fsync (`integrity`) or
/// the flusher do on a noop-bdi mount, where the kernel never calls
/// `writepages`.
///
/// # Safety
///
/// `inode` is a live regular pinwbfs inode.
pub(crate) unsafe fn sync_mapping(
    inode: *mut bindings::inode,
    start: i64,
    end: i64,
    integrity: bool,
) -> c_int {
    // SAFETY: A zeroed writeback_control is valid; we fill what writepages reads.
    let mut wbc: bindings::writeback_control = unsafe { core::mem::zeroed() };
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
    unsafe { writepages((*inode).i_mapping, &mut wbc) }
}
