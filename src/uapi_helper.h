/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of the module's own bindgen run (Kbuild: src/uapi_generated.rs).
 *
 * bindgen cannot evaluate function-like macros such as _IOWR(), so each ioctl
 * number is given to it as a constant; the RUST_CONST_HELPER_ prefix is
 * stripped afterwards, as rust/bindings/bindings_helper.h does in-tree.
 */
#include "../include/uapi/pinwb.h"

const __u32 RUST_CONST_HELPER_PINWB_IOC_VERSION = PINWB_IOC_VERSION;
const __u32 RUST_CONST_HELPER_PINWB_IOC_PIN = PINWB_IOC_PIN;
const __u32 RUST_CONST_HELPER_PINWB_IOC_UNPIN = PINWB_IOC_UNPIN;
const __u32 RUST_CONST_HELPER_PINWB_IOC_QUERY = PINWB_IOC_QUERY;
const __u32 RUST_CONST_HELPER_PINWB_IOC_PAGE_STATE = PINWB_IOC_PAGE_STATE;
const __u32 RUST_CONST_HELPER_PINWB_IOC_DMA_START = PINWB_IOC_DMA_START;
const __u32 RUST_CONST_HELPER_PINWB_IOC_DMA_STOP = PINWB_IOC_DMA_STOP;
const __u32 RUST_CONST_HELPER_PINWBFS_IOC_READ_STORE = PINWBFS_IOC_READ_STORE;
