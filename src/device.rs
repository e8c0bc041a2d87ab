// SPDX-License-Identifier: GPL-2.0

//! `/dev/pinwb`: the misc device and its ioctls.

use crate::defs;
use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
};

/// Registers `/dev/pinwb`.
///
/// The node is created by devtmpfs with its default mode, 0600 (root only):
/// `struct miscdevice::mode` stays 0 because pinning memory is a privileged
/// test facility.
pub(crate) fn register() -> impl PinInit<MiscDeviceRegistration<PinwbFile>, Error> {
    MiscDeviceRegistration::register(MiscDeviceOptions { name: c"pinwb" })
}

/// The state of one open file of `/dev/pinwb`.
pub(crate) struct PinwbFile;

#[vtable]
impl MiscDevice for PinwbFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        KBox::new(PinwbFile, GFP_KERNEL).map_err(Into::into)
    }

    fn ioctl(_me: &PinwbFile, _file: &File, cmd: u32, _arg: usize) -> Result<isize> {
        match cmd {
            defs::PINWB_IOC_VERSION => Ok(defs::PINWB_ABI_VERSION as isize),
            _ => Err(ENOTTY),
        }
    }
}
