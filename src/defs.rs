// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/pinwb`.
//!
//! Everything here comes from `include/uapi/pinwb.h` through the module's own
//! bindgen run (see `Kbuild`), so userspace and the module cannot drift apart.

#[allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unreachable_pub
)]
mod generated {
    use kernel::ffi;
    include!("uapi_generated.rs");
}

pub(crate) use generated::{PINWB_ABI_VERSION, PINWB_IOC_VERSION};
