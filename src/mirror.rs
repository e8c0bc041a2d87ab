// SPDX-License-Identifier: GPL-2.0

//! The pinless device's mirror of a range (`PINWB_PIN_MIRROR`): an
//! `mmu_interval_notifier` on the range and `hmm_range_fault()` for every
//! page the simulated device writes, in C (`mirror.c`: 7.3's Rust binds
//! neither). The device writes a page only while its mirror of it is valid;
//! writeback's write-protect, reclaim, migration and munmap invalidate it
//! and wait for a write in progress. Nothing is pinned or referenced.

use crate::helpers::{pinwb_mirror_create, pinwb_mirror_destroy, pinwb_mirror_write};
use core::ptr::NonNull;
use kernel::{ffi::c_void, prelude::*};

/// A mirrored range of the current process's address space.
///
/// # Invariants
///
/// `ptr` came from `pinwb_mirror_create()` and is destroyed once, on drop.
pub(crate) struct Mirror {
    ptr: NonNull<c_void>,
    nr_pages: usize,
}

// SAFETY: The C object has its own lock for what the device and the notifier share; it may
// be used and destroyed from any thread.
unsafe impl Send for Mirror {}
// SAFETY: As above: `write` may run concurrently with invalidations, which is its purpose.
unsafe impl Sync for Mirror {}

impl Mirror {
    /// Mirrors `nr_pages` pages at `start` in the current process;
    /// `EOPNOTSUPP` without `CONFIG_HMM_MIRROR`.
    pub(crate) fn new(start: usize, nr_pages: usize) -> Result<Self> {
        // SAFETY: A plain call in process context; it returns a valid pointer or an ERR_PTR.
        let ptr = kernel::error::from_err_ptr(unsafe { pinwb_mirror_create(start, nr_pages) })?;
        // INVARIANT: Just created; an ERR_PTR was turned into an error above.
        Ok(Mirror {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            nr_pages,
        })
    }

    pub(crate) fn nr_pages(&self) -> usize {
        self.nr_pages
    }

    /// Writes `n` bytes at byte `off` of the range, within one page:
    /// `byte`, or 64-bit copies of `stamp`. Returns the invalidations of
    /// the range since the previous write (each made the device fault its
    /// pages in again); `EFAULT` once the range is unmapped or the process
    /// gone.
    pub(crate) fn write(
        &self,
        off: usize,
        n: usize,
        byte: u8,
        stamp: u64,
        stamp64: bool,
    ) -> Result<u32> {
        // SAFETY: `ptr` is live (type invariant); the C side checks that the bytes stay
        // within one page of the range.
        let ret = unsafe { pinwb_mirror_write(self.ptr.as_ptr(), off, n, byte, stamp, stamp64) };
        kernel::error::to_result(ret).map(|()| ret as u32)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // SAFETY: Created in `new`, destroyed once; the device that wrote through it has
        // stopped (its pin stops it first).
        unsafe { pinwb_mirror_destroy(self.ptr.as_ptr()) };
    }
}
