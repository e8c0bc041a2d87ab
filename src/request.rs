// SPDX-License-Identifier: GPL-2.0

//! Validation of ioctl arguments and the page arithmetic of a byte range.
//!
//! Pure functions: no locks, no allocation, no user memory. They decide every
//! `EINVAL`/`E2BIG` of the ABI (Documentation/pinwb.rst has the table) and are
//! unit-tested with KUnit below.

use crate::defs::{
    pinwb_pin, pinwb_unpin, PINWB_PIN_FAST, PINWB_PIN_FLAGS, PINWB_PIN_GET, PINWB_PIN_LONGTERM,
    PINWB_PIN_MIRROR, PINWB_PIN_WRITE, PINWB_UNPIN_DIRTY, PINWB_UNPIN_FLAGS,
};
use kernel::{bindings, page::PAGE_SHIFT, prelude::*};

/// How the pages of a pin are taken, and how they must be given back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `FOLL_PIN | FOLL_LONGTERM`: released with `unpin_user_pages*()`.
    LongTerm,
    /// `FOLL_PIN`: released with `unpin_user_pages*()`.
    ShortTerm,
    /// `get_user_pages*()` references (no `FOLL_PIN`): released with `put_page()`.
    /// Invisible to `folio_maybe_dma_pinned()` and so to writeback.
    Get,
    /// Nothing held: the device mirrors the range (`PINWB_PIN_MIRROR`).
    Mirror,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::LongTerm => "longterm",
            Kind::ShortTerm => "shortterm",
            Kind::Get => "get",
            Kind::Mirror => "mirror",
        }
    }
}

/// A validated `PINWB_IOC_PIN` request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PinRequest {
    /// The page-aligned address of the first page.
    pub(crate) start: usize,
    /// Every page that `[addr, addr + len)` touches.
    pub(crate) nr_pages: usize,
    pub(crate) kind: Kind,
    /// `FOLL_*` flags for gup.
    pub(crate) gup_flags: u32,
    /// Use the `_fast` variant of gup.
    pub(crate) fast: bool,
    /// `FOLL_WRITE`: a device may write into the pages.
    pub(crate) write: bool,
}

/// The pages that the byte range `[addr, addr + len)` touches: the first
/// page's address and the number of pages.
///
/// `EINVAL` for an empty range or one that wraps around the address space.
pub(crate) fn page_span(addr: u64, len: u64) -> Result<(u64, u64)> {
    if len == 0 {
        return Err(EINVAL);
    }
    let last = addr.checked_add(len - 1).ok_or(EINVAL)?;
    let first_pfn = addr >> PAGE_SHIFT;
    let last_pfn = last >> PAGE_SHIFT;
    Ok((first_pfn << PAGE_SHIFT, last_pfn - first_pfn + 1))
}

/// Validates a `PINWB_IOC_PIN` argument against the per-pin page limit.
pub(crate) fn validate_pin(args: &pinwb_pin, max_pages: u64) -> Result<PinRequest> {
    if args.reserved.iter().any(|&r| r != 0) || args.flags & !PINWB_PIN_FLAGS != 0 {
        return Err(EINVAL);
    }
    let longterm = args.flags & PINWB_PIN_LONGTERM != 0;
    let get = args.flags & PINWB_PIN_GET != 0;
    let mirror = args.flags & PINWB_PIN_MIRROR != 0;
    if get && longterm {
        // FOLL_LONGTERM is only defined for FOLL_PIN.
        return Err(EINVAL);
    }
    if mirror && args.flags & !(PINWB_PIN_MIRROR | PINWB_PIN_WRITE) != 0 {
        // A mirror pins nothing: no gup variant applies.
        return Err(EINVAL);
    }
    let (start, nr_pages) = page_span(args.addr, args.len)?;
    if nr_pages > max_pages {
        return Err(E2BIG);
    }
    let mut gup_flags = 0;
    if args.flags & PINWB_PIN_WRITE != 0 {
        gup_flags |= bindings::FOLL_WRITE;
    }
    if longterm {
        gup_flags |= bindings::FOLL_LONGTERM;
    }
    let kind = match (mirror, get, longterm) {
        (true, _, _) => Kind::Mirror,
        (false, true, _) => Kind::Get,
        (false, false, true) => Kind::LongTerm,
        (false, false, false) => Kind::ShortTerm,
    };
    Ok(PinRequest {
        start: usize::try_from(start).map_err(|_| EINVAL)?,
        nr_pages: usize::try_from(nr_pages).map_err(|_| E2BIG)?,
        kind,
        gup_flags,
        fast: args.flags & PINWB_PIN_FAST != 0,
        write: args.flags & PINWB_PIN_WRITE != 0,
    })
}

/// Validates a `PINWB_IOC_UNPIN` argument: the handle and whether to dirty.
pub(crate) fn validate_unpin(args: &pinwb_unpin) -> Result<(u32, bool)> {
    if args.reserved.iter().any(|&r| r != 0) || args.flags & !PINWB_UNPIN_FLAGS != 0 {
        return Err(EINVAL);
    }
    if args.handle == 0 {
        return Err(ENOENT);
    }
    Ok((args.handle, args.flags & PINWB_UNPIN_DIRTY != 0))
}

