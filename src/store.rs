// SPDX-License-Identifier: GPL-2.0

//! The backing store of a pinwbfs file (its "disk"), and the IO that writes
//! to it.
//!
//! Per page: a copy of the data and the crc32c that writeback computed when
//! it submitted the IO, as a checksumming filesystem (btrfs) computes data
//! checksums before the bio goes out. A write is asynchronous IO: at
//! submission the source (the folio, or a bounce copy) is checksummed and
//! stays as it is, unlocked, under writeback; after the simulated device
//! latency (`io_delay_us`) the data is copied. If the stored bytes do not
//! match the checksum, the data changed while the IO was in flight: a torn
//! write, counted and logged, and every later read of that page fails with
//! `EIO` (counted in `csum_errors`), as btrfs's "csum failed" does, until a
//! new write replaces it.
//!
//! IO is submitted and completed in batches of at most [`IO_BATCH`] folios
//! (see `aops.rs`), so that memory in flight and the time a folio spends
//! under writeback are bounded whatever the file size.
//!
//! The pages live in an `RBTree` ordered by index under a mutex: truncation
//! removes every page past the new end in one ordered walk, holes included.

use crate::{
    folio::{Folio, KmapLocal, UnderWriteback},
    helpers::{cond_resched, fatal_signal_pending},
    stats::{COUNTERS, TUNABLES},
};
use kernel::{
    new_mutex,
    page::{Page, PAGE_SIZE},
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    time::{delay::fsleep, Delta},
    uaccess::UserSliceWriter,
};

/// Folios submitted, and completed, together by one writeback: the bound of
/// pinwbfs's IO in flight per file (and of bounce pages: one per folio).
pub(crate) const IO_BATCH: usize = 64;

/// Stored pages removed or read between two `cond_resched()` calls.
const RESCHED_PAGES: usize = 256;

/// The block budget of a `cow` mount (Chinner's reservation model, seed
/// 004): `limit` blocks of one page in all, for the stored pages and the
/// outstanding reservations. Writing a page allocates a new block and frees
/// the old one (copy on write), so even an overwrite needs a free block, and
/// the filesystem must reserve it when the folio becomes dirty.
pub(crate) struct Blocks {
    limit: u64,
    used: Atomic<u64>,
}

impl Blocks {
    pub(crate) fn new(limit: u64) -> Self {
        Blocks {
            limit,
            used: Atomic::new(0),
        }
    }

    /// Takes one block; `ENOSPC` when every block is used.
    pub(crate) fn take(&self) -> Result {
        let mut used = self.used.load(Relaxed);
        loop {
            if used >= self.limit {
                return Err(ENOSPC);
            }
            match self.used.cmpxchg(used, used + 1, Relaxed) {
                Ok(_) => return Ok(()),
                Err(seen) => used = seen,
            }
        }
    }

    /// Gives `n` blocks back.
    pub(crate) fn put(&self, n: u64) {
        self.used.fetch_sub(n, Relaxed);
    }

    /// `(blocks, free blocks)`, for `statfs`.
    pub(crate) fn usage(&self) -> (u64, u64) {
        (
            self.limit,
            self.limit.saturating_sub(self.used.load(Relaxed)),
        )
    }
}

/// Removes the entries of `tree` with keys at or past `first`, at most
/// `max` of them; returns how many it removed (fewer than `max`: all).
pub(crate) fn remove_from<V>(tree: &mut RBTree<usize, V>, first: usize, max: usize) -> usize {
    let mut n = 0;
    let mut cursor = tree.cursor_lower_bound_mut(&first);
    while let Some(c) = cursor {
        // `remove_current` moves to the previous node after the last one.
        if n >= max || *c.current().0 < first {
            break;
        }
        let (next, node) = c.remove_current();
        // Frees the entry (a stored page); a mutex may be held while freeing.
        drop(node);
        n += 1;
        cursor = next;
    }
    n
}

/// One stored page.
struct StorePage {
    data: Page,
    /// crc32c recorded when the IO was submitted.
    crc: u32,
}

impl StorePage {
    /// Whether `data` matches the recorded checksum.
    fn verify(&self) -> bool {
        KmapLocal::of(&self.data).crc() == self.crc
    }
}

