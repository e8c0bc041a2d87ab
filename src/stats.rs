// SPDX-License-Identifier: GPL-2.0

//! Counters, and the debugfs directory `/sys/kernel/debug/pinwb/` that shows
//! them.

use crate::{defs, device, module_parameters, PINWB_VERSION};
use core::fmt;
use kernel::{
    debugfs::Scope,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
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
}

pub(crate) static COUNTERS: Counters = Counters {
    pins_active: Atomic::new(0),
    pages_pinned: Atomic::new(0),
    pages_pinned_peak: Atomic::new(0),
    pin_calls: Atomic::new(0),
    pin_errors: Atomic::new(0),
    unpin_calls: Atomic::new(0),
    pages_unpinned_dirty: Atomic::new(0),
};

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
        // The limits (module parameters, which 7.3's Rust modules cannot show in sysfs).
        dir.read_callback_file(c"max_pages_per_pin", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pages_per_pin.value())
        });
        dir.read_callback_file(c"max_pins_per_file", &(), &|&(), f| {
            writeln!(f, "{}", module_parameters::max_pins_per_file.value())
        });
    })
}
