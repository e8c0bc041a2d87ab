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
    fs::{for_each_inode, for_each_super, sb_info},
    helpers::{pinwb_init_delayed_work, pinwb_queue_delayed_work},
    stats::TUNABLES,
};
use kernel::{bindings, sync::atomic::Relaxed, types::Opaque};

struct Flusher {
    dwork: Opaque<bindings::delayed_work>,
    stopping: kernel::sync::atomic::Atomic<bool>,
}

// SAFETY: The delayed work is used through the workqueue API only, which is thread-safe.
unsafe impl Sync for Flusher {}

static FLUSHER: Flusher = Flusher {
    dwork: Opaque::uninit(),
    stopping: kernel::sync::atomic::Atomic::new(false),
};

/// One cleaning pass over every regular file of every default mount.
fn flush_all() {
    for_each_super(|sb| {
        // SAFETY: `sb` is a live pinwbfs superblock (`for_each_super` holds its s_umount).
        if unsafe { sb_info(sb) }.mmwb {
            return;
        }
        for_each_inode(Some(sb), |inode| {
            // SAFETY: `inode` is a live regular pinwbfs inode (held by `for_each_inode`).
            unsafe { aops::sync_mapping(inode, 0, i64::MAX, false) };
        });
    });
}

fn queue(ms: u64) {
    // SAFETY: Plain conversion.
    let delay = unsafe { bindings::__msecs_to_jiffies(ms.min(u64::from(u32::MAX)) as u32) };
    // SAFETY: The work was initialised in `start`.
    unsafe { pinwb_queue_delayed_work(FLUSHER.dwork.get(), delay as usize) };
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
        queue(if period > 0 { period } else { 1000 });
    }
}

/// Starts the periodic flusher.
///
/// # Safety
///
/// Called once, in module init, before [`stop`].
pub(crate) unsafe fn start() {
    // SAFETY: Called once before any use of the work item.
    unsafe { pinwb_init_delayed_work(FLUSHER.dwork.get(), run) };
    queue(TUNABLES.flush_period_ms.load(Relaxed).max(1));
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
