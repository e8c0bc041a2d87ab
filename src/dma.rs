// SPDX-License-Identifier: GPL-2.0

//! The simulated device: a DMA writer that keeps writing into the pages of a
//! pin through kernel mappings (`kmap_local_page`), never through the page
//! tables. It neither dirties the folios nor touches PTE dirty bits: exactly
//! what a device does, and why writeback cannot know.

use crate::{helpers::KmapLocal, stats::COUNTERS};
use kernel::{
    bindings, new_work,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Completion,
    },
    time::{delay::fsleep, Delta},
    workqueue::{self, impl_has_work, Work, WorkItem},
};

/// What a writer does, from `PINWB_IOC_DMA_START`.
#[derive(Clone, Copy)]
pub(crate) struct DmaParams {
    pub(crate) pattern: u32,
    /// Bytes per pass; 0 means every pinned page.
    pub(crate) bytes_per_pass: u64,
    pub(crate) interval_us: u64,
}

/// A running (or finished) writer.
///
/// # Invariants
///
/// `pages[..nr]` are pages held by the pin that owns this writer; the pin
/// stops the writer and waits for `done` before it releases them.
#[pin_data]
pub(crate) struct DmaWriter {
    #[pin]
    work: Work<DmaWriter>,
    #[pin]
    done: Completion,
    pages: *const *mut bindings::page,
    nr: usize,
    params: DmaParams,
    stop: Atomic<bool>,
    pub(crate) passes: Atomic<u64>,
    pub(crate) bytes: Atomic<u64>,
}

// SAFETY: The page pointers are valid until the owning pin has waited for `done` (type
// invariant), and writing into pinned pages from any thread is what a device does.
unsafe impl Send for DmaWriter {}
// SAFETY: As above; the shared state is atomics and a completion.
unsafe impl Sync for DmaWriter {}

impl_has_work! {
    impl HasWork<Self> for DmaWriter { self.work }
}

impl DmaWriter {
    /// Starts a writer on `pages`.
    ///
    /// # Safety
    ///
    /// The pages must stay held until [`DmaWriter::stop`] has returned.
    pub(crate) unsafe fn start(
        pages: &[*mut bindings::page],
        params: DmaParams,
    ) -> Result<Arc<Self>> {
        let (ptr, nr) = (pages.as_ptr(), pages.len());
        // INVARIANT: The caller keeps the pages until `stop` returned.
        let w = Arc::pin_init(
            pin_init!(DmaWriter {
                work <- new_work!("pinwb::DmaWriter::work"),
                done <- Completion::new(),
                pages: ptr,
                nr,
                params,
                stop: Atomic::new(false),
                passes: Atomic::new(0),
                bytes: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        // A freshly made work item cannot be queued already.
        let _ = workqueue::system_unbound().enqueue(w.clone());
        Ok(w)
    }

    /// Stops the writer and waits until it no longer touches the pages.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Relaxed);
        self.done.wait_for_completion();
    }

    /// Writes `len` bytes of `value` at byte `off` of the pinned pages.
    fn fill(&self, mut off: usize, mut len: usize, value: u8) {
        while len > 0 {
            let (index, in_page) = (off / PAGE_SIZE, off % PAGE_SIZE);
            let n = (PAGE_SIZE - in_page).min(len);
            // SAFETY: `index < nr` (callers keep `off + len` within the pin) and the page is
            // held (type invariant).
            let map = unsafe { KmapLocal::new(*self.pages.add(index)) };
            // SAFETY: `in_page + n <= PAGE_SIZE` bytes of the mapping.
            unsafe { core::ptr::write_bytes(map.as_ptr().add(in_page), value, n) };
            off += n;
            len -= n;
        }
    }
}

impl WorkItem for DmaWriter {
    type Pointer = Arc<DmaWriter>;

    fn run(this: Arc<DmaWriter>) {
        let total = this.nr * PAGE_SIZE;
        let per = match this.params.bytes_per_pass {
            0 => total,
            n => (n as usize).min(total),
        };
        let (mut off, mut pass) = (0usize, 0u64);
        while !this.stop.load(Relaxed) {
            let value = this.params.pattern.wrapping_add(pass as u32) as u8;
            // One pass may wrap around the end of the pin.
            let first = per.min(total - off);
            this.fill(off, first, value);
            this.fill(0, per - first, value);
            off = (off + per) % total;
            pass += 1;
            this.passes.store(pass, Relaxed);
            this.bytes.add(per as u64, Relaxed);
            COUNTERS.dma_bytes.add(per as u64, Relaxed);
            // At least a microsecond: the writer must yield its CPU.
            fsleep(Delta::from_micros(
                this.params.interval_us.clamp(1, i64::MAX as u64) as i64,
            ));
        }
        this.done.complete_all();
    }
}
