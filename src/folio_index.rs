// SPDX-License-Identifier: GPL-2.0

//! Which folios pinwb pins, and how: long-term and short-term pin counts per
//! pinwbfs folio.
//!
//! `folio_maybe_dma_pinned()` says only "maybe pinned, by someone". Writeback
//! policies need more: whether the pin is pinwb's and whether it is long-term,
//! for every pinned folio they meet, in O(1).
//!
//! Only pins of pinwbfs folios are counted, the only folios whose writeback
//! pinwb drives, and the counts live in the folio itself: `folio->private`,
//! which pinwbfs owns and does not otherwise use (`PG_private` stays clear,
//! so no generic path looks at it). That costs no memory and, per page, a
//! read and a write under one mutex per pin; readers do not lock. (An XArray
//! of value entries keyed by PFN cost pins of pinwbfs memory 4 to 8 times
//! gup_test's, and indexing every pinned page cost anonymous memory as much:
//! `make bench`.) Each pin remembers which of its pages it counted
//! ([`Indexed`]), so truncation between pin and unpin cannot unbalance the
//! counts. A pinned folio cannot be freed, and every count returns to 0 before
//! its pin is released, so `->private` is 0 again long before the page is.
//! Only `FOLL_PIN` pins count: `get_user_pages()` references are as invisible
//! here as they are to `folio_maybe_dma_pinned()`.

use crate::{
    helpers::{
        pinwb_folio_get_private, pinwb_folios_private_add, pinwb_folios_wait_writeback,
        pinwb_page_folio, pinwb_pages_with_aops,
    },
    request::Kind,
};
use core::ptr::null_mut;
use kernel::{bindings, bitmap::BitmapVec, ffi::c_long, prelude::*, types::Opaque};

/// Each count has 21 bits of `folio->private`: more pins of one order-0
/// folio than that would overflow its refcount first (each `FOLL_PIN` adds
/// `GUP_PIN_COUNTING_BIAS`, 1024, to it, and gup refuses to go past 2^31).
const COUNT_BITS: u32 = 21;
const COUNT_MASK: usize = (1 << COUNT_BITS) - 1;

/// pinwb's pins of one folio.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct FolioPins {
    /// `FOLL_LONGTERM` pins.
    pub(crate) longterm: usize,
    /// Other `FOLL_PIN` pins.
    pub(crate) shortterm: usize,
    /// Those of either kind with `FOLL_WRITE`: a device may write.
    pub(crate) writable: usize,
}

impl FolioPins {
    fn encode(self) -> usize {
        (self.writable << (2 * COUNT_BITS)) | (self.shortterm << COUNT_BITS) | self.longterm
    }

    fn decode(v: usize) -> Self {
        FolioPins {
            longterm: v & COUNT_MASK,
            shortterm: (v >> COUNT_BITS) & COUNT_MASK,
            writable: (v >> (2 * COUNT_BITS)) & COUNT_MASK,
        }
    }

    /// The encoded amount one pin of `kind` adds (0 for `Get`).
    fn step(kind: Kind, write: bool) -> usize {
        let w = if write { 1 << (2 * COUNT_BITS) } else { 0 };
        match kind {
            Kind::Get => 0,
            Kind::LongTerm => 1 + w,
            Kind::ShortTerm => (1 << COUNT_BITS) + w,
        }
    }

    pub(crate) fn is_empty(self) -> bool {
        self.total() == 0
    }

    /// Every pin pinwb holds on the folio.
    pub(crate) fn total(self) -> usize {
        self.longterm + self.shortterm
    }
}

/// Which pages of one pin are in the index, and as which kind.
pub(crate) struct Indexed {
    kind: Kind,
    write: bool,
    /// `None` when none is (anonymous memory, other files, `GET` pins).
    bits: Option<BitmapVec>,
}

/// The index: the counts in pinwbfs folios, and the lock of their updates.
pub(crate) struct FolioIndex;

kernel::sync::global_lock! {
    // SAFETY: Initialised in module init, before any pin can be made.
    unsafe(uninit) static UPDATE: Mutex<()> = ();
}

/// Wait queue of tasks waiting for pins to go (the `wait` policy); woken
/// whenever a pin is released.
struct ReleaseWait {
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue head is designed for concurrent use; it is initialised once in
// `FolioIndex::init` before use.
unsafe impl Sync for ReleaseWait {}

static RELEASED: ReleaseWait = ReleaseWait {
    wq: Opaque::uninit(),
};

/// The one index of the module.
pub(crate) static INDEX: FolioIndex = FolioIndex;

impl FolioIndex {
    /// Initialises the index.
    ///
    /// # Safety
    ///
    /// Must be called exactly once, in module init, before any other method.
    pub(crate) unsafe fn init(&'static self) {
        // SAFETY: Called once before any use, as the caller guarantees.
        unsafe { UPDATE.init() };
        // SAFETY: `wq` is valid memory for a wait queue head, not yet in use; the name and
        // the lock class key are static.
        unsafe {
            bindings::__init_waitqueue_head(
                RELEASED.wq.get(),
                c"pinwb_released".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            )
        };
    }

