// SPDX-License-Identifier: GPL-2.0

//! The backing store of a pinwbfs file (its "disk"), and the IO that writes
//! to it.
//!
//! Per page: a copy of the data and its crc32c. A write is asynchronous IO:
//! at submission the crc32c of the source (the folio, or a bounce page) is
//! recorded and the source stays as it is, unlocked, under writeback; after
//! the simulated device latency (`io_delay_us`) the data is copied and the
//! source's crc32c is computed again. A mismatch means the data changed
//! while the IO was in flight: a torn write, counted and logged. That is the
//! stable-pages check the upstream threads talk about.

use crate::{
    helpers::KmapLocal,
    stats::{COUNTERS, TUNABLES},
};
use kernel::{
    bindings,
    page::{Page, PAGE_SIZE},
    prelude::*,
    sync::atomic::Relaxed,
    time::{delay::fsleep, Delta},
    uaccess::UserSliceWriter,
    xarray::{AllocKind, XArray},
};

/// One stored page.
struct StorePage {
    data: Page,
    /// crc32c of `data`.
    crc: u32,
}

/// A file's stored pages, keyed by page index.
#[pin_data]
pub(crate) struct Store {
    #[pin]
    pages: XArray<KBox<StorePage>>,
}

impl Store {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Store {
            pages <- XArray::new(AllocKind::Alloc),
        })
    }

    /// Stores the current contents of `src` as page `index`.
    ///
    /// # Safety
    ///
    /// `src` must be a valid page kept alive by the caller.
    unsafe fn write(&self, index: usize, src: *mut bindings::page) -> Result {
        // SAFETY: `src` is valid, as the caller guarantees.
        let from = unsafe { KmapLocal::new(src) };
        {
            let mut guard = self.pages.lock();
            if let Some(sp) = guard.get_mut(index) {
                // SAFETY: `from` maps a whole page; `data` is a page of our own.
                unsafe { sp.data.write_raw(from.as_ptr(), 0, PAGE_SIZE)? };
                sp.crc = from.crc();
                return Ok(());
            }
        }
        let data = Page::alloc_page(GFP_KERNEL)?;
        // SAFETY: As above.
        unsafe { data.write_raw(from.as_ptr(), 0, PAGE_SIZE)? };
        let crc = from.crc();
        let sp = KBox::new(StorePage { data, crc }, GFP_KERNEL)?;
        // Writes to one file are serialised by its writeback lock, so nobody
        // stored this index in between; replacing is correct either way.
        let old = self
            .pages
            .lock()
            .store(index, sp, GFP_KERNEL)
            .map_err(|e| e.error)?;
        drop(old);
        Ok(())
    }

    /// Fills `dst` with stored page `index`, or zeroes for a hole.
    ///
    /// # Safety
    ///
    /// `dst` must be a valid page that the caller may write.
    pub(crate) unsafe fn read(&self, index: usize, dst: *mut bindings::page) {
        // SAFETY: `dst` is valid, as the caller guarantees.
        let to = unsafe { KmapLocal::new(dst) };
        let guard = self.pages.lock();
        match guard.get(index) {
            Some(sp) => {
                // SAFETY: `to` maps a whole page.
                let _ = unsafe { sp.data.read_raw(to.as_ptr(), 0, PAGE_SIZE) };
            }
            None => {
                // SAFETY: `to` maps a whole page.
                unsafe { core::ptr::write_bytes(to.as_ptr(), 0, PAGE_SIZE) }
            }
        }
    }

    /// Copies stored bytes `[pos, pos + len)` to userspace (holes read as
    /// zeroes), bypassing the page cache. Returns the bytes copied.
    pub(crate) fn read_user(&self, pos: u64, len: usize, w: &mut UserSliceWriter) -> Result<usize> {
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let mut done = 0;
        while done < len {
            let at = pos + done as u64;
            let index = usize::try_from(at / PAGE_SIZE as u64).map_err(|_| EINVAL)?;
            let off = (at % PAGE_SIZE as u64) as usize;
            let n = (PAGE_SIZE - off).min(len - done);
            {
                let guard = self.pages.lock();
                match guard.get(index) {
                    // SAFETY: `buf` has PAGE_SIZE bytes; `off + n <= PAGE_SIZE`.
                    Some(sp) => unsafe { sp.data.read_raw(buf.as_mut_ptr(), off, n)? },
                    None => buf[..n].fill(0),
                }
            }
            w.write_slice(&buf[..n])?;
            done += n;
        }
        Ok(done)
    }

    /// Drops every stored page at or beyond `size` bytes, and zeroes the
    /// tail of the page that straddles it.
    pub(crate) fn truncate(&self, size: u64) {
        let first_gone = size.div_ceil(PAGE_SIZE as u64) as usize;
        let mut guard = self.pages.lock();
        let mut gone = KVec::new();
        // No iterator in 7.3's Rust XArray: walk the indices. Stores are as
        // large as the files of a test filesystem.
        let mut index = first_gone;
        while let Some(sp) = guard.remove(index) {
            // Dropping frees a page; do it outside the spinlock below.
            if gone.push(sp, GFP_ATOMIC).is_err() {
                break;
            }
            index += 1;
        }
        let tail = (size % PAGE_SIZE as u64) as usize;
        if tail != 0 {
            if let Some(sp) = guard.get_mut(first_gone - 1) {
                // SAFETY: `tail < PAGE_SIZE`.
                let _ = unsafe { sp.data.fill_zero_raw(tail, PAGE_SIZE - tail) };
                // SAFETY: `sp.data` is our own page, alive while we hold the lock.
                let map = unsafe { KmapLocal::new(sp.data.as_ptr()) };
                sp.crc = map.crc();
            }
        }
        drop(guard);
        drop(gone);
    }
}

