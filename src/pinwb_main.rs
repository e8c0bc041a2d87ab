// SPDX-License-Identifier: GPL-2.0

//! pinwb: pin user pages the way DMA drivers do, and make visible what page
//! cache writeback does with them.
//!
//! This file is the crate root: the module's lifetime. Each concept lives in
//! its own file:
//!
//! - [`defs`]: the ioctl ABI, generated from `include/uapi/pinwb.h`.
//! - [`policy`]: what writeback does with a pinned folio (pure decisions).
//! - [`fs`], [`file`], [`aops`]: pinwbfs, the test filesystem, its files and
//!   its `address_space_operations` (writeback with the policies).
//! - [`store`]: pinwbfs's backing store and its checksummed IO.
//! - [`flusher`]: pinwbfs's cleaning writeback on default mounts.
//! - [`request`]: validation of ioctl arguments, page arithmetic.
//! - [`pin`]: one pin: gup, `pinned_vm` accounting, release.
//! - [`dma`]: the simulated device writing into pinned pages.
//! - [`folio_index`]: which folios pinwb pins, long- or short-term.
//! - [`device`]: `/dev/pinwb` and the pins each open file owns.
//! - [`helpers`]: the C wrappers of `helpers.c`.
//! - [`stats`]: counters and knobs.
//! - [`trace`]: the trace events of `pinwb_trace.h`.
//! - [`debugfs`]: the debugfs directory `/sys/kernel/debug/pinwb/`.

use kernel::{miscdevice::MiscDeviceRegistration, prelude::*};

mod aops;
mod debugfs;
mod defs;
mod device;
mod dma;
mod file;
mod flusher;
mod folio_index;
mod fs;
mod helpers;
mod pin;
mod policy;
mod request;
mod stats;
mod store;
mod trace;

module! {
    type: PinwbModule,
    name: "pinwb",
    authors: ["pinwb developers"],
    description: "Pinned user pages versus page cache writeback: test device and filesystem",
    license: "GPL",
    params: {
        max_pages_per_pin: u64 {
            default: 1 << 20,
            description: "Largest pin in pages (PINWB_IOC_PIN fails with E2BIG beyond it)",
        },
        max_pins_per_file: u32 {
            default: 16384,
            description: "Live pins per open file (PINWB_IOC_PIN fails with ENOSPC beyond it)",
        },
    },
}

/// The module's version, shown in debugfs beside the ABI version.
pub(crate) const PINWB_VERSION: &str = "0.4.0";

#[pin_data(PinnedDrop)]
struct PinwbModule {
    // Fields drop in declaration order. debugfs goes first (it is created
    // last), so its callbacks never run without the device and the
    // filesystem. No pin can be live at exit: every open file holds a
    // reference on the module.
    #[pin]
    _debugfs: debugfs::Debugfs,
    #[pin]
    _miscdev: MiscDeviceRegistration<device::PinwbFile>,
    // Nothing can be mounted at exit either: a mount holds a module reference.
    #[pin]
    _fs: fs::Registration,
}

impl kernel::InPlaceModule for PinwbModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: Module init runs once, before anything can use these globals.
        unsafe {
            folio_index::INDEX.init();
            device::init();
        }
        try_pin_init!(Self {
            // SAFETY: Called once, from module init.
            _fs <- unsafe { fs::Registration::new(module) },
            _miscdev <- device::register(),
            _debugfs <- debugfs::create(),
        })
        .pin_chain(|_| {
            // SAFETY: Once, after the filesystem exists; stopped in drop. A `flush_period_ms`
            // write before this finds the flusher not started and leaves it alone.
            unsafe { flusher::start() };
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for PinwbModule {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Module exit: no file is open (each holds a module reference), so no pin
        // exists and nobody uses the index any more. The device and debugfs are removed
        // after this, when the fields drop; neither touches the index.
        unsafe { flusher::stop() };
        device::exit();
    }
}
