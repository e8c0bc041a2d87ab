// SPDX-License-Identifier: GPL-2.0
/*
 * The pinless device (seed 002, Weiny): instead of pinning, the simulated
 * device mirrors a range of a process's address space, as an HMM device
 * does (lib/test_hmm.c is the in-tree model). It registers an
 * mmu_interval_notifier on the range and, for every page it writes, takes
 * the page with hmm_range_fault() (faulting it in for writing) and writes
 * only while its mirror is valid: under its lock, after
 * mmu_interval_read_retry() said no invalidation came in between. An
 * invalidation (writeback's write-protect, reclaim, migration, munmap)
 * takes the same lock, so it waits for a write in progress and makes the
 * next one fault again: with write access, so the PTE and the folio are
 * dirty again, after page_mkwrite waited for writeback on a mount with
 * stable pages. The page is neither pinned nor referenced: while the lock
 * is held with a valid sequence it stays mapped, and so in its mapping.
 *
 * C because 7.3's Rust binds neither mmu notifiers nor HMM. The device's
 * loop, its patterns and its ioctls are Rust (src/dma.rs, src/pin.rs).
 */
#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "helpers.h"
#include "mirror.h"

#ifdef CONFIG_HMM_MIRROR

struct pinwb_mirror {
	struct mmu_interval_notifier notifier;
	/* Held while the device writes a page, and by every invalidation. */
	struct mutex lock;
	unsigned long start;
	/* Invalidations not yet reported by pinwb_mirror_write(). */
	atomic_t invalidations;
};

static bool pinwb_mirror_invalidate(struct mmu_interval_notifier *mni,
				    const struct mmu_notifier_range *range,
				    unsigned long cur_seq)
{
	struct pinwb_mirror *m = container_of(mni, struct pinwb_mirror, notifier);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&m->lock);
	else if (!mutex_trylock(&m->lock))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	mutex_unlock(&m->lock);
	atomic_inc(&m->invalidations);
	return true;
}

static const struct mmu_interval_notifier_ops pinwb_mirror_ops = {
	.invalidate = pinwb_mirror_invalidate,
};

void *pinwb_mirror_create(unsigned long start, unsigned long nr_pages)
{
	struct pinwb_mirror *m;
	int ret;

	if (!current->mm)
		return ERR_PTR(-EFAULT);
	m = kzalloc_obj(*m);
	if (!m)
		return ERR_PTR(-ENOMEM);
	mutex_init(&m->lock);
	m->start = start;
	ret = mmu_interval_notifier_insert(&m->notifier, current->mm, start,
					   nr_pages << PAGE_SHIFT, &pinwb_mirror_ops);
	if (ret) {
		kfree(m);
		return ERR_PTR(ret);
	}
	return m;
}

void pinwb_mirror_destroy(void *mirror)
{
	struct pinwb_mirror *m = mirror;

	mmu_interval_notifier_remove(&m->notifier);
	mutex_destroy(&m->lock);
	kfree(m);
}

int pinwb_mirror_write(void *mirror, unsigned long off, size_t n, u8 byte, u64 stamp,
		       bool stamp64)
{
	struct pinwb_mirror *m = mirror;
	struct mm_struct *mm = m->notifier.mm;
	unsigned long pfn, in_page = offset_in_page(off);
	struct hmm_range range = {
		.notifier	= &m->notifier,
		.start		= m->start + off - in_page,
		.end		= m->start + off - in_page + PAGE_SIZE,
		.hmm_pfns	= &pfn,
		.default_flags	= HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
	};
	int ret;
	struct page *page;
	void *addr;

	if (in_page + n > PAGE_SIZE)
		return -EINVAL;
	/* The process is gone: nothing is mapped any more. */
	if (!mmget_not_zero(mm))
		return -EFAULT;
	for (;;) {
		ret = hmm_range_fault_unlocked_timeout(&range,
						       msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT));
		if (ret)
			break;
		mutex_lock(&m->lock);
		if (mmu_interval_read_retry(&m->notifier, range.notifier_seq)) {
			mutex_unlock(&m->lock);
			continue;
		}
		/*
		 * Valid until an invalidation, which waits for the lock: the page
		 * stays mapped, so neither truncation nor reclaim can take it from
		 * its mapping meanwhile (as for a page table's own reference).
		 */
		page = hmm_pfn_to_page(pfn);
		addr = kmap_local_page(page) + in_page;
		if (stamp64)
			pinwb_dma_fill64(addr, stamp, n / 8);
		else
			pinwb_dma_fill(addr, byte, n);
		kunmap_local(addr);
		/*
		 * No folio_mark_dirty(): the page was faulted in for writing, and a
		 * writable PTE of a mapping that writes back means a dirty folio
		 * (write-notify; writeback write-protects it, through our
		 * invalidation, before it cleans the folio). On a pinwbfs mount
		 * without write-notify, folio_mkclean() counts a writable PTE as
		 * dirty.
		 */
		mutex_unlock(&m->lock);
		break;
	}
	mmput(mm);
	return ret ? ret : atomic_xchg(&m->invalidations, 0);
}

#else /* !CONFIG_HMM_MIRROR */

void *pinwb_mirror_create(unsigned long start, unsigned long nr_pages)
{
	return ERR_PTR(-EOPNOTSUPP);
}

void pinwb_mirror_destroy(void *mirror)
{
}

int pinwb_mirror_write(void *mirror, unsigned long off, size_t n, u8 byte, u64 stamp,
		       bool stamp64)
{
	return -EOPNOTSUPP;
}

#endif /* CONFIG_HMM_MIRROR */