/// A file's stored pages, keyed by page index.
#[pin_data]
pub(crate) struct Store {
    #[pin]
    pages: Mutex<RBTree<usize, StorePage>>,
    /// The mount's budget (`cow`): the writer took a block for every write
    /// before it reached the store, which frees the block a write replaces
    /// or a truncation drops, and gives a failed write's back.
    blocks: Option<Arc<Blocks>>,
}

/// Takes one injected store write error, if any is pending (debugfs
/// `inject_store_errors`).
fn injected_error() -> bool {
    let mut left = TUNABLES.inject_store_errors.load(Relaxed);
    while left > 0 {
        match TUNABLES
            .inject_store_errors
            .cmpxchg(left, left - 1, Relaxed)
        {
            Ok(_) => return true,
            Err(seen) => left = seen,
        }
    }
    false
}

impl Store {
    pub(crate) fn new(blocks: Option<Arc<Blocks>>) -> impl PinInit<Self> {
        pin_init!(Store {
            pages <- new_mutex!(RBTree::new()),
            blocks,
        })
    }

    /// `n` blocks of the budget are no longer used.
    fn freed(&self, n: u64) {
        if let Some(b) = &self.blocks {
            if n > 0 {
                b.put(n);
            }
        }
    }

    /// Gives back the blocks of every stored page (the inode goes).
    pub(crate) fn release_blocks(&self) {
        let n = self.pages.lock().iter().count();
        self.freed(n as u64);
    }

    /// A store write's outcome for the budget: the block it took is
    /// given back if it failed, the one it replaced if it succeeded.
    fn account(&self, res: &Result<bool>) {
        match res {
            Ok(true) | Err(_) => self.freed(1),
            Ok(false) => {}
        }
    }

    /// Stores a copy of `src` as page `index`, with checksum `crc`; returns
    /// the crc32c of the bytes stored.
    fn write_copy(&self, index: usize, src: &Folio, crc: u32) -> Result<u32> {
        let mut stored = 0;
        let res = self.copy_in(index, src, crc, &mut stored);
        self.account(&res);
        res.map(|_| stored)
    }

    /// [`Store::write_copy`]'s work: whether it replaced a stored page.
    fn copy_in(&self, index: usize, src: &Folio, crc: u32, stored: &mut u32) -> Result<bool> {
        if injected_error() {
            return Err(EIO);
        }
        let from = src.map();
        let mut pages = self.pages.lock();
        if let Some(sp) = pages.get_mut(&index) {
            // The same page of memory, standing for a new block and the old one freed.
            from.copy_to(&sp.data);
            sp.crc = crc;
            *stored = KmapLocal::of(&sp.data).crc();
            return Ok(true);
        }
        drop(pages);
        let data = Page::alloc_page(GFP_KERNEL)?;
        from.copy_to(&data);
        *stored = KmapLocal::of(&data).crc();
        let node = RBTreeNode::new(index, StorePage { data, crc }, GFP_KERNEL)?;
        // Writes to one file are serialised by its writeback lock, so nobody stored this
        // index in between; replacing is correct either way.
        Ok(self.pages.lock().insert(node).is_some())
    }

    /// Stores `data`, a private copy whose checksum is `crc`, as page
    /// `index` (a bounce page becomes the stored page: no second copy).
    fn write_page(&self, index: usize, data: Page, crc: u32) -> Result {
        let res = (|| {
            if injected_error() {
                return Err(EIO);
            }
            let node = RBTreeNode::new(index, StorePage { data, crc }, GFP_KERNEL)?;
            Ok(self.pages.lock().insert(node).is_some())
        })();
        self.account(&res);
        res.map(|_| ())
    }

    /// A direct write (`direct`): stores the bytes of `src` as page `index`
    /// now, from the (pinned) page itself; the checksum is that of the
    /// bytes stored. No IO stays in flight and the folio's state is not
    /// touched.
    pub(crate) fn write_direct(&self, index: usize, src: &Folio) -> Result {
        let data = Page::alloc_page(GFP_KERNEL)?;
        src.map().copy_to(&data);
        let crc = KmapLocal::of(&data).crc();
        self.write_page(index, data, crc)
    }

