// SPDX-License-Identifier: GPL-2.0

//! The simulated device: a DMA writer that keeps writing into the pages of a
//! pin through kernel mappings (`kmap_local_page`), never through the page
//! tables. It neither dirties the folios nor touches PTE dirty bits: exactly
//! what a device does, and why writeback cannot know.
//!
//! On a mirror (`PINWB_PIN_MIRROR`, `mirror.rs`) it is the device that does
//! not pin: each page is faulted in for writing and written only while the
//! mirror is valid, and the folio is marked dirty.
//!
//! Each writer is a work item on `system_long_wq` (the queue for work that
//! runs long). Between passes it sleeps at least [`MIN_SLEEP_US`] (it never
//! spins), and a stop wakes it at once: `DMA_STOP`, unpin, close and rmmod
//! wait for at most one pass, whatever `interval_us`.

use crate::{
    defs,
    folio::KmapLocal,
    helpers::{cond_resched, pinwb_dma_fill, pinwb_dma_fill64},
    mirror::Mirror,
    stats::COUNTERS,
};
use kernel::{
    bindings, new_condvar, new_mutex, new_work,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, Mutex,
    },
    time::{delay::fsleep, msecs_to_jiffies, Delta},
    workqueue::{self, impl_has_work, Work, WorkItem},
};

/// Below this, `fsleep` would busy-wait (`udelay`): the writer sleeps at
/// least this long between passes.
const MIN_SLEEP_US: u64 = 10;

/// Up to this interval the writer sleeps with `fsleep` (at most a jiffy or
/// so at HZ=1000, which bounds the latency of a stop); beyond it on a
/// condition variable that a stop signals.
const SHORT_SLEEP_US: u64 = 2000;

/// Pages written between two `cond_resched()` calls.
const RESCHED_PAGES: usize = 256;

/// What a writer does, from `PINWB_IOC_DMA_START`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DmaParams {
    pub(crate) pattern: u32,
    /// Bytes per pass; 0 means every pinned page.
    pub(crate) bytes_per_pass: u64,
    pub(crate) interval_us: u64,
    /// 64-bit stamps (`PINWB_DMA_STAMP64`) instead of the byte pattern.
    pub(crate) stamp64: bool,
}

impl DmaParams {
    /// Validates a `PINWB_IOC_DMA_START` argument (`EINVAL` for bad input).
    pub(crate) fn from_args(args: &defs::pinwb_dma) -> Result<Self> {
        if args.reserved0 != 0
            || args.reserved.iter().any(|&x| x != 0)
            || args.passes != 0
            || args.bytes != 0
            || args.flags & !defs::PINWB_DMA_FLAGS != 0
            || args.interval_us > u64::from(defs::PINWB_DMA_MAX_INTERVAL_US)
        {
            return Err(EINVAL);
        }
        let stamp64 = args.flags & defs::PINWB_DMA_STAMP64 != 0;
        if stamp64 && args.bytes_per_pass % 8 != 0 {
            return Err(EINVAL);
        }
        Ok(DmaParams {
            pattern: args.pattern,
            bytes_per_pass: args.bytes_per_pass,
            interval_us: args.interval_us,
            stamp64,
        })
    }

    /// The 64-bit stamp of pass `n` (`PINWB_DMA_STAMP`).
    pub(crate) fn stamp(&self, n: u64) -> u64 {
        (u64::from(self.pattern) << 32) | (n & 0xffff_ffff)
    }
}

