// SPDX-License-Identifier: GPL-2.0

//! The debugfs directory `/sys/kernel/debug/pinwb/`.

use crate::{defs, PINWB_VERSION};
use core::fmt;
use kernel::{debugfs, prelude::*};

/// What `/sys/kernel/debug/pinwb/version` shows.
struct Version;

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pinwb {PINWB_VERSION} abi {}", defs::PINWB_ABI_VERSION)
    }
}

/// The debugfs directory and its files; dropping it removes them all.
#[pin_data]
pub(crate) struct Stats {
    #[pin]
    _version: debugfs::File<Version>,
    _dir: debugfs::Dir,
}

impl Stats {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        let dir = debugfs::Dir::new(c"pinwb");
        try_pin_init!(Self {
            _version <- dir.read_only_file(c"version", Version),
            _dir: dir,
        })
    }
}
