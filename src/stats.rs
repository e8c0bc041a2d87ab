// SPDX-License-Identifier: GPL-2.0

//! Counters and knobs: a leaf that imports nothing of the module but the
//! policy names. `debugfs.rs` shows them.

use crate::policy::Policy;
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// Largest `io_delay_us` (1 s).
pub(crate) const MAX_IO_DELAY_US: u64 = 1_000_000;
/// Largest `flush_period_ms` (1 h).
pub(crate) const MAX_FLUSH_PERIOD_MS: u64 = 3_600_000;
/// Largest `wait_timeout_ms` (10 min).
pub(crate) const MAX_WAIT_TIMEOUT_MS: u64 = 600_000;

/// Module-wide counters. Monotonic ones count events since load; `*_now`
/// ones are levels.
pub(crate) struct Counters {
    pub(crate) pins_active: Atomic<u64>,
    pub(crate) pages_pinned: Atomic<u64>,
    pub(crate) pages_pinned_peak: Atomic<u64>,
    pub(crate) pin_calls: Atomic<u64>,
    pub(crate) pin_errors: Atomic<u64>,
    pub(crate) unpin_calls: Atomic<u64>,
    pub(crate) pages_unpinned_dirty: Atomic<u64>,
    // pinwbfs writeback
    pub(crate) writepages_none: Atomic<u64>,
    pub(crate) writepages_all: Atomic<u64>,
    pub(crate) folios_written: Atomic<u64>,
    pub(crate) pinned_seen: Atomic<u64>,
    pub(crate) foreign_seen: Atomic<u64>,
    pub(crate) skipped: Atomic<u64>,
    pub(crate) waited: Atomic<u64>,
    pub(crate) wait_ns: Atomic<u64>,
    pub(crate) wait_timeouts: Atomic<u64>,
    pub(crate) bounced: Atomic<u64>,
    pub(crate) bounced_bytes: Atomic<u64>,
    pub(crate) sync_errors: Atomic<u64>,
    pub(crate) torn_writes: Atomic<u64>,
    pub(crate) redirtied_pinned: Atomic<u64>,
    pub(crate) redirtied_mapped: Atomic<u64>,
    pub(crate) dma_bytes: Atomic<u64>,
    /// Reads of a stored page that failed its checksum (`EIO`).
    pub(crate) csum_errors: Atomic<u64>,
    /// Store writes that failed (injected); the folio stayed dirty.
    pub(crate) store_errors: Atomic<u64>,
    /// Most folios one writeback ever had in flight at once.
    pub(crate) io_inflight_peak: Atomic<u64>,
    /// Dirty folios dropped when an inode was evicted (umount, last unlink).
    pub(crate) dirty_dropped_at_evict: Atomic<u64>,
}

pub(crate) static COUNTERS: Counters = Counters {
    pins_active: Atomic::new(0),
    pages_pinned: Atomic::new(0),
    pages_pinned_peak: Atomic::new(0),
    pin_calls: Atomic::new(0),
    pin_errors: Atomic::new(0),
    unpin_calls: Atomic::new(0),
    pages_unpinned_dirty: Atomic::new(0),
    writepages_none: Atomic::new(0),
    writepages_all: Atomic::new(0),
    folios_written: Atomic::new(0),
    pinned_seen: Atomic::new(0),
    foreign_seen: Atomic::new(0),
    skipped: Atomic::new(0),
    waited: Atomic::new(0),
    wait_ns: Atomic::new(0),
    wait_timeouts: Atomic::new(0),
    bounced: Atomic::new(0),
    bounced_bytes: Atomic::new(0),
    sync_errors: Atomic::new(0),
    torn_writes: Atomic::new(0),
    redirtied_pinned: Atomic::new(0),
    redirtied_mapped: Atomic::new(0),
    dma_bytes: Atomic::new(0),
    csum_errors: Atomic::new(0),
    store_errors: Atomic::new(0),
    io_inflight_peak: Atomic::new(0),
    dirty_dropped_at_evict: Atomic::new(0),
};

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