    /// Fills `to` (a locked folio's page) with stored page `index`, or
    /// zeroes for a hole. `EIO` (counted in `csum_errors`) if the stored
    /// bytes fail their checksum.
    pub(crate) fn read(&self, index: usize, to: &KmapLocal<'_>) -> Result {
        let pages = self.pages.lock();
        match pages.get(&index) {
            Some(sp) if !sp.verify() => {
                COUNTERS.csum_errors.add(1, Relaxed);
                Err(EIO)
            }
            Some(sp) => {
                to.copy_from(&sp.data);
                Ok(())
            }
            None => {
                to.zero();
                Ok(())
            }
        }
    }

    /// Copies stored bytes `[pos, pos + len)`, clamped to `size` (the file
    /// size), to userspace (holes read as zeroes), bypassing the page cache.
    /// Returns the bytes copied; `EIO` for a page that fails its checksum,
    /// `EINTR` on a fatal signal, unless some bytes were copied before.
    pub(crate) fn read_user(
        &self,
        pos: u64,
        len: usize,
        size: u64,
        w: &mut UserSliceWriter,
    ) -> Result<usize> {
        let len = usize::try_from(size.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(len);
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let mut done = 0;
        let mut pages = 0;
        let partial = |done: usize, e: Error| if done > 0 { Ok(done) } else { Err(e) };
        while done < len {
            pages += 1;
            if pages % RESCHED_PAGES == 0 {
                if fatal_signal_pending() {
                    return partial(done, EINTR);
                }
                cond_resched();
            }
            let at = pos + done as u64;
            let index = usize::try_from(at / PAGE_SIZE as u64).map_err(|_| EINVAL)?;
            let off = (at % PAGE_SIZE as u64) as usize;
            let n = (PAGE_SIZE - off).min(len - done);
            {
                let pages = self.pages.lock();
                match pages.get(&index) {
                    Some(sp) if !sp.verify() => {
                        COUNTERS.csum_errors.add(1, Relaxed);
                        return partial(done, EIO);
                    }
                    // SAFETY: `buf` has PAGE_SIZE bytes; `off + n <= PAGE_SIZE`.
                    Some(sp) => unsafe { sp.data.read_raw(buf.as_mut_ptr(), off, n)? },
                    None => buf[..n].fill(0),
                }
            }
            if let Err(e) = w.write_slice(&buf[..n]) {
                return partial(done, e);
            }
            done += n;
        }
        Ok(done)
    }

    /// Drops every stored page at or beyond `size` bytes, holes or not, and
    /// zeroes the tail of the page that straddles it.
    pub(crate) fn truncate(&self, size: u64) {
        let first_gone = usize::try_from(size.div_ceil(PAGE_SIZE as u64)).unwrap_or(usize::MAX);
        let mut dropped = 0;
        loop {
            let n = remove_from(&mut self.pages.lock(), first_gone, RESCHED_PAGES);
            dropped += n as u64;
            if n < RESCHED_PAGES {
                break;
            }
            cond_resched();
        }
        self.freed(dropped);
        let tail = (size % PAGE_SIZE as u64) as usize;
        if tail != 0 {
            let mut pages = self.pages.lock();
            if let Some(sp) = pages.get_mut(&(first_gone - 1)) {
                // A page that already fails its checksum keeps failing it.
                let good = sp.verify();
                // SAFETY: `tail < PAGE_SIZE`.
                let _ = unsafe { sp.data.fill_zero_raw(tail, PAGE_SIZE - tail) };
                if good {
                    sp.crc = KmapLocal::of(&sp.data).crc();
                }
            }
        }
    }

    /// Fault injection (debugfs `corrupt_store`): flips one bit of stored
    /// page `index`, leaving its checksum, so that the next read fails.
    /// `ENOENT` if the page is not stored.
    pub(crate) fn corrupt(&self, index: usize) -> Result {
        let pages = self.pages.lock();
        let sp = pages.get(&index).ok_or(ENOENT)?;
        let map = KmapLocal::of(&sp.data);
        // SAFETY: The mapping has PAGE_SIZE bytes of our own page.
        unsafe { *map.as_ptr() ^= 1 };
        Ok(())
    }
}

/// Where an IO's data comes from.
pub(crate) enum Source {
    /// The folio itself, under writeback until the IO completes.
    Folio(UnderWriteback),
    /// A private copy of the folio (`bounce`); the folio stays dirty.
    Bounce(Page),
}

/// One page of IO in flight.
pub(crate) struct Io {
    index: usize,
    src: Source,
    crc_at_submit: u32,
}

impl Io {
    /// Submits an IO of page `index` from `src`: its checksum is taken now.
    pub(crate) fn submit(index: usize, src: Source) -> Self {
        let crc_at_submit = match &src {
            Source::Folio(w) => w.folio().map().crc(),
            Source::Bounce(p) => KmapLocal::of(p).crc(),
        };
        Io {
            index,
            src,
            crc_at_submit,
        }
    }
}

/// IO submitted by one writeback and not completed yet: at most
/// [`IO_BATCH`] folios, in a vector allocated once per `writepages`. Its
/// owner completes it before dropping it: an IO that is never completed
/// leaves its folio under writeback for good.
pub(crate) struct Batch {
    ios: KVec<Io>,
}

impl Batch {
    pub(crate) fn new() -> Result<Self> {
        Ok(Batch {
            ios: KVec::with_capacity(IO_BATCH, GFP_KERNEL)?,
        })
    }