/// What a writer writes into.
pub(crate) enum Target<'a> {
    /// The pages of a pin.
    Pages(&'a [*mut bindings::page]),
    /// A mirrored range.
    Mirror(&'a Mirror),
}

/// [`Target`] without its lifetime, which the writer's invariant replaces.
enum RawTarget {
    Pages(*const *mut bindings::page),
    Mirror(*const Mirror),
}

/// A running (or finished) writer.
///
/// # Invariants
///
/// `target` (`nr` pages) is held by the pin that owns this writer: its pages
/// or its mirror. The pin stops the writer and waits for `done` before it
/// releases them.
#[pin_data]
pub(crate) struct DmaWriter {
    #[pin]
    work: Work<DmaWriter>,
    /// `(stop requested, finished)`.
    #[pin]
    state: Mutex<(bool, bool)>,
    /// Signalled on a stop request (the writer sleeps on it) and when the
    /// writer has finished (`stop` waits on it).
    #[pin]
    wake: CondVar,
    target: RawTarget,
    nr: usize,
    params: DmaParams,
    /// Read locklessly by the writer between pages.
    stop: Atomic<bool>,
    pub(crate) passes: Atomic<u64>,
    pub(crate) bytes: Atomic<u64>,
}

// SAFETY: The page pointers or the mirror are valid until the owning pin has waited for the
// writer to finish (type invariant), and writing into pinned pages from any thread is what a
// device does (a `Mirror` is `Sync`); everything else is atomics, a mutex and a condition
// variable.
unsafe impl Send for DmaWriter {}
// SAFETY: As above.
unsafe impl Sync for DmaWriter {}

impl_has_work! {
    impl HasWork<Self> for DmaWriter { self.work }
}

impl DmaWriter {
    /// Starts a writer on `target`.
    ///
    /// # Safety
    ///
    /// The target (its pages, or the mirror) must stay alive until
    /// [`DmaWriter::stop`] has returned.
    pub(crate) unsafe fn start(target: Target<'_>, params: DmaParams) -> Result<Arc<Self>> {
        let (target, nr) = match target {
            Target::Pages(p) => (RawTarget::Pages(p.as_ptr()), p.len()),
            Target::Mirror(m) => (RawTarget::Mirror(m), m.nr_pages()),
        };
        // INVARIANT: The caller keeps the target until `stop` returned.
        let w = Arc::pin_init(
            pin_init!(DmaWriter {
                work <- new_work!("pinwb::DmaWriter::work"),
                state <- new_mutex!((false, false)),
                wake <- new_condvar!("pinwb::DmaWriter::wake"),
                target,
                nr,
                params,
                stop: Atomic::new(false),
                passes: Atomic::new(0),
                bytes: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        // A freshly made work item cannot be queued already.
        let _ = workqueue::system_long().enqueue(w.clone());
        Ok(w)
    }

    /// Stops the writer and waits until it no longer touches the pages:
    /// at most the rest of one pass.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Relaxed);
        let mut state = self.state.lock();
        state.0 = true;
        self.wake.notify_all();
        while !state.1 {
            // Uninterruptible on purpose: the pages must not go while the writer writes.
            self.wake.wait(&mut state);
        }
    }

    /// Writes pass `pass` into `len` bytes at byte `off` of the target.
    /// Fails only on a mirror whose range cannot be faulted in any more.
    fn fill(&self, mut off: usize, mut len: usize, pass: u64) -> Result {
        let byte = self.params.pattern.wrapping_add(pass as u32) as u8;
        let stamp = self.params.stamp(pass);
        let mut pages = 0;
        while len > 0 && !self.stop.load(Relaxed) {
            let (index, in_page) = (off / PAGE_SIZE, off % PAGE_SIZE);
            let n = (PAGE_SIZE - in_page).min(len);
            match self.target {
                RawTarget::Pages(p) => {
                    // SAFETY: `index < nr` (callers keep `off + len` within the pin) and the
                    // page is held (type invariant).
                    let map = unsafe { KmapLocal::new(*p.add(index)) };
                    // SAFETY: `in_page + n <= PAGE_SIZE` bytes of the mapping; with `stamp64`,
                    // `off` and `n` are multiples of 8 (checked in `from_args`), so the words
                    // are aligned.
                    unsafe {
                        let dst = map.as_ptr().add(in_page);
                        if self.params.stamp64 {
                            pinwb_dma_fill64(dst.cast(), stamp, n / 8);
                        } else {
                            pinwb_dma_fill(dst.cast(), byte, n);
                        }
                    }
                }
                RawTarget::Mirror(m) => {
                    // SAFETY: The mirror outlives the writer (type invariant).
                    let m = unsafe { &*m };
                    let invalidations = m.write(off, n, byte, stamp, self.params.stamp64)?;
                    COUNTERS
                        .mirror_invalidations
                        .add(invalidations.into(), Relaxed);
                }
            }
            off += n;
            len -= n;
            pages += 1;
            if pages % RESCHED_PAGES == 0 {
                cond_resched();
            }
        }
        Ok(())
    }

    /// Sleeps `interval_us` (at least [`MIN_SLEEP_US`]), or less if a stop
    /// is requested.
    fn pause(&self) {
        let us = self.params.interval_us.max(MIN_SLEEP_US);
        if us <= SHORT_SLEEP_US {
            fsleep(Delta::from_micros(us as i64));
            return;
        }
        let mut state = self.state.lock();
        if !state.0 {
            // `us` is at most PINWB_DMA_MAX_INTERVAL_US: the conversion cannot truncate.
            let jiffies = msecs_to_jiffies(us.div_ceil(1000) as u32);
            // A worker has no signals: this returns on the timeout or a stop's notify.
            let _ = self.wake.wait_interruptible_timeout(&mut state, jiffies);
        }
    }
}

impl WorkItem for DmaWriter {
    type Pointer = Arc<DmaWriter>;

    fn run(this: Arc<DmaWriter>) {
        let total = this.nr * PAGE_SIZE;
        let per = match this.params.bytes_per_pass {
            0 => total,
            n => usize::try_from(n).unwrap_or(total).min(total),
        };
        let (mut off, mut pass) = (0usize, 0u64);
        while !this.stop.load(Relaxed) {
            // One pass may wrap around the end of the pin.
            let first = per.min(total - off);
            let filled = this
                .fill(off, first, pass)
                .and_then(|()| this.fill(0, per - first, pass));
            if filled.is_err() {
                // A mirror whose range is gone: the device has nothing left to write into.
                COUNTERS.mirror_write_errors.add(1, Relaxed);
                break;
            }
            crate::trace::dma_pass(this.params.pattern, pass, off, per, this.nr);
            off = (off + per) % total;
            pass += 1;
            this.passes.store(pass, Relaxed);
            this.bytes.add(per as u64, Relaxed);
            COUNTERS.dma_bytes.add(per as u64, Relaxed);
            this.pause();
        }
        let mut state = this.state.lock();
        state.1 = true;
        this.wake.notify_all();
    }
}

#[kunit_tests(pinwb_dma)]
mod tests {
    use super::*;

    fn args(interval_us: u64, flags: u32, bytes_per_pass: u64) -> defs::pinwb_dma {
        defs::pinwb_dma {
            interval_us,
            flags,
            bytes_per_pass,
            ..Default::default()
        }
    }

    #[test]
    fn interval_is_bounded() {
        let max = u64::from(defs::PINWB_DMA_MAX_INTERVAL_US);
        assert!(DmaParams::from_args(&args(max, 0, 0)).is_ok());
        assert_eq!(DmaParams::from_args(&args(max + 1, 0, 0)), Err(EINVAL));
        assert_eq!(DmaParams::from_args(&args(u64::MAX, 0, 0)), Err(EINVAL));
        assert!(DmaParams::from_args(&args(0, 0, 0)).is_ok());
    }

    #[test]
    fn stamps_need_whole_words() {
        let s = defs::PINWB_DMA_STAMP64;
        assert!(DmaParams::from_args(&args(0, s, 4096)).is_ok());
        assert_eq!(DmaParams::from_args(&args(0, s, 4095)), Err(EINVAL));
        assert!(DmaParams::from_args(&args(0, 0, 4095)).is_ok());
        assert_eq!(DmaParams::from_args(&args(0, 2, 0)), Err(EINVAL));
        let mut a = args(0, 0, 0);
        a.reserved0 = 1;
        assert_eq!(DmaParams::from_args(&a), Err(EINVAL));
    }

    #[test]
    fn stamps_never_repeat_within_2_pow_32_passes() {
        let p = DmaParams::from_args(&defs::pinwb_dma {
            pattern: 0xab,
            flags: defs::PINWB_DMA_STAMP64,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.stamp(0), 0xab_0000_0000);
        assert_eq!(p.stamp(256) & 0xff, p.stamp(0) & 0xff);
        assert_ne!(p.stamp(256), p.stamp(0));
        assert_eq!(p.stamp(1 << 32), p.stamp(0));
    }
}
