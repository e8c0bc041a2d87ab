// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers for static inlines; see helpers.h.
 */
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/xarray.h>

#include "helpers.h"

/*
 * folio_maybe_dma_pinned() of the folio that holds @page: what any writeback
 * path can know about pins (FOLL_PIN only; plain get_user_pages references
 * are invisible to it).
 */
bool pinwb_page_maybe_dma_pinned(struct page *page)
{
	return folio_maybe_dma_pinned(page_folio(page));
}

bool pinwb_page_is_anon(struct page *page)
{
	return folio_test_anon(page_folio(page));
}

unsigned long pinwb_page_folio_pfn(struct page *page)
{
	return folio_pfn(page_folio(page));
}

/* Only for references taken by get_user_pages*(), never for FOLL_PIN pins. */
void pinwb_put_page(struct page *page)
{
	put_page(page);
}

/* RLIMIT_MEMLOCK of current, in bytes (RLIM_INFINITY if unlimited). */
unsigned long pinwb_rlimit_memlock(void)
{
	return rlimit(RLIMIT_MEMLOCK);
}

void *pinwb_xa_mk_value(unsigned long v)
{
	return xa_mk_value(v);
}

unsigned long pinwb_xa_to_value(const void *entry)
{
	return xa_to_value(entry);
}