/// Where an IO's data comes from.
pub(crate) enum Source {
    /// The folio itself, locked at submission, then under writeback until
    /// the IO completes.
    Folio(*mut bindings::folio),
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
    /// Submits an IO of page `index` from `src`.
    ///
    /// # Safety
    ///
    /// A folio source must be a valid order-0 folio under writeback that the
    /// caller holds a reference on until [`complete`] ends its writeback.
    pub(crate) unsafe fn submit(index: usize, src: Source) -> Self {
        // SAFETY: The source page is valid (caller's guarantee / owned bounce page).
        let crc_at_submit = unsafe { KmapLocal::new(source_page(&src)) }.crc();
        Io {
            index,
            src,
            crc_at_submit,
        }
    }
}

fn source_page(src: &Source) -> *mut bindings::page {
    match src {
        // SAFETY: A folio source is valid while the IO exists (`Io::submit`'s contract).
        Source::Folio(f) => unsafe { crate::helpers::pinwb_folio_page(*f) },
        Source::Bounce(p) => p.as_ptr(),
    }
}

/// Lets the simulated device take `io_delay_us`, then completes every IO:
/// stores the data, checks it did not change in flight, ends writeback.
/// Returns the first error.
pub(crate) fn complete(store: &Store, ino: u64, ios: KVec<Io>) -> Result {
    if ios.is_empty() {
        return Ok(());
    }
    let delay = TUNABLES.io_delay_us.load(Relaxed);
    if delay > 0 {
        fsleep(Delta::from_micros(delay as i64));
    }
    let mut ret = Ok(());
    for io in ios {
        let page = source_page(&io.src);
        // SAFETY: The source page is valid until this IO ends (`Io::submit`'s contract).
        let res = unsafe { store.write(io.index, page) };
        // SAFETY: As above.
        let crc_now = unsafe { KmapLocal::new(page) }.crc();
        if crc_now != io.crc_at_submit {
            let n = COUNTERS.torn_writes.fetch_add(1, Relaxed) + 1;
            // Rate-limited: the first few, then at powers of two.
            if n <= 4 || n.is_power_of_two() {
                pr_info!(
                    "torn write #{n}: pinwbfs inode {} page {}: data changed under IO \
                     (crc32c {:#010x} -> {:#010x})\n",
                    ino,
                    io.index,
                    io.crc_at_submit,
                    crc_now
                );
            }
        }
        if res.is_ok() {
            COUNTERS.folios_written.add(1, Relaxed);
        } else if ret.is_ok() {
            ret = res;
        }
        if let Source::Folio(folio) = io.src {
            // SAFETY: The folio is under writeback, started at submission, ended once here.
            unsafe { bindings::folio_end_writeback(folio) };
        }
    }
    ret
}
