// SPDX-License-Identifier: GPL-2.0
/*
 * C wrappers for static inlines; see helpers.h.
 */
#include <linux/crc32.h>
#include <linux/fs.h>
#include <linux/folio_batch.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/workqueue.h>

#include "helpers.h"

bool pinwb_folio_test_anon(struct folio *folio)
{
	return folio_test_anon(folio);
}

/* Only for references taken by get_user_pages*(), never for FOLL_PIN pins. */
void pinwb_put_page(struct page *page)
{
	put_page(page);
}

/* RLIMIT_MEMLOCK of current, in bytes (RLIM_INFINITY if unlimited). */
/*
 * Charges @pages to @mm->pinned_vm, as RDMA's ib_umem_get() does: refused
 * (-ENOMEM, nothing charged) beyond RLIMIT_MEMLOCK without CAP_IPC_LOCK.
 */
int pinwb_charge_pinned_vm(struct mm_struct *mm, unsigned long pages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	s64 now = atomic64_add_return(pages, &mm->pinned_vm);

	if (now > limit && !capable(CAP_IPC_LOCK)) {
		atomic64_sub(pages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}

void pinwb_uncharge_pinned_vm(struct mm_struct *mm, unsigned long pages)
{
	atomic64_sub(pages, &mm->pinned_vm);
}

/*
 * Whether @folio belongs to a mapping with @aops. A pin keeps the folio, not
 * its mapping: truncation may detach the folio and the inode be freed
 * meanwhile. Inodes are freed after an RCU grace period, so the caller reads
 * under rcu_read_lock(), which keeps the mapping valid to dereference until
 * the unlock (as gup_fast_folio_allowed() relies on). An anonymous folio is
 * rejected on its mapping's tag bits.
 */
static inline bool pinwb_folio_has_aops(const struct folio *folio,
					const struct address_space_operations *aops)
{
	struct address_space *mapping = READ_ONCE(folio->mapping);

	return mapping && !((unsigned long)mapping & FOLIO_MAPPING_FLAGS) &&
	       READ_ONCE(mapping->a_ops) == aops;
}

/*
 * Scans rather than per-page wrappers: they run over every page of every pin,
 * where page_folio() must inline and an anonymous folio must be rejected
 * without a call (make bench: two calls per page made pinning anonymous
 * memory 10-15 % dearer than gup_test's, and a call per pinwbfs page plus
 * marking it from Rust, pinwbfs memory 30 % dearer).
 */
size_t pinwb_pages_with_aops(struct page *const *pages, size_t n,
			     const struct address_space_operations *aops)
{
	size_t i;

	rcu_read_lock();
	for (i = 0; i < n; i++)
		if (pinwb_folio_has_aops(page_folio(pages[i]), aops))
			break;
	rcu_read_unlock();
	return i;
}

/*
 * The per-page part of counting a new pin in pinwbfs folios (src/folio_index.rs
 * owns the encoding and the locking), in one pass from @from, the first pinwbfs
 * page: marks in @bits every page whose folio belongs to a mapping with @aops,
 * adds @delta to that folio's ->private, and tests its PG_locked and
 * PG_writeback, after the barrier of pinwb_folios_wait_writeback(). Returns
 * whether one was set: then that function must run. Does not sleep.
 */
bool pinwb_folios_count_pin(struct page *const *pages, size_t n, size_t from,
			    const struct address_space_operations *aops, unsigned long *bits,
			    long delta)
{
	bool busy = false;

	/* Orders gup's pin counts before the flag tests: see pinwb_folios_wait_writeback(). */
	smp_mb();
	rcu_read_lock();
	for (; from < n; from++) {
		struct folio *folio = page_folio(pages[from]);

		if (!pinwb_folio_has_aops(folio, aops))
			continue;
		__set_bit(from, bits);
		/* Under the index's lock; classify() reads it locklessly, with READ_ONCE. */
		WRITE_ONCE(folio->private, (void *)((unsigned long)folio->private + delta));
		/* Acquire: a clear PG_locked orders the PG_writeback test after the unlock. */
		busy |= smp_load_acquire(const_folio_flags(folio, 0)) &
			(BIT(PG_locked) | BIT(PG_writeback));
	}
	rcu_read_unlock();
	return busy;
}

/*
 * Takes a released pin's pages out of the counts: adds @delta to ->private of
 * the folio of every page whose bit is set. Under the index's lock.
 */
void pinwb_folios_private_add(struct page *const *pages, size_t n, const unsigned long *bits,
			      long delta)
{
	unsigned long i;

	for_each_set_bit(i, bits, n) {
		struct folio *folio = page_folio(pages[i]);

		WRITE_ONCE(folio->private, (void *)((unsigned long)folio->private + delta));
	}
}

u32 pinwb_page_crc32c(const void *addr)
{
	/* Racy by design: see helpers.h. */
	return data_race(crc32c(~0, addr, PAGE_SIZE));
}

void pinwb_page_copy(void *dst, const void *src)
{
	/* Racy by design: see helpers.h. */
	data_race(memcpy(dst, src, PAGE_SIZE));
}

void pinwb_page_zero(void *dst)
{
	/* Racy by design: see helpers.h. */
	data_race(memset(dst, 0, PAGE_SIZE));
}

void pinwb_dma_fill(void *dst, u8 byte, size_t n)
{
	/* Racy by design: see helpers.h. */
	data_race(memset(dst, byte, n));
}

void pinwb_dma_fill64(u64 *dst, u64 stamp, size_t words)
{
	size_t i;

	/* One store per word: a reader sees each word old or new, never torn. */
	for (i = 0; i < words; i++)
		WRITE_ONCE(dst[i], stamp);
}

/*
 * The per-page part of making a new pin of pinwbfs folios wait for writeback
 * in flight (src/folio_index.rs explains why), as one scan.
 */
/*
 * A pin of pinwbfs folios must not be usable while one of them is under
 * writeback that did not see the pin: the device would write into a page
 * under IO. writepages decides "not pinned" and calls folio_start_writeback()
 * with the folio locked, and issues smp_mb() between taking the lock and its
 * folio_maybe_dma_pinned() test (FolioIndex::classify_for_writeback()). gup
 * raised the pin count before we get here; the smp_mb() below orders that
 * before our test of PG_locked. Store buffering, then: either writepages sees
 * the pin, or we see the folio locked by it (and wait the lock out, then the
 * writeback), or the unlock that ended its window already happened, and the
 * acquire read of the flags orders our PG_writeback test after it, so after
 * folio_start_writeback(). No folio lock is taken unless the folio is locked.
 * After we return, a new writepages window sees the pin.
 */
void pinwb_folios_wait_writeback(struct page *const *pages, size_t n, const unsigned long *bits)
{
	struct folio *prev = NULL;
	unsigned long i;

	/* Pairs with the smp_mb() of FolioIndex::classify_for_writeback(). */
	smp_mb();
	for_each_set_bit(i, bits, n) {
		struct folio *folio = page_folio(pages[i]);

		if (folio == prev)
			continue;
		prev = folio;
		if (test_bit_acquire(PG_locked, const_folio_flags(folio, 0))) {
			folio_lock(folio);
			folio_wait_writeback(folio);
			folio_unlock(folio);
		} else {
			/* A reference is enough to wait (folio_wait_writeback()). */
			folio_wait_writeback(folio);
		}
	}
}

struct folio *pinwb_page_folio(struct page *page)
{
	return page_folio(page);
}




/*
 * What any writeback path can know about pins: FOLL_PIN only; plain
 * get_user_pages() references are invisible to it.
 */
bool pinwb_folio_maybe_dma_pinned(struct folio *folio)
{
	return folio_maybe_dma_pinned(folio);
}

void pinwb_folio_lock(struct folio *folio)
{
	folio_lock(folio);
}

bool pinwb_folio_test_uptodate(struct folio *folio)
{
	return folio_test_uptodate(folio);
}

bool pinwb_folio_test_dirty(struct folio *folio)
{
	return folio_test_dirty(folio);
}

bool pinwb_folio_mapped(struct folio *folio)
{
	return folio_mapped(folio);
}

void pinwb_folio_mark_uptodate(struct folio *folio)
{
	folio_mark_uptodate(folio);
}

void pinwb_folio_put(struct folio *folio)
{
	folio_put(folio);
}

void pinwb_folio_get(struct folio *folio)
{
	folio_get(folio);
}

/*
 * How many FOLL_PIN pins the folio has, as folio_maybe_dma_pinned() counts
 * them: exactly for large folios, refcount / GUP_PIN_COUNTING_BIAS (an upper
 * estimate) for small ones.
 */
unsigned long pinwb_folio_dma_pins(struct folio *folio)
{
	if (folio_has_pincount(folio))
		return atomic_read(&folio->_pincount);
	return (unsigned int)folio_ref_count(folio) / GUP_PIN_COUNTING_BIAS;
}

void pinwb_folio_start_writeback(struct folio *folio)
{
	folio_start_writeback(folio);
}




void pinwb_folio_batch_release(struct folio_batch *fbatch)
{
	folio_batch_release(fbatch);
}


void pinwb_init_delayed_work(struct delayed_work *dwork, void (*func)(struct work_struct *))
{
	INIT_DELAYED_WORK(dwork, func);
}

/* queue_delayed_work() on system_unbound_wq. */
bool pinwb_queue_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	return queue_delayed_work(system_unbound_wq, dwork, delay);
}

void pinwb_mapping_set_error(struct address_space *mapping, int error)
{
	mapping_set_error(mapping, error);
}

void pinwb_invalidate_lock(struct address_space *mapping)
{
	filemap_invalidate_lock(mapping);
}

void pinwb_invalidate_unlock(struct address_space *mapping)
{
	filemap_invalidate_unlock(mapping);
}

/* The file was opened for reading (FMODE_READ). */
bool pinwb_file_readable(struct file *file)
{
	return file->f_mode & FMODE_READ;
}

void pinwb_cond_resched(void)
{
	cond_resched();
}

bool pinwb_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

/* mod_delayed_work() on system_unbound_wq: re-arm with a new delay. */
bool pinwb_mod_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	return mod_delayed_work(system_unbound_wq, dwork, delay);
}

loff_t pinwb_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

void pinwb_i_size_write(struct inode *inode, loff_t size)
{
	i_size_write(inode, size);
}


/* write_begin_get_folio(): FGP_WRITEBEGIN, plus IOCB_DONTCACHE and the order hint. */
struct folio *pinwb_write_begin_get_folio(const struct kiocb *iocb, struct address_space *mapping,
					  unsigned long index, size_t len)
{
	return write_begin_get_folio(iocb, mapping, index, len);
}
