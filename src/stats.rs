// SPDX-License-Identifier: GPL-2.0

//! Counters and knobs: a leaf that imports nothing of the module but the
//! policy names. `debugfs.rs` shows them.
//!
//! They are `static`s, the one module state that is global: every path
//! reads or bumps them, including C-called callbacks with no context at
//! hand, and plain atomics need no set-up or tear-down.

use crate::policy::Policy;
use kernel::{
    prelude::*,
    str::CStr,
    sync::atomic::{Atomic, Relaxed},
};

/// Largest `io_delay_us` (1 s).
pub(crate) const MAX_IO_DELAY_US: u64 = 1_000_000;
/// Largest `flush_period_ms` (1 h).
pub(crate) const MAX_FLUSH_PERIOD_MS: u64 = 3_600_000;
/// Largest `wait_timeout_ms` (10 min).
pub(crate) const MAX_WAIT_TIMEOUT_MS: u64 = 600_000;

/// Defines [`Counters`], the static [`COUNTERS`] (all zero), and
/// [`Counters::each`], which debugfs uses to show each under its own name:
/// every name is written once.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Module-wide counters, each shown in debugfs under its name.
        /// Monotonic ones count events since load; `pins_active`,
        /// `pages_pinned` are levels and `*_peak` the highest level seen.
        pub(crate) struct Counters {
            $($(#[$doc])* pub(crate) $name: Atomic<u64>,)*
        }

        pub(crate) static COUNTERS: Counters = Counters {
            $($name: Atomic::new(0),)*
        };

        impl Counters {
            /// Calls `f` with every counter and its debugfs name.
            pub(crate) fn each(&'static self, mut f: impl FnMut(&'static CStr, &'static Atomic<u64>)) {
                $(f(kernel::c_str!(stringify!($name)), &self.$name);)*
            }
        }
    };
}

counters! {
    pins_active,
    pages_pinned,
    pages_pinned_peak,
    pin_calls,
    pin_errors,
    unpin_calls,
    pages_unpinned_dirty,
    // pinwbfs writeback
    writepages_none,
    writepages_all,
    folios_written,
    pinned_seen,
    foreign_seen,
    skipped,
    waited,
    wait_ns,
    wait_timeouts,
    bounced,
    bounced_bytes,
    sync_errors,
    torn_writes,
    redirtied_pinned,
    redirtied_mapped,
    dma_bytes,
    /// Reads of a stored page that failed its checksum (`EIO`).
    csum_errors,
    /// Store writes that failed (injected); the folio stayed dirty.
    store_errors,
    /// Most folios one writeback ever had in flight at once.
    io_inflight_peak,
    /// Dirty folios dropped when an inode was evicted (umount, last unlink).
    dirty_dropped_at_evict,
    /// `direct`: pinned folios copied straight to the store at sync.
    direct_writes,
    /// `defer`: pinned dirty folios left for after their unpin.
    deferred,
    /// `cow`: blocks reserved when a folio became dirty (write, page_mkwrite).
    reserved,
    /// `cow`: folios written back without a reservation: dirtied where no
    /// reservation was taken (pins, the possibly-dirty pre-pass, a PTE harvest,
    /// bounce's and direct's keep-dirty).
    unreserved_dirty,
    /// `cow`: writes that found no free block at writeback (`ENOSPC` then,
    /// not when the data was written).
    enospc_at_writeback,
    /// The pinless device: invalidations of its mirrors (writeback's
    /// write-protect, reclaim, munmap); after each it faults pages in again.
    mirror_invalidations,
    /// The pinless device: writers that stopped because their range could
    /// not be faulted in any more (unmapped, or the process gone).
    mirror_write_errors,
}

/// Knobs, writable in debugfs (root only).
pub(crate) struct Tunables {
    /// The policy of pinwbfs mounts without `policy=` (a [`Policy`] as u32).
    pub(crate) policy: Atomic<u32>,
    /// Simulated device latency of every write to a backing store.
    pub(crate) io_delay_us: Atomic<u64>,
    /// Period of the cleaning (WB_SYNC_NONE) flusher; 0 stops it.
    pub(crate) flush_period_ms: Atomic<u64>,
    /// Longest wait for pins to go, per sync (`wait`, `auto`, `fail`).
    pub(crate) wait_timeout_ms: Atomic<u64>,
    /// Fault injection: this many next store writes fail with `EIO`.
    pub(crate) inject_store_errors: Atomic<u64>,
}

pub(crate) static TUNABLES: Tunables = Tunables {
    policy: Atomic::new(Policy::Naive as u32),
    io_delay_us: Atomic::new(1000),
    flush_period_ms: Atomic::new(1000),
    wait_timeout_ms: Atomic::new(5000),
    inject_store_errors: Atomic::new(0),
};

impl Tunables {
    pub(crate) fn policy(&self) -> Policy {
        Policy::from_u32(self.policy.load(Relaxed)).unwrap_or(Policy::Naive)
    }
}

/// Raises the level `peak` to `now` if `now` is higher (a concurrent
/// raise may win; the higher value stays).
pub(crate) fn raise_peak(peak: &Atomic<u64>, now: u64) {
    let mut seen = peak.load(Relaxed);
    while now > seen {
        match peak.cmpxchg(seen, now, Relaxed) {
            Ok(_) => break,
            Err(s) => seen = s,
        }
    }
}

impl Counters {
    /// A pin of `pages` pages was made.
    pub(crate) fn pinned(&self, pages: usize) {
        self.pins_active.add(1, Relaxed);
        let now = self.pages_pinned.fetch_add(pages as u64, Relaxed) + pages as u64;
        raise_peak(&self.pages_pinned_peak, now);
    }

    /// A pin of `pages` pages was released.
    pub(crate) fn unpinned(&self, pages: usize) {
        self.pins_active.fetch_sub(1, Relaxed);
        self.pages_pinned.fetch_sub(pages as u64, Relaxed);
    }
}

/// Parses a decimal knob value (one trailing newline allowed) no larger
/// than `max`: `EINVAL` otherwise.
pub(crate) fn parse_knob(buf: &[u8], max: u64) -> Result<u64> {
    let s = buf.strip_suffix(b"\n").unwrap_or(buf);
    if s.is_empty() || s.len() > 20 {
        return Err(EINVAL);
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(EINVAL);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(EINVAL)?;
    }
    if v > max {
        return Err(EINVAL);
    }
    Ok(v)
}

#[kunit_tests(pinwb_stats)]
mod tests {
    use super::*;

    #[test]
    fn knobs_parse_in_range_and_refuse_the_rest() {
        assert_eq!(parse_knob(b"0", 10), Ok(0));
        assert_eq!(parse_knob(b"10\n", 10), Ok(10));
        assert_eq!(parse_knob(b"11", 10), Err(EINVAL));
        assert_eq!(parse_knob(b"", 10), Err(EINVAL));
        assert_eq!(parse_knob(b"\n", 10), Err(EINVAL));
        assert_eq!(parse_knob(b"-1", 10), Err(EINVAL));
        assert_eq!(parse_knob(b"1 ", 10), Err(EINVAL));
        assert_eq!(parse_knob(b"0x10", 100), Err(EINVAL));
        assert_eq!(parse_knob(b"18446744073709551615", u64::MAX), Ok(u64::MAX));
        assert_eq!(parse_knob(b"18446744073709551616", u64::MAX), Err(EINVAL));
        assert_eq!(
            parse_knob(b"9223372036854775808", MAX_WAIT_TIMEOUT_MS),
            Err(EINVAL)
        );
    }
}
