// SPDX-License-Identifier: GPL-2.0

//! Counters, and the debugfs directory `/sys/kernel/debug/pinwb/` that shows
//! them.

use crate::{defs, device, flusher, module_parameters, policy::Policy, PINWB_VERSION};
use core::fmt;
use kernel::{
    debugfs::Scope,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    uaccess::UserSliceReader,
};

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
};

/// Knobs, writable in debugfs (root only).
pub(crate) struct Tunables {
    /// The policy of pinwbfs mounts without `policy=` (a [`Policy`] as u32).
    pub(crate) policy: Atomic<u32>,
    /// Simulated device latency of every write to a backing store.
    pub(crate) io_delay_us: Atomic<u64>,
    /// Period of the cleaning (WB_SYNC_NONE) flusher; 0 stops it.
    pub(crate) flush_period_ms: Atomic<u64>,
    /// Longest wait for a pin to go (`wait`, `auto`, `fail` policies).
    pub(crate) wait_timeout_ms: Atomic<u64>,
}

pub(crate) static TUNABLES: Tunables = Tunables {
    policy: Atomic::new(Policy::Naive as u32),
    io_delay_us: Atomic::new(1000),
    flush_period_ms: Atomic::new(1000),
    wait_timeout_ms: Atomic::new(5000),
};

impl Tunables {
    pub(crate) fn policy(&self) -> Policy {
        Policy::from_u32(self.policy.load(Relaxed)).unwrap_or(Policy::Naive)
    }
}

impl Counters {
    /// A pin of `pages` pages was made.
    pub(crate) fn pinned(&self, pages: usize) {
        self.pins_active.add(1, Relaxed);
        let now = self.pages_pinned.fetch_add(pages as u64, Relaxed) + pages as u64;
        let mut peak = self.pages_pinned_peak.load(Relaxed);
        while now > peak {
            match self.pages_pinned_peak.cmpxchg(peak, now, Relaxed) {
                Ok(_) => break,
                Err(seen) => peak = seen,
            }
        }
    }

    /// A pin of `pages` pages was released.
    pub(crate) fn unpinned(&self, pages: usize) {
        self.pins_active.fetch_sub(1, Relaxed);
        self.pages_pinned.fetch_sub(pages as u64, Relaxed);
    }
}

/// `policy` shows every policy, the current one in brackets.
fn show_policy(p: &Atomic<u32>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let cur = Policy::from_u32(p.load(Relaxed));
    for (i, q) in crate::policy::POLICIES.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        if Some(*q) == cur {
            write!(f, "{sep}[{}]", q.name())?;
        } else {
            write!(f, "{sep}{}", q.name())?;
        }
    }
    writeln!(f)
}

fn set_policy(p: &Atomic<u32>, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let n = r.len();
    if n == 0 || n > buf.len() {
        return Err(EINVAL);
    }
    r.read_slice(&mut buf[..n])?;
    p.store(Policy::parse(&buf[..n])? as u32, Relaxed);
    Ok(())
}

/// What `version` shows.
struct Version;

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pinwb {PINWB_VERSION} abi {}", defs::PINWB_ABI_VERSION)
    }
}

static VERSION: Version = Version;

/// The debugfs directory; dropping it removes every file.
pub(crate) type Stats = Scope<()>;

/// Creates `/sys/kernel/debug/pinwb/` and its files.
pub(crate) fn create() -> impl PinInit<Stats> {
    Scope::dir((), c"pinwb", |(), dir| {
        let c = &COUNTERS;
        dir.read_only_file(c"version", &VERSION);
        dir.read_only_file(c"pins_active", &c.pins_active);
        dir.read_only_file(c"pages_pinned", &c.pages_pinned);
        dir.read_only_file(c"pages_pinned_peak", &c.pages_pinned_peak);
        dir.read_only_file(c"pin_calls", &c.pin_calls);
        dir.read_only_file(c"pin_errors", &c.pin_errors);
        dir.read_only_file(c"unpin_calls", &c.unpin_calls);
        dir.read_only_file(c"pages_unpinned_dirty", &c.pages_unpinned_dirty);
        dir.read_callback_file(c"pins", &(), &|&(), f| device::show_pins(f));
        for (name, counter) in [
            (c"writepages_none", &c.writepages_none),
            (c"writepages_all", &c.writepages_all),
            (c"folios_written", &c.folios_written),
            (c"pinned_seen", &c.pinned_seen),
            (c"foreign_seen", &c.foreign_seen),
            (c"skipped", &c.skipped),
            (c"waited", &c.waited),
            (c"wait_ns", &c.wait_ns),
            (c"wait_timeouts", &c.wait_timeouts),
            (c"bounced", &c.bounced),
            (c"bounced_bytes", &c.bounced_bytes),
            (c"sync_errors", &c.sync_errors),
            (c"torn_writes", &c.torn_writes),
            (c"redirtied_pinned", &c.redirtied_pinned),
            (c"redirtied_mapped", &c.redirtied_mapped),
            (c"dma_bytes", &c.dma_bytes),
        ] {
            dir.read_only_file(name, counter);
        }
        let t = &TUNABLES;
        dir.read_write_file(c"io_delay_us", &t.io_delay_us);
        dir.read_write_file(c"flush_period_ms", &t.flush_period_ms);
        dir.read_write_file(c"wait_timeout_ms", &t.wait_timeout_ms);
        dir.read_write_callback_file(c"policy", &t.policy, &show_policy, &set_policy);
        dir.write_only_callback_file(c"flush_kick", &(), &|&(), _r: &mut UserSliceReader| {
            flusher::kick();
            Ok(())
        });
        // The limits (module parameters, which 7.3's Rust modules cannot show in sysfs).
        dir.read_callback_file(c"max_pages_per_pin", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pages_per_pin.value())
        });
        dir.read_callback_file(c"max_pins_per_file", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pins_per_file.value())
        });
    })
}
