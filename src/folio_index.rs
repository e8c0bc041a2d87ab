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
    folio::{Folio, LockedFolio},
    helpers::{
        pinwb_folios_count_pin, pinwb_folios_private_add, pinwb_folios_wait_writeback,
        pinwb_pages_with_aops,
    },
    policy::Pinned,
    request::Kind,
};
use kernel::{
    bindings,
    bitmap::BitmapVec,
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        barrier::{smp_mb, Full},
        CondVar, CondVarTimeoutResult, Mutex,
    },
    time::{msecs_to_jiffies, Instant, Jiffies, Monotonic},
};

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

    /// The encoded amount one pin of `kind` adds (0 for `Get` and `Mirror`,
    /// which hold no `FOLL_PIN`).
    fn step(kind: Kind, write: bool) -> usize {
        let w = if write { 1 << (2 * COUNT_BITS) } else { 0 };
        match kind {
            Kind::Get | Kind::Mirror => 0,
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

/// The index: the counts in pinwbfs folios, the lock of their updates, and
/// the wait for pins to go.
///
/// One per module, shared (`Arc`) by `/dev/pinwb`'s pins and pinwbfs's
/// writeback.
#[pin_data]
pub(crate) struct FolioIndex {
    /// Serialises read-modify-writes of `->private`; readers do not lock.
    /// A waiter holds it while it tests its condition, so that a release
    /// between the test and the sleep is not missed.
    #[pin]
    update: Mutex<()>,
    /// Notified when a pin of pinwbfs folios was released.
    #[pin]
    released: CondVar,
    /// The `address_space_operations` of pinwbfs mappings: how the
    /// filesystem tells the index which folios are its own.
    aops: &'static bindings::address_space_operations,
}

impl Indexed {
    /// Whether some page of the pin is a pinwbfs page, counted in the index.
    pub(crate) fn counted(&self) -> bool {
        self.bits.is_some()
    }
}

impl FolioIndex {
    /// An empty index of the folios of mappings with `aops`.
    pub(crate) fn new(aops: &'static bindings::address_space_operations) -> impl PinInit<Self> {
        pin_init!(FolioIndex {
            update <- new_mutex!(()),
            released <- new_condvar!("pinwb_released"),
            aops,
        })
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
        let n = pages.len();
        // SAFETY: `pages` are pinned by the caller, so their folios stay; the C scan reads each
        // folio's mapping and its `a_ops` under `rcu_read_lock()`, which keeps a mapping that
        // truncation detaches meanwhile from being freed (inodes are freed after a grace period).
        let first = unsafe { pinwb_pages_with_aops(pages.as_ptr(), n, self.aops) };
        if first == n {
            return Ok(indexed);
        }
        let mut bits = BitmapVec::new(n, GFP_KERNEL)?;
        // The counts cannot overflow: the folio refcount limits the pins first (`COUNT_BITS`).
        let step = FolioPins::step(kind, write) as isize;
        let guard = self.update.lock();
        // SAFETY: As above; `bits` has `n` bits, and `first < n`. `update` serialises the
        // updates of `->private`.
        let busy = unsafe {
            pinwb_folios_count_pin(
                pages.as_ptr(),
                n,
                first,
                self.aops,
                bits.as_mut_ptr().cast(),
                step,
            )
        };
        drop(guard);
        let bits = indexed.bits.insert(bits);
        // A device may write as soon as the pin exists: it must not start while a folio is
        // under writeback. writepages decides, under the folio lock, that a folio is not
        // pinned and starts its writeback before unlocking it; gup pins a folio under
        // writeback without waiting. The count pass tested each folio's lock and writeback
        // after a barrier that pairs with `classify_for_writeback`'s; if one was set, this
        // waits for writeback in flight, taking the lock of a folio that is locked.
        if busy {
            // SAFETY: The pages are pinned by the caller; `bits` has `n` bits; no lock is
            // held (a folio lock and the waits may sleep).
            unsafe { pinwb_folios_wait_writeback(pages.as_ptr(), n, bits.as_ptr()) };
        }
        Ok(indexed)
    }

    /// Forgets what [`FolioIndex::add`] recorded for a pin being released.
    pub(crate) fn remove(&self, pages: &[*mut bindings::page], indexed: &Indexed) {
        let Some(bits) = &indexed.bits else {
            return;
        };
        // The counts cannot underflow: every removal matches an earlier addition.
        let step = -(FolioPins::step(indexed.kind, indexed.write) as isize);
        let _guard = self.update.lock();
        // SAFETY: The pages are pinned by the caller; the folios of the pages whose bits are
        // set were pinwbfs folios when counted, and their `->private` stays ours while they
        // are pinned; `bits` has `pages.len()` bits. `update` serialises the updates.
        unsafe { pinwb_folios_private_add(pages.as_ptr(), pages.len(), bits.as_ptr(), step) };
    }

    /// The pages of a pin of pinwbfs folios were given back: wakes every
    /// task in [`FolioIndex::wait_until`].
    pub(crate) fn released(&self) {
        // A waiter tests its condition under `update` and sleeps before releasing it: taking
        // it here orders this wakeup after any test that saw the pages still pinned.
        drop(self.update.lock());
        self.released.notify_all();
    }

    /// pinwb's pins of a pinwbfs folio, as `->private` counts them.
    pub(crate) fn lookup_folio(&self, folio: &Folio) -> FolioPins {
        FolioPins::decode(folio.private())
    }

    /// pinwb's pins of the folio that holds `page`: none unless it is a
    /// pinwbfs folio.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page that the caller holds a reference on.
    pub(crate) unsafe fn lookup_page(&self, page: *mut bindings::page) -> FolioPins {
        // SAFETY: As the caller guarantees: the C scan reads the folio's mapping under RCU.
        if unsafe { pinwb_pages_with_aops(&page, 1, self.aops) } != 0 {
            return FolioPins::default();
        }
        // SAFETY: The page, and so its folio, is referenced by the caller.
        let folio = unsafe { Folio::from_raw(crate::helpers::pinwb_page_folio(page)) };
        self.lookup_folio(folio)
    }

    /// Who pins `folio`, a pinwbfs folio, as far as writeback can tell:
    /// pinwb's counts, and whether it has more `FOLL_PIN` pins than pinwb's
    /// (someone else's, which dominate every pinwb kind but a long-term pin
    /// for writing). A folio with a long-term pin and a pin for writing
    /// counts as long-term pinned for writing even if those are two pins.
    pub(crate) fn classify(&self, folio: &Folio) -> Pinned {
        if !folio.maybe_dma_pinned() {
            return Pinned::No;
        }
        let pins = self.lookup_folio(folio);
        let foreign = folio.dma_pins() > pins.total();
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

    /// [`FolioIndex::classify`] for writepages's decision to start writeback
    /// on a folio it holds locked. The full barrier between the folio lock and
    /// the pin count's test pairs with the one a new pin issues between gup
    /// and its test of the folio lock (`pinwb_folios_wait_writeback()`):
    /// either this sees the pin, or the pin waits for the writeback that this
    /// decision starts.
    pub(crate) fn classify_for_writeback(&self, folio: &LockedFolio<'_>) -> Pinned {
        smp_mb(Full);
        self.classify(folio)
    }

    /// Sleeps interruptibly until `cond()` holds, re-checking it whenever a
    /// pin is released and at least every [`MAX_POLL_MS`], until `deadline`.
    /// `ETIMEDOUT` when the time runs out, `EINTR` on a signal.
    ///
    /// The deadline is wall-clock time: a waiter woken again and again (a
    /// storm of short pins that never leaves the folio unpinned: Kara's
    /// denial of service) still returns on time, whatever it spends on
    /// wake-ups and on retaking the lock.
    pub(crate) fn wait_until(
        &self,
        mut cond: impl FnMut() -> bool,
        deadline: Instant<Monotonic>,
    ) -> Result {
        let mut poll: Jiffies = 1;
        let mut guard = self.update.lock();
        loop {
            if cond() {
                return Ok(());
            }
            let left_ms = (deadline - Instant::<Monotonic>::now()).as_millis();
            if left_ms <= 0 {
                return Err(ETIMEDOUT);
            }
            // `left_ms` is at most MAX_WAIT_TIMEOUT_MS (stats.rs): fits a u32.
            let nap = poll.min(msecs_to_jiffies(left_ms.min(i64::from(u32::MAX)) as u32));
            if let CondVarTimeoutResult::Signal { .. } = self
                .released
                .wait_interruptible_timeout(&mut guard, nap.max(1))
            {
                return Err(EINTR);
            }
            poll = (poll * 2).min(msecs_to_jiffies(MAX_POLL_MS));
        }
    }
}

/// Longest sleep between two checks of the condition, in milliseconds.
///
/// pinwb's own unpins wake waiters at once ([`FolioIndex::released`]);
/// nobody tells pinwb when someone else's pin (io_uring, RDMA, O_DIRECT)
/// goes, so a waiter also polls: after 1 ms, then 2, 4, 8 and every 16 ms.
/// A foreign release is noticed within 16 ms (at most 31 ms in the first
/// 31 ms of a wait), at a cost of about 60 wakeups a second per waiter.
pub(crate) const MAX_POLL_MS: u32 = 16;

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
