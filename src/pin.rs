// SPDX-License-Identifier: GPL-2.0

//! One pin: the pages of a user range, taken with gup, charged to the pinning
//! process, and given back exactly once when the record is dropped.

use crate::helpers::{pinwb_charge_pinned_vm, pinwb_put_page, pinwb_uncharge_pinned_vm};
use crate::{
    defs::PINWB_PIN_WRITE,
    dma::{DmaParams, DmaWriter, Target},
    folio_index::{FolioIndex, Indexed},
    mirror::Mirror,
    request::{Kind, PinRequest},
    stats::COUNTERS,
};
use kernel::{
    bindings,
    mm::Mm,
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    time::{Instant, Monotonic},
};

/// Pages asked of gup per call, so that `pin_user_pages_fast()`'s `int`
/// count never overflows and the mmap lock is dropped now and then.
const GUP_BATCH: usize = 1 << 16;

/// Length of `task_struct::comm`.
const COMM_LEN: usize = 16;

/// `pinned_vm` pages charged to an mm, uncharged on drop.
///
/// Like RDMA's umem: the pinning process's `mm->pinned_vm` grows by the pin's
/// pages, and the pin is refused with `ENOMEM` beyond `RLIMIT_MEMLOCK` unless
/// the process has `CAP_IPC_LOCK`. The mm is held with `mmgrab`, so the charge
/// is returned even after the process has exited.
struct Charge {
    mm: ARef<Mm>,
    pages: usize,
}

impl Charge {
    fn new(mm: ARef<Mm>, pages: usize) -> Result<Self> {
        i64::try_from(pages).map_err(|_| ENOMEM)?;
        // SAFETY: `mm` is a valid mm_struct (held by the `ARef`).
        kernel::error::to_result(unsafe { pinwb_charge_pinned_vm(mm.as_raw(), pages as c_ulong) })?;
        Ok(Charge { mm, pages })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        // SAFETY: `mm` is valid (held by the `ARef`); this returns exactly what `new` charged.
        unsafe { pinwb_uncharge_pinned_vm(self.mm.as_raw(), self.pages as c_ulong) };
    }
}

/// Pages held from gup, and what the folio index and the counters record
/// of them.
///
/// # Invariants
///
/// Every entry of `pages` is a page held by one reference of `kind`: a
/// `FOLL_PIN` pin for [`Kind::LongTerm`]/[`Kind::ShortTerm`], a plain
/// reference for [`Kind::Get`]. If `indexed` is set, its pages are counted
/// in the folio index and in `COUNTERS` (`pins_active`, `pages_pinned`).
struct HeldPages {
    index: Arc<FolioIndex>,
    pages: KVVec<*mut bindings::page>,
    kind: Kind,
    dirty: bool,
    indexed: Option<Indexed>,
}

// SAFETY: The raw page pointers are references that this value owns; a page may be released
// from any thread. That is the only member that is not `Send`.
unsafe impl Send for HeldPages {}
// SAFETY: `&HeldPages` gives read access to the pointers only; what is written through them
// (by the simulated device) is the pages' contents, which is what a device does concurrently
// with anyone.
unsafe impl Sync for HeldPages {}

impl HeldPages {
    /// Records the pages in the folio index and the counters (undone by
    /// [`HeldPages::release`], whatever happens to the pin record).
    fn index(&mut self, write: bool) -> Result {
        let indexed = self.index.add(&self.pages, self.kind, write)?;
        COUNTERS.pinned(self.pages.len());
        // INVARIANT: The pages were just counted.
        self.indexed = Some(indexed);
        Ok(())
    }

