// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers for static inlines; see helpers.h.
 */
#include <linux/mm.h>

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
