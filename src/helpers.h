/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C wrappers for static inline functions and macros that Rust cannot call
 * through kernel::bindings. Nothing else belongs here.
 */
#ifndef PINWB_HELPERS_H
#define PINWB_HELPERS_H

#include <linux/types.h>

struct page;

bool pinwb_page_maybe_dma_pinned(struct page *page);

#endif /* PINWB_HELPERS_H */