    /// Gives every page back, marking it dirty first if asked to. The index
    /// forgets the pages first, so that it never claims a folio that
    /// nothing pins any more.
    fn release(&mut self) {
        let n = self.pages.len();
        if n == 0 {
            return;
        }
        let mut counted = false;
        if let Some(indexed) = self.indexed.take() {
            self.index.remove(&self.pages, &indexed);
            COUNTERS.unpinned(n);
            counted = indexed.counted();
        }
        match self.kind {
            Kind::LongTerm | Kind::ShortTerm => {
                // SAFETY: The pages are FOLL_PIN pins (type invariant), released once here.
                unsafe {
                    bindings::unpin_user_pages_dirty_lock(self.pages.as_mut_ptr(), n, self.dirty)
                }
            }
            // A mirror holds no page.
            Kind::Mirror => {}
            Kind::Get => {
                for &page in self.pages.iter() {
                    if self.dirty {
                        // SAFETY: We hold a reference on `page` (type invariant).
                        unsafe { bindings::set_page_dirty_lock(page) };
                    }
                    // SAFETY: Drops the reference taken by get_user_pages (type invariant).
                    unsafe { pinwb_put_page(page) };
                }
            }
        }
        // INVARIANT: No page is held any more.
        self.pages.clear();
        if counted {
            self.index.released();
        }
    }
}

impl Drop for HeldPages {
    fn drop(&mut self) {
        self.release();
    }
}

/// A live pin, owned by one open file of `/dev/pinwb`.
#[pin_data(PinnedDrop)]
pub(crate) struct PinRecord {
    pub(crate) handle: Atomic<u32>,
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) flags: u32,
    pub(crate) owner_tgid: i32,
    owner_comm: [u8; COMM_LEN],
    pub(crate) created: Instant<Monotonic>,
    /// The simulated device writing into the pages, if one was started.
    #[pin]
    dma: Mutex<Option<Arc<DmaWriter>>>,
    /// Release with `PINWB_UNPIN_DIRTY` semantics.
    dirty_on_release: Atomic<bool>,
    held: HeldPages,
    /// `Kind::Mirror`: the device's mirror of the range (no page is held).
    mirror: Option<Mirror>,
    // Dropped after `held`: the charge lasts as long as the pages are held.
    _charge: Charge,
}

