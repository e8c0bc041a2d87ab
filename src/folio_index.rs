// SPDX-License-Identifier: GPL-2.0

//! Which folios pinwb pins, and how: long-term and short-term pin counts per
//! folio, keyed by the folio's PFN.
//!
//! `folio_maybe_dma_pinned()` says only "maybe pinned, by someone". Writeback
//! policies need more: whether the pin is pinwb's and whether it is long-term,
//! for every pinned folio they meet, in O(1). This is a single XArray of
//! value entries (no allocation per folio beyond XArray nodes), updated when
//! pins are made and released, read locklessly under RCU by `xa_load()`.
//!
//! Only pins of pinwbfs folios are indexed, the only folios whose writeback
//! pinwb drives: indexing anonymous or other files' memory would cost every
//! pin an XArray update per page for no reader (`make bench` measured pins of
//! anonymous memory 4-7 times slower than gup_test's with it). Each pin
//! remembers which of its pages it indexed ([`Indexed`]), so truncation
//! between pin and unpin cannot unbalance the counts. Only `FOLL_PIN` pins are
//! indexed: `get_user_pages()` references are as invisible here as they are
//! to `folio_maybe_dma_pinned()`.

use crate::{
    fs::is_pinwbfs_mapping,
    helpers::{pinwb_page_folio, pinwb_page_folio_pfn, pinwb_xa_mk_value, pinwb_xa_to_value},
    request::Kind,
};
use kernel::{bindings, bitmap::BitmapVec, ffi::c_long, prelude::*, types::Opaque};

/// Each count has 31 bits of an XArray value entry (which holds 63 bits).
const COUNT_BITS: u32 = 31;
const COUNT_MASK: usize = (1 << COUNT_BITS) - 1;

/// pinwb's pins of one folio.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct FolioPins {
    pub(crate) longterm: usize,
    pub(crate) shortterm: usize,
}

impl FolioPins {
    fn encode(self) -> usize {
        (self.shortterm << COUNT_BITS) | self.longterm
    }

    fn decode(v: usize) -> Self {
        FolioPins {
            longterm: v & COUNT_MASK,
            shortterm: (v >> COUNT_BITS) & COUNT_MASK,
        }
    }

    /// Adds (`delta > 0`) or removes pins of `kind`; `None` on over- or underflow.
    fn apply(self, kind: Kind, delta: isize) -> Option<Self> {
        let mut new = self;
        let count = match kind {
            Kind::LongTerm => &mut new.longterm,
            Kind::ShortTerm => &mut new.shortterm,
            Kind::Get => return Some(self),
        };
        *count = count
            .checked_add_signed(delta)
            .filter(|&c| c <= COUNT_MASK)?;
        Some(new)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.longterm == 0 && self.shortterm == 0
    }
}

/// Which pages of one pin are in the index, and as which kind.
pub(crate) struct Indexed {
    kind: Kind,
    /// `None` when none is (anonymous memory, other files, `GET` pins).
    bits: Option<BitmapVec>,
}

/// The index itself.
///
/// # Invariants
///
/// After [`FolioIndex::init`], `xa` is an initialised XArray whose entries are
/// value entries encoding non-empty [`FolioPins`].
pub(crate) struct FolioIndex {
    xa: Opaque<bindings::xarray>,
}

