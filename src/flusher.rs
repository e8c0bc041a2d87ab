// SPDX-License-Identifier: GPL-2.0

//! The cleaning (`WB_SYNC_NONE`) flusher of noop-bdi pinwbfs mounts.
//!
//! On a default mount the kernel's flusher never calls pinwbfs's
//! `writepages` (no writeback-capable bdi), so pinwb runs its own: a delayed
//! work item every `flush_period_ms` (debugfs; 0 pauses it), and an
//! immediate, synchronous pass when `flush_kick` is written. `mmwb` mounts
//! are left to the kernel's flusher.

use crate::{
    aops,
    fs::for_each_super,
    fs_data::sb_info,
    helpers::{pinwb_init_delayed_work, pinwb_mod_delayed_work, pinwb_queue_delayed_work},
    stats::TUNABLES,
};
use kernel::{
    bindings,
    sync::atomic::{Acquire, Relaxed, Release},
    time::msecs_to_jiffies,
    types::Opaque,
};

struct Flusher {
    dwork: Opaque<bindings::delayed_work>,
    /// Set once `dwork` is initialised.
    started: kernel::sync::atomic::Atomic<bool>,
    stopping: kernel::sync::atomic::Atomic<bool>,
}

// SAFETY: The delayed work is used through the workqueue API only, which is thread-safe.
unsafe impl Sync for Flusher {}

static FLUSHER: Flusher = Flusher {
    dwork: Opaque::uninit(),
    started: kernel::sync::atomic::Atomic::new(false),
    stopping: kernel::sync::atomic::Atomic::new(false),
};

/// One cleaning pass over every regular file of every default mount. A
/// file whose writeback lock is taken (a sync runs on it) is left for the
/// next pass; errors are recorded in each mapping (`mapping_set_error`) and
/// reach the next fsync.
fn flush_all() {
    for_each_super(|sb| {
        // SAFETY: `sb` is a live pinwbfs superblock (`for_each_super` holds its s_umount).
        let sbi = unsafe { sb_info(sb) };
        if sbi.mmwb {
            return;
        }
        sbi.shared.for_each_inode(Some(sb), |inode| {
            aops::sync_mapping(inode, 0, i64::MAX, false, None);
        });
    });
}

/// The delay until the next pass: the period, or a second while paused.
fn next_delay() -> usize {
    let period = TUNABLES.flush_period_ms.load(Relaxed);
    // At most MAX_FLUSH_PERIOD_MS (stats.rs): fits a u32.
    msecs_to_jiffies(if period > 0 { period as u32 } else { 1000 }) as usize
}

fn queue() {
    // SAFETY: The work was initialised in `start`.
    unsafe { pinwb_queue_delayed_work(FLUSHER.dwork.get(), next_delay()) };
}

/// `flush_period_ms` changed: the next pass comes one new period from now.
pub(crate) fn rearm() {
    if FLUSHER.started.load(Acquire) && !FLUSHER.stopping.load(Relaxed) {
        // SAFETY: The work was initialised in `start` (`started` says so);
        // `mod_delayed_work` re-queues a pending or idle work item with the new delay.
        unsafe { pinwb_mod_delayed_work(FLUSHER.dwork.get(), next_delay()) };
    }
}

/// # Safety
///
/// Called only by the workqueue, for `FLUSHER.dwork`.
unsafe extern "C" fn run(_work: *mut bindings::work_struct) {
    let period = TUNABLES.flush_period_ms.load(Relaxed);
    if period > 0 {
        flush_all();
    }
    if !FLUSHER.stopping.load(Relaxed) {
        // A paused flusher looks at the knob again every second.
        queue();
    }
}

/// Starts the periodic flusher.
///
/// # Safety
///
/// Called once, in module init, before [`stop`].
pub(crate) unsafe fn start() {
    // SAFETY: Called once before any use of the work item.
    unsafe { pinwb_init_delayed_work(FLUSHER.dwork.get(), Some(run)) };
    queue();
    FLUSHER.started.store(true, Release);
}

/// Stops the flusher; waits for a running pass to finish.
///
/// # Safety
///
/// Called once, at module exit, after [`start`].
pub(crate) unsafe fn stop() {
    FLUSHER.stopping.store(true, Relaxed);
    // SAFETY: The work was initialised in `start`; with `stopping` set it no longer requeues.
    unsafe { bindings::cancel_delayed_work_sync(FLUSHER.dwork.get()) };
}

/// `flush_kick`: one cleaning pass now, in the caller's context.
pub(crate) fn kick() {
    flush_all();
}
