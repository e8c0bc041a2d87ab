// SPDX-License-Identifier: GPL-2.0

//! What pinwbfs writeback does with a folio that may be pinned.
//!
//! Pure decisions, unit-tested with KUnit; `aops.rs` carries them out. The
//! table is in Documentation/pinwb.rst ("Writeback policies").

use kernel::prelude::*;

/// A writeback policy (debugfs `policy`, mount option `policy=`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Policy {
    /// What 7.3's generic writeback does (`writeback_iter()` and a
    /// filesystem's `->writepages`): dirty folios are written in place
    /// whatever their pins, clean folios never.
    Mainline = 6,
    /// `mainline` plus the possibly-dirty rule ([`possibly_dirty`]): pinned
    /// clean folios are written at data-integrity sync, in place.
    Naive = 0,
    /// Never write a pinned folio; it stays dirty.
    Skip = 1,
    /// Data-integrity writeback waits until the pin is released.
    Wait = 2,
    /// Write a copy of the folio; keep the folio dirty.
    Bounce = 3,
    /// Data-integrity writeback of a long-term pinned folio fails.
    Fail = 4,
    /// Skip when cleaning; wait for short-term pins and bounce long-term
    /// ones at data-integrity writeback.
    Auto = 5,
    /// Hellwig (seed 004): a long-term pinned folio is treated like
    /// `MAP_PRIVATE` while registered: cleaning writeback leaves it alone,
    /// data-integrity writeback writes it straight from the pinned page to
    /// the store and leaves its dirty and writeback state as they were.
    /// Short-term pins are waited for, as under `auto`.
    Direct = 7,
    /// Wilcox (2023): a pinned folio is never written while pinned; it
    /// stays dirty, and is written by the first writeback after the unpin.
    /// The unpin need not dirty it: gup dirtied it when it pinned it for
    /// writing (`FOLL_TOUCH`, or the write fault), and nothing cleans it
    /// while pinned. A sync meanwhile succeeds without its data.
    Defer = 8,
}

/// Every policy, in the order debugfs shows them.
pub(crate) const POLICIES: [Policy; 9] = [
    Policy::Mainline,
    Policy::Naive,
    Policy::Skip,
    Policy::Wait,
    Policy::Bounce,
    Policy::Fail,
    Policy::Auto,
    Policy::Direct,
    Policy::Defer,
];

/// Every policy's name, for messages: `POLICIES` joined by `|`.
pub(crate) const POLICY_NAMES: &kernel::str::CStr =
    c"mainline|naive|skip|wait|bounce|fail|auto|direct|defer";

impl Policy {
    pub(crate) fn name(self) -> &'static str {
        // Every name is ASCII.
        self.c_name().to_str().unwrap_or("?")
    }

    /// The name as a C string (for `show_options`).
    pub(crate) fn c_name(self) -> &'static kernel::str::CStr {
        match self {
            Policy::Mainline => c"mainline",
            Policy::Naive => c"naive",
            Policy::Skip => c"skip",
            Policy::Wait => c"wait",
            Policy::Bounce => c"bounce",
            Policy::Fail => c"fail",
            Policy::Auto => c"auto",
            Policy::Direct => c"direct",
            Policy::Defer => c"defer",
        }
    }

    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        POLICIES.iter().copied().find(|p| *p as u32 == v)
    }

    /// Whether the policy promises to persist what a device wrote into a
    /// pinned folio that nobody dirtied: every policy but `mainline`.
    pub(crate) fn persists_device_writes(self) -> bool {
        self != Policy::Mainline
    }

    pub(crate) fn parse(s: &[u8]) -> Result<Self> {
        let s = s.strip_suffix(b"\n").unwrap_or(s);
        POLICIES
            .iter()
            .copied()
            .find(|p| p.name().as_bytes() == s)
            .ok_or(EINVAL)
    }
}

/// Who pins a folio, as far as writeback can tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pinned {
    /// Not pinned (`folio_maybe_dma_pinned()` is false).
    No,
    /// Pinned by pinwb for reading only: no device can write into it.
    ReadOnly,
    /// Pinned by pinwb for writing, short-term pins only.
    ShortTerm,
    /// Pinned by pinwb for writing with at least one long-term pin.
    LongTerm,
    /// `folio_maybe_dma_pinned()` with more pins than pinwb's: someone
    /// else's pin (io_uring, RDMA, O_DIRECT, ...) or a false positive.
    /// Treated as a long-term pin for writing.
    Foreign,
}

impl Pinned {
    fn long_term(self) -> bool {
        matches!(self, Pinned::LongTerm | Pinned::Foreign)
    }

    /// A device may write into the folio.
    fn writable(self) -> bool {
        matches!(self, Pinned::ShortTerm | Pinned::LongTerm | Pinned::Foreign)
    }
}

/// What to do with one dirty folio.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Action {
    /// Write the folio itself.
    Write,
    /// Leave it dirty; a data-integrity sync reports `EBUSY`.
    Skip,
    /// Wait (interruptibly, bounded) until it is no longer pinned, then decide again.
    Wait,
    /// Write a copy and keep the folio dirty.
    Bounce,
    /// Leave it dirty and fail the data-integrity sync with `EBUSY`.
    Fail,
    /// Copy it to the store now, from the pinned page, and leave it dirty.
    Direct,
    /// Leave it dirty, without an error, until it is unpinned.
    Defer,
}