impl PinRecord {
    /// Pins the pages of `req` in the current process (or, for
    /// [`Kind::Mirror`], mirrors them).
    ///
    /// On any error nothing stays pinned or charged: the partially built
    /// record's drop gives everything back.
    pub(crate) fn new(
        req: &PinRequest,
        addr: u64,
        len: u64,
        flags: u32,
        index: &Arc<FolioIndex>,
    ) -> Result<Arc<Self>> {
        let task = kernel::current!();
        let mm = task.mm().ok_or(EFAULT)?;
        // A mirror holds no page: nothing to charge, pin or count.
        let (mirror, to_pin) = match req.kind {
            Kind::Mirror => (Some(Mirror::new(req.start, req.nr_pages)?), 0),
            _ => (None, req.nr_pages),
        };
        let charge = Charge::new(ARef::from(&**mm), to_pin)?;
        let mut held = HeldPages {
            index: index.clone(),
            pages: KVVec::with_capacity(to_pin, GFP_KERNEL)?,
            kind: req.kind,
            dirty: false,
            indexed: None,
        };

        while held.pages.len() < to_pin {
            let done = held.pages.len();
            let want = (req.nr_pages - done).min(GUP_BATCH);
            let start = req.start + done * PAGE_SIZE;
            let out = held
                .pages
                .spare_capacity_mut()
                .as_mut_ptr()
                .cast::<*mut bindings::page>();
            // SAFETY: `out` has room for `want` pointers (capacity is `nr_pages`); gup writes
            // exactly as many as it returns. The non-`fast` variants run under the mmap read
            // lock of current's mm, as they require; the `fast` ones take it themselves.
            let got: isize = unsafe {
                match (req.kind, req.fast) {
                    (Kind::Get, true) => {
                        bindings::get_user_pages_fast(start, want as i32, req.gup_flags, out)
                            as isize
                    }
                    (Kind::Get, false) => {
                        let _lock = mm.mmap_read_lock();
                        bindings::get_user_pages(start, want, req.gup_flags, out)
                    }
                    (_, true) => {
                        bindings::pin_user_pages_fast(start, want as i32, req.gup_flags, out)
                            as isize
                    }
                    (_, false) => {
                        let _lock = mm.mmap_read_lock();
                        bindings::pin_user_pages(start, want, req.gup_flags, out)
                    }
                }
            };
            if got <= 0 {
                // gup returns 0 only for nothing pinned without an error code (e.g. invalid
                // flags): report the range as bad.
                return Err(if got == 0 {
                    EFAULT
                } else {
                    Error::from_errno(got as i32)
                });
            }
            // SAFETY: gup initialised `got` (<= `want`) more entries.
            // INVARIANT: Each of them is a page held by a reference of `kind`.
            unsafe { held.pages.inc_len(got as usize) };
        }

        // From here every error path drops `held`, which forgets what the index counted.
        if mirror.is_none() {
            held.index(req.write)?;
        }
        let mut owner_comm = [0u8; COMM_LEN];
        let leader = task.group_leader();
        // SAFETY: `leader` is a valid task; `comm` is a NUL-terminated array of COMM_LEN bytes
        // that may change under us, which strscpy tolerates (as get_task_comm() does).
        unsafe {
            bindings::sized_strscpy(
                owner_comm.as_mut_ptr().cast(),
                (*leader.as_ptr()).comm.as_ptr(),
                COMM_LEN,
            )
        };
        Arc::pin_init(
            try_pin_init!(PinRecord {
                handle: Atomic::new(0),
                addr,
                len,
                flags,
                owner_tgid: leader.tgid(),
                owner_comm,
                created: Instant::now(),
                dma <- new_mutex!(None),
                dirty_on_release: Atomic::new(false),
                held,
                mirror,
                _charge: charge,
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn nr_pages(&self) -> usize {
        match &self.mirror {
            Some(m) => m.nr_pages(),
            None => self.held.pages.len(),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        self.held.kind
    }

    /// The pinning process's name, as it was when the pin was made.
    pub(crate) fn owner_comm(&self) -> &str {
        let len = self
            .owner_comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(COMM_LEN);
        core::str::from_utf8(&self.owner_comm[..len]).unwrap_or("?")
    }

    /// Releases the pages with `unpin_user_pages_dirty_lock(, true)` (or
    /// `set_page_dirty_lock` for references), as a driver does after a device
    /// wrote them. Consumes the record.
    pub(crate) fn release_dirty(self: Arc<Self>) {
        self.dirty_on_release.store(true, Relaxed);
        COUNTERS
            .pages_unpinned_dirty
            .add(self.nr_pages() as u64, Relaxed);
    }

    /// Starts the simulated device on this pin (`PINWB_IOC_DMA_START`).
    ///
    /// `EINVAL` unless the pin was made with `PINWB_PIN_WRITE` (a device only
    /// writes into memory pinned for writing); `EBUSY` if a writer runs.
    pub(crate) fn start_dma(&self, params: DmaParams) -> Result {
        if self.flags & PINWB_PIN_WRITE == 0 {
            return Err(EINVAL);
        }
        let mut dma = self.dma.lock();
        if dma.is_some() {
            return Err(EBUSY);
        }
        let target = match &self.mirror {
            Some(m) => Target::Mirror(m),
            None => Target::Pages(&self.held.pages),
        };
        // SAFETY: The pages or the mirror live until this record drops, which stops the
        // writer first.
        *dma = Some(unsafe { DmaWriter::start(target, params)? });
        Ok(())
    }

    /// Stops the simulated device (`PINWB_IOC_DMA_STOP`): `(passes, bytes)`.
    /// `ESRCH` if none was started.
    pub(crate) fn stop_dma(&self) -> Result<(u64, u64)> {
        let w = self.dma.lock().take().ok_or(ESRCH)?;
        w.stop();
        Ok((w.passes.load(Relaxed), w.bytes.load(Relaxed)))
    }
}

#[pinned_drop]
impl PinnedDrop for PinRecord {
    fn drop(self: Pin<&mut Self>) {
        // The device stops before the pages go (unpin, close, and so rmmod).
        let _ = self.stop_dma();
        // SAFETY: `held` is not structurally pinned; nothing else is moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.held.dirty = this.dirty_on_release.load(Relaxed);
        crate::trace::unpin(
            this.handle.load(Relaxed),
            this.addr,
            this.nr_pages(),
            this.kind(),
            this.held.dirty,
        );
        // `held` is released next (index, counters, pages), then `_charge` is returned.
    }
}