// SAFETY: The XArray has its own lock for updates and RCU for lookups; updates
// are further serialised by `UPDATE` (see `FolioIndex::update`).
unsafe impl Sync for FolioIndex {}

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
pub(crate) static INDEX: FolioIndex = FolioIndex {
    xa: Opaque::uninit(),
};

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
        // SAFETY: `xa` is valid memory for an xarray and not yet in use.
        // INVARIANT: The XArray is initialised and empty.
        unsafe { bindings::xa_init_flags(self.xa.get(), 0) };
    }

    /// Frees the index at module exit. All pins are gone by then (every open
    /// file holds a module reference), so it is empty.
    ///
    /// # Safety
    ///
    /// Must be called once, at module exit, after the last use.
    pub(crate) unsafe fn destroy(&self) {
        // SAFETY: `xa` was initialised in `init` and nobody uses it any more.
        unsafe { bindings::xa_destroy(self.xa.get()) };
    }

    /// Counts the pages of `indexed` in or out of the index.
    ///
    /// Read-modify-write of one entry must not race with another, and
    /// `xa_store()` may sleep to allocate nodes: `UPDATE` serialises updaters,
    /// lookups stay lockless.
    fn update(&self, pages: &[*mut bindings::page], indexed: &Indexed, delta: isize) {
        let Some(bits) = &indexed.bits else {
            return;
        };
        let _guard = UPDATE.lock();
        let mut next = bits.next_bit(0);
        while let Some(i) = next {
            next = bits.next_bit(i + 1);
            // SAFETY: `pages[i]` is a page that the caller holds pinned.
            let pfn = unsafe { pinwb_page_folio_pfn(pages[i]) };
            let old = self.lookup_pfn(pfn);
            let Some(new) = old.apply(indexed.kind, delta) else {
                // Cannot happen: gup refuses far fewer pins than 2^31 per folio, and
                // every removal matches an earlier addition.
                pr_err!("folio index count overflow at pfn {pfn:#x}\n");
                continue;
            };
            if new.is_empty() {
                // SAFETY: `xa` is initialised (type invariant).
                unsafe { bindings::xa_erase(self.xa.get(), pfn) };
            } else {
                // SAFETY: `xa` is initialised; a value entry needs no memory management.
                // INVARIANT: `new` is not empty.
                let old = unsafe {
                    bindings::xa_store(
                        self.xa.get(),
                        pfn,
                        pinwb_xa_mk_value(new.encode()),
                        bindings::GFP_KERNEL,
                    )
                };
                // SAFETY: `xa_err` only inspects the pointer value.
                if unsafe { bindings::xa_err(old) } != 0 {
                    // Out of memory for an XArray node: this folio is not indexed and looks
                    // like a foreign pin to writeback, which policies treat as long-term.
                    pr_warn!("folio index: no memory to index pfn {pfn:#x}\n");
                }
            }
        }
    }

    /// Records the pinwbfs pages of a new pin of `kind`; returns which.
    pub(crate) fn add(&self, pages: &[*mut bindings::page], kind: Kind) -> Result<Indexed> {
        let mut indexed = Indexed { kind, bits: None };
        if kind == Kind::Get {
            return Ok(indexed);
        }
        for (i, &page) in pages.iter().enumerate() {
            // SAFETY: The caller holds `page` pinned, so its folio and mapping stay.
            let ours = unsafe {
                let folio = pinwb_page_folio(page);
                is_pinwbfs_mapping(bindings::folio_mapping(folio))
            };
            if ours {
                if indexed.bits.is_none() {
                    indexed.bits = Some(BitmapVec::new(pages.len(), GFP_KERNEL)?);
                }
                if let Some(bits) = &mut indexed.bits {
                    bits.set_bit(i);
                }
            }
        }
        self.update(pages, &indexed, 1);
        Ok(indexed)
    }

    /// Forgets what [`FolioIndex::add`] recorded for a pin being released.
    pub(crate) fn remove(&self, pages: &[*mut bindings::page], indexed: &Indexed) {
        self.update(pages, indexed, -1)
    }

    /// pinwb's pins of the folio whose PFN is `pfn`.
    pub(crate) fn lookup_pfn(&self, pfn: usize) -> FolioPins {
        // SAFETY: `xa` is initialised (type invariant); `xa_load` takes the RCU read lock.
        let entry = unsafe { bindings::xa_load(self.xa.get(), pfn) };
        if entry.is_null() {
            return FolioPins::default();
        }
        // SAFETY: Every entry is a value entry (type invariant).
        FolioPins::decode(unsafe { pinwb_xa_to_value(entry) })
    }

    /// pinwb's pins of the folio that holds `page`.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page that the caller holds a reference on.
    pub(crate) unsafe fn lookup_page(&self, page: *mut bindings::page) -> FolioPins {
        // SAFETY: As the caller guarantees.
        self.lookup_pfn(unsafe { pinwb_page_folio_pfn(page) })
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

/// Sleeps interruptibly until `cond()` holds, re-checking it whenever a pin
/// is released, for at most `timeout_jiffies` (none at all unless `sleep`).
/// `ETIMEDOUT` when the time runs out (e.g. a foreign pin, whose release
/// pinwb is not told about), `EINTR` on a signal.
pub(crate) fn wait_until(
    mut cond: impl FnMut() -> bool,
    timeout_jiffies: i64,
    sleep: bool,
) -> Result {
    let mut left = if sleep { timeout_jiffies.max(1) } else { 0 };
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
        // SAFETY: We are in TASK_INTERRUPTIBLE on the queue; a plain sleep.
        left = unsafe { bindings::schedule_timeout(left as c_long) } as i64;
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
                shortterm: 0,
            },
            FolioPins {
                longterm: 0,
                shortterm: 1,
            },
            FolioPins {
                longterm: COUNT_MASK,
                shortterm: COUNT_MASK,
            },
        ] {
            assert_eq!(FolioPins::decode(p.encode()), p);
        }
        // Fits an XArray value entry (at most 63 bits).
        assert!(
            FolioPins {
                longterm: COUNT_MASK,
                shortterm: COUNT_MASK
            }
            .encode()
                <= isize::MAX as usize
        );
    }

    #[test]
    fn apply_counts_by_kind() {
        let p = FolioPins::default();
        let p = p.apply(Kind::LongTerm, 1).unwrap();
        let p = p.apply(Kind::ShortTerm, 1).unwrap();
        let p = p.apply(Kind::LongTerm, 1).unwrap();
        assert_eq!(
            p,
            FolioPins {
                longterm: 2,
                shortterm: 1
            }
        );
        assert_eq!(p.apply(Kind::Get, 1), Some(p));
        let p = p.apply(Kind::LongTerm, -2).unwrap();
        assert_eq!(
            p,
            FolioPins {
                longterm: 0,
                shortterm: 1
            }
        );
        assert!(!p.is_empty());
        assert!(p.apply(Kind::ShortTerm, -1).unwrap().is_empty());
    }

    #[test]
    fn apply_refuses_under_and_overflow() {
        assert_eq!(FolioPins::default().apply(Kind::LongTerm, -1), None);
        let full = FolioPins {
            longterm: COUNT_MASK,
            shortterm: 0,
        };
        assert_eq!(full.apply(Kind::LongTerm, 1), None);
    }
}