    pub(crate) fn is_full(&self) -> bool {
        self.ios.len() >= IO_BATCH
    }

    /// Adds a submitted IO. The caller completes the batch first when it is
    /// full, so this never allocates.
    pub(crate) fn push(&mut self, io: Io) {
        if let Err(e) = self.ios.push_within_capacity(io) {
            // Unreachable while callers complete full batches; never lose an IO.
            let _ = self.ios.push(e.0, GFP_KERNEL);
        }
        crate::stats::raise_peak(&COUNTERS.io_inflight_peak, self.ios.len() as u64);
    }

    /// Lets the simulated device take `io_delay_us`, then completes every
    /// IO: stores the data, checks it against its checksum, ends writeback.
    /// A failed store write keeps the folio dirty and is passed to
    /// `set_error` (the file records it: fsync and syncfs report it).
    /// Returns the first error.
    pub(crate) fn complete(
        &mut self,
        store: &Store,
        ino: u64,
        mut set_error: impl FnMut(Error),
    ) -> Result {
        if self.ios.is_empty() {
            return Ok(());
        }
        let delay = TUNABLES.io_delay_us.load(Relaxed);
        if delay > 0 {
            // At most `MAX_IO_DELAY_US` (stats.rs): fits an i64.
            fsleep(Delta::from_micros(delay as i64));
        }
        let mut ret = Ok(());
        for io in self.ios.drain_all() {
            let index = io.index;
            let crc = io.crc_at_submit;
            let res = match io.src {
                Source::Folio(w) => {
                    let res = store.write_copy(index, w.folio(), crc);
                    if let Ok(stored) = res {
                        if stored != crc {
                            torn(ino, index, crc, stored);
                        }
                    }
                    // The data did not reach the store: keep it dirty for a retry.
                    w.end(res.is_err());
                    res.map(|_| ())
                }
                Source::Bounce(page) => store.write_page(index, page, crc),
            };
            crate::trace::io_complete(ino, index, &res);
            match res {
                Ok(()) => {
                    COUNTERS.folios_written.add(1, Relaxed);
                }
                Err(e) => {
                    COUNTERS.store_errors.add(1, Relaxed);
                    set_error(e);
                    if ret.is_ok() {
                        ret = Err(e);
                    }
                }
            }
        }
        ret
    }
}

/// Counts and logs (rate-limited) a torn write.
fn torn(ino: u64, index: usize, crc: u32, stored: u32) {
    let n = COUNTERS.torn_writes.fetch_add(1, Relaxed) + 1;
    crate::trace::torn_write(ino, index, crc, stored);
    // The first few, then at powers of two.
    if n <= 4 || n.is_power_of_two() {
        pr_info!(
            "torn write #{n}: pinwbfs inode {} page {}: data changed under IO \
             (crc32c {:#010x} at submission, {:#010x} stored)\n",
            ino,
            index,
            crc,
            stored
        );
    }
}
