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
bool pinwb_page_is_anon(struct page *page);
unsigned long pinwb_page_folio_pfn(struct page *page);
void pinwb_put_page(struct page *page);
unsigned long pinwb_rlimit_memlock(void);
void *pinwb_xa_mk_value(unsigned long v);
unsigned long pinwb_xa_to_value(const void *entry);

#endif /* PINWB_HELPERS_H */