#[kunit_tests(pinwb_request)]
mod tests {
    use super::*;
    use kernel::page::PAGE_SIZE;

    const P: u64 = PAGE_SIZE as u64;

    fn pin(addr: u64, len: u64, flags: u32) -> pinwb_pin {
        pinwb_pin {
            addr,
            len,
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn span_counts_every_touched_page() {
        assert_eq!(page_span(0, 1), Ok((0, 1)));
        assert_eq!(page_span(0, P), Ok((0, 1)));
        assert_eq!(page_span(0, P + 1), Ok((0, 2)));
        assert_eq!(page_span(P - 1, 2), Ok((0, 2)));
        assert_eq!(page_span(3 * P + 5, 2 * P), Ok((3 * P, 3)));
        assert_eq!(page_span(u64::MAX, 1), Ok((!(P - 1), 1)));
    }

    #[test]
    fn span_rejects_empty_and_wrapping_ranges() {
        assert_eq!(page_span(P, 0), Err(EINVAL));
        assert_eq!(page_span(u64::MAX, 2), Err(EINVAL));
        assert_eq!(page_span(u64::MAX - P, 2 * P), Err(EINVAL));
    }

    #[test]
    fn pin_flags_map_to_gup() {
        let r = validate_pin(&pin(P, P, PINWB_PIN_LONGTERM | PINWB_PIN_WRITE), 16).unwrap();
        assert_eq!(r.kind, Kind::LongTerm);
        assert_eq!(r.gup_flags, bindings::FOLL_LONGTERM | bindings::FOLL_WRITE);
        assert!(!r.fast);
        assert!(r.write);
        let r = validate_pin(&pin(P, P, PINWB_PIN_LONGTERM), 16).unwrap();
        assert_eq!(r.kind, Kind::LongTerm);
        assert!(!r.write);
        let r = validate_pin(&pin(P, P, PINWB_PIN_FAST), 16).unwrap();
        assert_eq!(r.kind, Kind::ShortTerm);
        assert_eq!(r.gup_flags, 0);
        assert!(r.fast);
        let r = validate_pin(&pin(P, P, PINWB_PIN_GET | PINWB_PIN_WRITE), 16).unwrap();
        assert_eq!(r.kind, Kind::Get);
        assert_eq!(r.gup_flags, bindings::FOLL_WRITE);
        let r = validate_pin(&pin(P, 2 * P, PINWB_PIN_MIRROR | PINWB_PIN_WRITE), 16).unwrap();
        assert_eq!((r.kind, r.nr_pages, r.write), (Kind::Mirror, 2, true));
    }

    #[test]
    fn a_mirror_takes_no_gup_flag() {
        for f in [PINWB_PIN_LONGTERM, PINWB_PIN_FAST, PINWB_PIN_GET] {
            assert_eq!(
                validate_pin(&pin(P, P, PINWB_PIN_MIRROR | f), 16),
                Err(EINVAL)
            );
        }
        assert_eq!(
            validate_pin(&pin(P, 17 * P, PINWB_PIN_MIRROR), 16),
            Err(E2BIG)
        );
    }

    #[test]
    fn pin_rejects_bad_arguments() {
        assert_eq!(validate_pin(&pin(P, 0, 0), 16), Err(EINVAL));
        assert_eq!(validate_pin(&pin(P, P, 1 << 31), 16), Err(EINVAL));
        assert_eq!(
            validate_pin(&pin(P, P, PINWB_PIN_FLAGS + 1), 16),
            Err(EINVAL)
        );
        assert_eq!(
            validate_pin(&pin(P, P, PINWB_PIN_GET | PINWB_PIN_LONGTERM), 16),
            Err(EINVAL)
        );
        assert_eq!(validate_pin(&pin(u64::MAX - 1, 4, 0), 16), Err(EINVAL));
        let mut a = pin(P, P, 0);
        a.reserved[3] = 1;
        assert_eq!(validate_pin(&a, 16), Err(EINVAL));
    }

    #[test]
    fn pin_page_limit_is_e2big() {
        assert_eq!(
            validate_pin(&pin(0, 16 * P, 0), 16).map(|r| r.nr_pages),
            Ok(16)
        );
        assert_eq!(validate_pin(&pin(1, 16 * P, 0), 16), Err(E2BIG));
        assert_eq!(validate_pin(&pin(0, u64::MAX, 0), 16), Err(E2BIG));
    }

    #[test]
    fn unpin_arguments() {
        let a = pinwb_unpin {
            handle: 7,
            flags: PINWB_UNPIN_DIRTY,
            ..Default::default()
        };
        assert_eq!(validate_unpin(&a), Ok((7, true)));
        assert_eq!(validate_unpin(&pinwb_unpin { handle: 0, ..a }), Err(ENOENT));
        assert_eq!(validate_unpin(&pinwb_unpin { flags: 2, ..a }), Err(EINVAL));
        let mut b = a;
        b.reserved[1] = 9;
        assert_eq!(validate_unpin(&b), Err(EINVAL));
    }
}
