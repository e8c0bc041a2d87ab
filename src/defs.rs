// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/pinwb`.
//!
//! Everything here comes from `include/uapi/pinwb.h` through the module's own
//! bindgen run (see `Kbuild`), so userspace and the module cannot drift apart.
//! bindgen's layout tests are kept: they assert each Rust struct against
//! clang's layout of the C struct at build time.

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

pub(crate) use generated::{
    pinwb_dma, pinwb_page_state, pinwb_pin, pinwb_query, pinwb_unpin, pinwbfs_read_store,
    PINWBFS_IOC_READ_STORE, PINWB_ABI_VERSION, PINWB_DMA_FLAGS, PINWB_DMA_MAX_INTERVAL_US,
    PINWB_DMA_STAMP64, PINWB_IOC_DMA_START, PINWB_IOC_DMA_STOP, PINWB_IOC_PAGE_STATE,
    PINWB_IOC_PIN, PINWB_IOC_QUERY, PINWB_IOC_UNPIN, PINWB_IOC_VERSION, PINWB_PAGE_ANON,
    PINWB_PAGE_DMA_PINNED, PINWB_PIN_FAST, PINWB_PIN_FLAGS, PINWB_PIN_GET, PINWB_PIN_LONGTERM,
    PINWB_PIN_MIRROR, PINWB_PIN_WRITE, PINWB_UNPIN_DIRTY, PINWB_UNPIN_FLAGS,
};

use kernel::transmute::{AsBytes, FromBytes};

/// Implements the byte-copy traits for ABI structs.
macro_rules! abi_struct {
    ($($t:ty),*) => {$(
        // SAFETY: `$t` is `repr(C)`, has only integer fields and, as the uapi header is written
        // and bindgen's layout tests assert, no padding: every bit pattern is a valid value and
        // no byte is uninitialised.
        unsafe impl FromBytes for $t {}
        // SAFETY: As above.
        unsafe impl AsBytes for $t {}
    )*};
}
abi_struct!(
    pinwb_pin,
    pinwb_unpin,
    pinwb_query,
    pinwb_page_state,
    pinwb_dma,
    pinwbfs_read_store
);