    /// Counts the pages of `indexed` in (`delta` 1) or out (-1) of their folios.
    ///
    /// A read-modify-write of `->private` must not race with another: `UPDATE`
    /// serialises updaters; readers see one count or the other.
    fn update(&self, pages: &[*mut bindings::page], indexed: &Indexed, delta: isize) {
        let Some(bits) = &indexed.bits else {
            return;
        };
        // The counts cannot over- or underflow: gup refuses far fewer pins than 2^31 per
        // folio, and every removal matches an earlier addition.
        let step = FolioPins::step(indexed.kind, indexed.write) as isize * delta;
        let _guard = UPDATE.lock();
        // SAFETY: The pages are pinned by the caller; the folios of the pages whose bits are
        // set were pinwbfs folios when counted, and their `->private` stays ours while they
        // are pinned; `bits` has `pages.len()` bits. `UPDATE` serialises the updates.
        unsafe { pinwb_folios_private_add(pages.as_ptr(), pages.len(), bits.as_ptr(), step) };
    }

    /// Records the pinwbfs pages of a new pin of `kind`; returns which.
    pub(crate) fn add(
        &self,
        pages: &[*mut bindings::page],
        kind: Kind,
        write: bool,
    ) -> Result<Indexed> {
        let mut indexed = Indexed {
            kind,
            write,
            bits: None,
        };
        if kind == Kind::Get {
            return Ok(indexed);
        }
        let aops = &raw const crate::aops::AOPS.0;
        let n = pages.len();
        // SAFETY: `pages` are pinned by the caller, so their folios stay; the C scan reads each
        // folio's mapping and its `a_ops` under `rcu_read_lock()`, which keeps a mapping that
        // truncation detaches meanwhile from being freed (inodes are freed after a grace period).
        let first = unsafe { pinwb_pages_with_aops(pages.as_ptr(), n, 0, aops, null_mut()) };
        if first < n {
            let mut bits = BitmapVec::new(n, GFP_KERNEL)?;
            // SAFETY: As above; `bits` has `n` bits.
            unsafe { pinwb_pages_with_aops(pages.as_ptr(), n, first, aops, bits.as_mut_ptr()) };
            indexed.bits = Some(bits);
        }
        self.update(pages, &indexed, 1);
        // A device may write as soon as the pin exists: it must not start while a folio is
        // under writeback. writepages decides, under the folio lock, that a folio is not
        // pinned and starts its writeback before unlocking it; gup pins a folio under
        // writeback without waiting. Taking each folio lock orders this pin against that
        // window: either writepages saw the pin (folio_maybe_dma_pinned() is already true
        // here), or its IO started and is waited for.
        if let Some(bits) = &indexed.bits {
            // SAFETY: The pages are pinned by the caller; `bits` has `pages.len()` bits; no
            // lock is held (folio locks and waits may sleep).
            unsafe { pinwb_folios_wait_writeback(pages.as_ptr(), pages.len(), bits.as_ptr()) };
        }
        Ok(indexed)
    }

    /// Forgets what [`FolioIndex::add`] recorded for a pin being released.
    pub(crate) fn remove(&self, pages: &[*mut bindings::page], indexed: &Indexed) {
        self.update(pages, indexed, -1)
    }

    /// pinwb's pins of a pinwbfs folio.
    ///
    /// # Safety
    ///
    /// The caller holds a reference on `folio`, which belongs to a pinwbfs
    /// mapping (or did when it was pinned).
    pub(crate) unsafe fn lookup_folio(&self, folio: *mut bindings::folio) -> FolioPins {
        // SAFETY: As the caller guarantees: `->private` of a pinwbfs folio is ours.
        FolioPins::decode(unsafe { pinwb_folio_get_private(folio) } as usize)
    }

