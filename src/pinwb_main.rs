// SPDX-License-Identifier: GPL-2.0

//! pinwb: pin user pages the way DMA drivers do, and make visible what page
//! cache writeback does with them.
//!
//! This file is the crate root: the module's lifetime. Each concept lives in
//! its own file:
//!
//! - [`defs`]: the ioctl ABI, generated from `include/uapi/pinwb.h`.
//! - [`device`]: `/dev/pinwb`, one [`device::PinwbFile`] per open file.
//! - [`stats`]: the debugfs directory `/sys/kernel/debug/pinwb/`.

use kernel::{miscdevice::MiscDeviceRegistration, prelude::*};

mod defs;
mod device;
mod stats;

module! {
    type: PinwbModule,
    name: "pinwb",
    authors: ["pinwb developers"],
    description: "Pinned user pages versus page cache writeback: test device and filesystem",
    license: "GPL",
}

/// The module's version, shown in debugfs beside the ABI version.
pub(crate) const PINWB_VERSION: &str = "0.1.0";

#[pin_data]
struct PinwbModule {
    // Fields drop in declaration order: the device goes first, so no new open
    // can find a half-removed debugfs directory.
    #[pin]
    _miscdev: MiscDeviceRegistration<device::PinwbFile>,
    #[pin]
    _stats: stats::Stats,
}

impl kernel::InPlaceModule for PinwbModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _stats <- stats::Stats::new(),
            _miscdev <- device::register(),
        })
    }
}
