/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C wrappers for static inline functions and macros that Rust cannot call
 * through kernel::bindings. Nothing else belongs here: plain field reads are
 * done in Rust (src/folio.rs). The Rust declarations are generated from this
 * header by bindgen (Kbuild: src/helpers_generated.rs), so they cannot drift
 * from the C ones.
 *
 * The delayed-work calls stay in C: 7.3's kernel::workqueue can neither
 * cancel nor re-arm a DelayedWork (a cancelled item would leak the Arc it
 * owns), and the flusher needs both (src/flusher.rs).
 */
#ifndef PINWB_HELPERS_H
#define PINWB_HELPERS_H

#include <linux/types.h>

struct address_space;
struct folio;
struct folio_batch;
struct inode;
struct page;

bool pinwb_folio_test_anon(struct folio *folio);
void pinwb_put_page(struct page *page);
struct mm_struct;
int pinwb_charge_pinned_vm(struct mm_struct *mm, unsigned long pages);
void pinwb_uncharge_pinned_vm(struct mm_struct *mm, unsigned long pages);

/* folios */
struct folio *pinwb_page_folio(struct page *page);
bool pinwb_folio_maybe_dma_pinned(struct folio *folio);
void pinwb_folio_lock(struct folio *folio);
bool pinwb_folio_test_uptodate(struct folio *folio);
bool pinwb_folio_test_dirty(struct folio *folio);
bool pinwb_folio_mapped(struct folio *folio);
void pinwb_folio_mark_uptodate(struct folio *folio);
void pinwb_folio_put(struct folio *folio);
void pinwb_folio_get(struct folio *folio);
unsigned long pinwb_folio_dma_pins(struct folio *folio);
void pinwb_folio_start_writeback(struct folio *folio);

/* The index of the first page of @pages whose folio belongs to a mapping with @aops, or @n. */
size_t pinwb_pages_with_aops(struct page *const *pages, size_t n,
			     const struct address_space_operations *aops);

/*
 * Counts a new pin in the pinwbfs folios of pages[from..n): marks each such
 * page in @bits and adds @delta to its folio's ->private. True if one of them
 * was locked or under writeback: then pinwb_folios_wait_writeback() must run.
 */
bool pinwb_folios_count_pin(struct page *const *pages, size_t n, size_t from,
			    const struct address_space_operations *aops, unsigned long *bits,
			    long delta);

/* Adds @delta to ->private of the folio of every page whose bit is set. */
void pinwb_folios_private_add(struct page *const *pages, size_t n, const unsigned long *bits,
			      long delta);

/*
 * For the folio of every page whose bit is set, after gup pinned it: waits for
 * writeback that writepages started on it before it could see the pin (see
 * helpers.c for the ordering, and FolioIndex::classify_for_writeback()).
 */
void pinwb_folios_wait_writeback(struct page *const *pages, size_t n, const unsigned long *bits);

/*
 * Whole-page reads and writes of memory that may change meanwhile: a page
 * that user space maps or that the simulated device writes behind the page
 * tables (catching that race is what the checksums are for). Done in C under
 * data_race(), so that the race is neither undefined behaviour in Rust nor a
 * KCSAN report. @src, @dst and @addr are kernel addresses of whole pages.
 */
u32 pinwb_page_crc32c(const void *addr);
void pinwb_page_copy(void *dst, const void *src);
void pinwb_page_zero(void *dst);
/* The simulated device's stores: @n bytes of @byte, or @words 64-bit @stamp. */
void pinwb_dma_fill(void *dst, u8 byte, size_t n);
void pinwb_dma_fill64(u64 *dst, u64 stamp, size_t words);

/* folio batches */
void pinwb_folio_batch_release(struct folio_batch *fbatch);

struct kiocb;
struct folio *pinwb_write_begin_get_folio(const struct kiocb *iocb, struct address_space *mapping,
					  unsigned long index, size_t len);

/* workqueues */
struct delayed_work;
struct work_struct;
void pinwb_init_delayed_work(struct delayed_work *dwork, void (*func)(struct work_struct *));
bool pinwb_queue_delayed_work(struct delayed_work *dwork, unsigned long delay);
bool pinwb_mod_delayed_work(struct delayed_work *dwork, unsigned long delay);

/* scheduling */
void pinwb_cond_resched(void);
bool pinwb_fatal_signal_pending(void);

/* inodes and mappings */
void pinwb_mapping_set_error(struct address_space *mapping, int error);
void pinwb_invalidate_lock(struct address_space *mapping);
void pinwb_invalidate_unlock(struct address_space *mapping);
struct file;
bool pinwb_file_readable(struct file *file);
loff_t pinwb_i_size_read(const struct inode *inode);
void pinwb_i_size_write(struct inode *inode, loff_t size);

#endif /* PINWB_HELPERS_H */