/// The decision for a dirty folio, by policy, sync mode and pin state.
///
/// A folio that no device can write (unpinned, or pinned read-only) is
/// written in place by every policy.
pub(crate) fn decide(policy: Policy, integrity: bool, pinned: Pinned) -> Action {
    if !pinned.writable() {
        return Action::Write;
    }
    match (policy, integrity) {
        (Policy::Mainline | Policy::Naive, _) => Action::Write,
        (Policy::Bounce, _) => Action::Bounce,
        (Policy::Skip, _) => Action::Skip,
        (Policy::Defer, _) => Action::Defer,
        (Policy::Direct, true) if pinned.long_term() => Action::Direct,
        // Cleaning writeback never waits or fails: it leaves the folio for later.
        (Policy::Wait | Policy::Fail | Policy::Auto | Policy::Direct, false) => Action::Skip,
        (Policy::Wait, true) => Action::Wait,
        (Policy::Fail, true) if pinned.long_term() => Action::Fail,
        (Policy::Auto, true) if pinned.long_term() => Action::Bounce,
        // Short-term pins are, by definition, released soon.
        (Policy::Fail | Policy::Auto | Policy::Direct, true) => Action::Wait,
    }
}

/// Whether a data-integrity sync must write a *clean* folio with this pin
/// state: a device may have written into a folio pinned for writing without
/// dirtying it (Kara's case: RDMA into an mmapped file, transfer done, pages
/// still pinned, fsync). Every policy that promises to persist device writes
/// treats such folios as possibly dirty, short-term pins included (a driver
/// may hold them across the sync); `skip` and `fail` then report their
/// error, `wait` waits for the unpin. `mainline` does not: 7.3 writes only
/// dirty folios, and the device's bytes are lost.
pub(crate) fn possibly_dirty(policy: Policy, integrity: bool, pinned: Pinned) -> bool {
    integrity && policy.persists_device_writes() && pinned.writable()
}

#[kunit_tests(pinwb_policy)]
mod tests {
    use super::*;
    use Action::*;

    const STATES: [Pinned; 5] = [
        Pinned::No,
        Pinned::ReadOnly,
        Pinned::ShortTerm,
        Pinned::LongTerm,
        Pinned::Foreign,
    ];

    #[test]
    fn unpinned_and_read_only_folios_are_always_written() {
        for p in POLICIES {
            for s in [Pinned::No, Pinned::ReadOnly] {
                assert_eq!(decide(p, false, s), Write);
                assert_eq!(decide(p, true, s), Write);
            }
        }
    }

    #[test]
    fn cleaning_writeback_never_waits_or_fails() {
        for p in POLICIES {
            for s in STATES {
                let a = decide(p, false, s);
                assert!(a != Wait && a != Fail && a != Direct);
            }
        }
        assert_eq!(decide(Policy::Auto, false, Pinned::LongTerm), Skip);
        assert_eq!(decide(Policy::Naive, false, Pinned::LongTerm), Write);
        assert_eq!(decide(Policy::Bounce, false, Pinned::ShortTerm), Bounce);
        assert_eq!(decide(Policy::Direct, false, Pinned::LongTerm), Skip);
        assert_eq!(decide(Policy::Defer, false, Pinned::LongTerm), Defer);
    }

    #[test]
    fn integrity_table() {
        let rows = [
            (Policy::Mainline, [Write, Write, Write]),
            (Policy::Naive, [Write, Write, Write]),
            (Policy::Skip, [Skip, Skip, Skip]),
            (Policy::Wait, [Wait, Wait, Wait]),
            (Policy::Bounce, [Bounce, Bounce, Bounce]),
            (Policy::Fail, [Wait, Fail, Fail]),
            (Policy::Auto, [Wait, Bounce, Bounce]),
            (Policy::Direct, [Wait, Direct, Direct]),
            (Policy::Defer, [Defer, Defer, Defer]),
        ];
        for (p, want) in rows {
            for (s, w) in [Pinned::ShortTerm, Pinned::LongTerm, Pinned::Foreign]
                .iter()
                .zip(want)
            {
                assert_eq!(decide(p, true, *s), w);
            }
        }
    }

    #[test]
    fn writable_pins_are_possibly_dirty_at_integrity_sync_except_under_mainline() {
        for p in POLICIES {
            let promise = p != Policy::Mainline;
            assert_eq!(possibly_dirty(p, true, Pinned::LongTerm), promise);
            assert_eq!(possibly_dirty(p, true, Pinned::Foreign), promise);
            assert_eq!(possibly_dirty(p, true, Pinned::ShortTerm), promise);
            assert!(!possibly_dirty(p, true, Pinned::ReadOnly));
            assert!(!possibly_dirty(p, true, Pinned::No));
            assert!(!possibly_dirty(p, false, Pinned::LongTerm));
        }
    }

    #[test]
    fn mainline_writes_in_place_always() {
        for s in STATES {
            assert_eq!(decide(Policy::Mainline, false, s), Write);
            assert_eq!(decide(Policy::Mainline, true, s), Write);
        }
    }

    #[test]
    fn the_names_list_is_the_policies() {
        let mut it = POLICY_NAMES.to_bytes().split(|&c| c == b'|');
        for p in POLICIES {
            assert_eq!(it.next(), Some(p.name().as_bytes()));
        }
        assert_eq!(it.next(), None);
    }

    #[test]
    fn names_round_trip() {
        for p in POLICIES {
            assert_eq!(Policy::parse(p.name().as_bytes()), Ok(p));
            assert_eq!(Policy::from_u32(p as u32), Some(p));
        }
        assert_eq!(Policy::parse(b"bounce\n"), Ok(Policy::Bounce));
        assert_eq!(Policy::parse(b"Bounce"), Err(EINVAL));
        assert_eq!(Policy::parse(b""), Err(EINVAL));
        assert_eq!(Policy::from_u32(9), None);
        assert_eq!(POLICIES[0], Policy::Mainline);
    }
}