    /// pinwb's pins of the folio that holds `page`: none unless it is a
    /// pinwbfs folio.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page that the caller holds a reference on.
    pub(crate) unsafe fn lookup_page(&self, page: *mut bindings::page) -> FolioPins {
        let aops = &raw const crate::aops::AOPS.0;
        // SAFETY: As the caller guarantees; a folio is checked to be pinwbfs's before its
        // `->private` is read.
        unsafe {
            if pinwb_pages_with_aops(&page, 1, 0, aops, null_mut()) != 0 {
                return FolioPins::default();
            }
            self.lookup_folio(pinwb_page_folio(page))
        }
    }
}

/// Wakes every task in [`wait_until`]: some pin was released.
pub(crate) fn notify_released() {
    // SAFETY: The wait queue head was initialised in `FolioIndex::init`.
    unsafe {
        bindings::__wake_up(
            RELEASED.wq.get(),
            bindings::TASK_NORMAL,
            0,
            core::ptr::null_mut(),
        )
    };
}

/// Longest sleep between two checks of the condition, in milliseconds.
///
/// pinwb's own unpins wake waiters at once ([`notify_released`]); nobody
/// tells pinwb when someone else's pin (io_uring, RDMA, O_DIRECT) goes, so a
/// waiter also polls: after 1 ms, then 2, 4, 8 and every 16 ms. A foreign
/// release is noticed within 16 ms (at most 31 ms in the first 31 ms of a
/// wait), at a cost of about 60 wakeups a second per waiter.
pub(crate) const MAX_POLL_MS: u32 = 16;

/// Sleeps interruptibly until `cond()` holds, re-checking it whenever a pin
/// is released and at least every [`MAX_POLL_MS`], for at most
/// `timeout_jiffies` (none at all unless `sleep`). `ETIMEDOUT` when the time
/// runs out, `EINTR` on a signal.
pub(crate) fn wait_until(
    mut cond: impl FnMut() -> bool,
    timeout_jiffies: i64,
    sleep: bool,
) -> Result {
    let mut left = if sleep { timeout_jiffies.max(1) } else { 0 };
    let max_poll = kernel::time::msecs_to_jiffies(MAX_POLL_MS) as i64;
    let mut poll = 1i64;
    let mut entry = core::mem::MaybeUninit::<bindings::wait_queue_entry>::zeroed();
    // SAFETY: `entry` is valid memory for a wait queue entry.
    unsafe { bindings::init_wait_entry(entry.as_mut_ptr(), 0) };
    let ret = loop {
        // SAFETY: Queue and entry are initialised; the entry lives on this stack frame until
        // `finish_wait` below. Preparing before testing `cond` closes the race with a wakeup.
        let sig = unsafe {
            bindings::prepare_to_wait_event(
                RELEASED.wq.get(),
                entry.as_mut_ptr(),
                bindings::TASK_INTERRUPTIBLE as i32,
            )
        };
        if cond() {
            break Ok(());
        }
        if sig != 0 {
            break Err(EINTR);
        }
        if left <= 0 {
            break Err(ETIMEDOUT);
        }
        let nap = left.min(poll);
        // SAFETY: We are in TASK_INTERRUPTIBLE on the queue; a plain sleep.
        let rest = unsafe { bindings::schedule_timeout(nap as c_long) } as i64;
        left -= nap - rest;
        poll = (poll * 2).min(max_poll);
    };
    // SAFETY: Takes the entry off the queue if a wakeup did not already.
    unsafe { bindings::finish_wait(RELEASED.wq.get(), entry.as_mut_ptr()) };
    ret
}

#[kunit_tests(pinwb_folio_index)]
mod tests {
    use super::*;

    #[test]
    fn encode_roundtrip() {
        for p in [
            FolioPins::default(),
            FolioPins {
                longterm: 1,
                ..Default::default()
            },
            FolioPins {
                shortterm: 1,
                ..Default::default()
            },
            FolioPins {
                longterm: 1,
                writable: 1,
                ..Default::default()
            },
            FolioPins {
                longterm: COUNT_MASK,
                shortterm: COUNT_MASK,
                writable: COUNT_MASK,
            },
        ] {
            assert_eq!(FolioPins::decode(p.encode()), p);
        }
        // Fits `->private` with room to spare.
        assert!(
            FolioPins {
                longterm: COUNT_MASK,
                shortterm: COUNT_MASK,
                writable: COUNT_MASK,
            }
            .encode()
                <= isize::MAX as usize
        );
    }

    #[test]
    fn steps_count_by_kind() {
        let mut v = 0usize;
        for (kind, write) in [
            (Kind::LongTerm, true),
            (Kind::ShortTerm, true),
            (Kind::LongTerm, true),
            (Kind::Get, true),
            (Kind::LongTerm, false),
            (Kind::ShortTerm, false),
        ] {
            v += FolioPins::step(kind, write);
        }
        assert_eq!(
            FolioPins::decode(v),
            FolioPins {
                longterm: 3,
                shortterm: 2,
                writable: 3,
            }
        );
        assert_eq!(FolioPins::decode(v).total(), 5);
        v -= 2 * FolioPins::step(Kind::LongTerm, true);
        v -= FolioPins::step(Kind::LongTerm, false);
        v -= FolioPins::step(Kind::ShortTerm, false);
        assert!(!FolioPins::decode(v).is_empty());
        v -= FolioPins::step(Kind::ShortTerm, true);
        assert!(FolioPins::decode(v).is_empty());
        assert_eq!(v, 0);
    }

    #[test]
    fn a_full_count_does_not_spill_into_the_other() {
        for full in [
            FolioPins {
                longterm: COUNT_MASK,
                ..Default::default()
            },
            FolioPins {
                shortterm: COUNT_MASK,
                ..Default::default()
            },
            FolioPins {
                writable: COUNT_MASK,
                ..Default::default()
            },
        ] {
            assert_eq!(FolioPins::decode(full.encode()), full);
        }
    }
}
