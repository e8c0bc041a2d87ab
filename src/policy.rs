// SPDX-License-Identifier: GPL-2.0

//! What pinwbfs writeback does with a folio that may be pinned.
//!
//! Pure decisions, unit-tested with KUnit; `aops.rs` carries them out. The
//! table is in Documentation/pinwb.rst ("Writeback policies").

use kernel::prelude::*;

/// A writeback policy (debugfs `policy`, mount option `policy=`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Policy {
    /// Write pinned folios in place, as the kernel does today.
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
}

pub(crate) const POLICIES: [Policy; 6] = [
    Policy::Naive,
    Policy::Skip,
    Policy::Wait,
    Policy::Bounce,
    Policy::Fail,
    Policy::Auto,
];

impl Policy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Policy::Naive => "naive",
            Policy::Skip => "skip",
            Policy::Wait => "wait",
            Policy::Bounce => "bounce",
            Policy::Fail => "fail",
            Policy::Auto => "auto",
        }
    }

    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        POLICIES.get(v as usize).copied()
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
    /// Pinned by pinwb, short-term pins only.
    ShortTerm,
    /// Pinned by pinwb with at least one long-term pin.
    LongTerm,
    /// `folio_maybe_dma_pinned()`, but not by pinwb: someone else's pin
    /// (io_uring, RDMA, ...) or a false positive. Treated as long-term.
    Foreign,
}

impl Pinned {
    fn long_term(self) -> bool {
        matches!(self, Pinned::LongTerm | Pinned::Foreign)
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
}

/// The decision for a dirty folio, by policy, sync mode and pin state.
pub(crate) fn decide(policy: Policy, integrity: bool, pinned: Pinned) -> Action {
    if pinned == Pinned::No {
        return Action::Write;
    }
    match (policy, integrity) {
        (Policy::Naive, _) => Action::Write,
        (Policy::Bounce, _) => Action::Bounce,
        (Policy::Skip, _) => Action::Skip,
        // Cleaning writeback never waits or fails: it leaves the folio for later.
        (Policy::Wait | Policy::Fail | Policy::Auto, false) => Action::Skip,
        (Policy::Wait, true) => Action::Wait,
        (Policy::Fail, true) if pinned.long_term() => Action::Fail,
        (Policy::Auto, true) if pinned.long_term() => Action::Bounce,
        // Short-term pins are, by definition, released soon.
        (Policy::Fail | Policy::Auto, true) => Action::Wait,
    }
}

/// Whether a data-integrity sync must write a *clean* folio with this pin
/// state: a device may have written into a long-term pinned folio without
/// dirtying it (seed 004: RDMA into an mmaped file, then fsync with the pages
/// still pinned). Every policy that claims to persist data treats such
/// folios as possibly dirty; `skip` and `fail` then report their error.
pub(crate) fn possibly_dirty(integrity: bool, pinned: Pinned) -> bool {
    integrity && pinned.long_term()
}

#[kunit_tests(pinwb_policy)]
mod tests {
    use super::*;
    use Action::*;

    const STATES: [Pinned; 4] = [
        Pinned::No,
        Pinned::ShortTerm,
        Pinned::LongTerm,
        Pinned::Foreign,
    ];

    #[test]
    fn unpinned_folios_are_always_written() {
        for p in POLICIES {
            assert_eq!(decide(p, false, Pinned::No), Write);
            assert_eq!(decide(p, true, Pinned::No), Write);
        }
    }

    #[test]
    fn cleaning_writeback_never_waits_or_fails() {
        for p in POLICIES {
            for s in STATES {
                let a = decide(p, false, s);
                assert!(a != Wait && a != Fail);
            }
        }
        assert_eq!(decide(Policy::Auto, false, Pinned::LongTerm), Skip);
        assert_eq!(decide(Policy::Naive, false, Pinned::LongTerm), Write);
        assert_eq!(decide(Policy::Bounce, false, Pinned::ShortTerm), Bounce);
    }

    #[test]
    fn integrity_table() {
        let rows = [
            (Policy::Naive, [Write, Write, Write]),
            (Policy::Skip, [Skip, Skip, Skip]),
            (Policy::Wait, [Wait, Wait, Wait]),
            (Policy::Bounce, [Bounce, Bounce, Bounce]),
            (Policy::Fail, [Wait, Fail, Fail]),
            (Policy::Auto, [Wait, Bounce, Bounce]),
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
    fn only_long_term_pins_are_possibly_dirty_at_integrity_sync() {
        assert!(possibly_dirty(true, Pinned::LongTerm));
        assert!(possibly_dirty(true, Pinned::Foreign));
        assert!(!possibly_dirty(true, Pinned::ShortTerm));
        assert!(!possibly_dirty(true, Pinned::No));
        assert!(!possibly_dirty(false, Pinned::LongTerm));
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
        assert_eq!(Policy::from_u32(6), None);
    }
}
