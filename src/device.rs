// SPDX-License-Identifier: GPL-2.0

//! `/dev/pinwb`: the misc device, its ioctls, and the pins each open file owns.

use crate::{
    defs::{self, pinwb_dma, pinwb_page_state, pinwb_pin, pinwb_query, pinwb_unpin},
    dma::DmaParams,
    folio::Folio,
    folio_index::FolioIndex,
    helpers::{pinwb_page_folio, pinwb_put_page},
    module_parameters,
    pin::PinRecord,
    request,
    stats::COUNTERS,
};
use core::fmt;
use kernel::{
    bindings,
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow, Mutex,
    },
    uaccess::{UserSlice, UserSliceReader, UserSliceWriter},
    xarray::{AllocKind, XArray},
};

/// `/dev/pinwb`'s part of the module: the index its pins are counted in,
/// and the open files (for debugfs `pins`).
#[pin_data]
pub(crate) struct DeviceShared {
    index: Arc<FolioIndex>,
    #[pin]
    files: Mutex<KVVec<Arc<PinwbFile>>>,
}

/// The registered `/dev/pinwb`, and its shared state.
///
/// The node is created by devtmpfs with its default mode, 0600 (root only):
/// `struct miscdevice::mode` stays 0 because pinning memory is a privileged
/// test facility.
#[pin_data]
pub(crate) struct Device {
    // Deregistered before `shared` drops: no open can run without it.
    #[pin]
    reg: MiscDeviceRegistration<PinwbFile>,
    shared: Arc<DeviceShared>,
}

impl DeviceShared {
    /// No open file yet; pins of pinwbfs folios are counted in `index`.
    pub(crate) fn new(index: Arc<FolioIndex>) -> impl PinInit<Self> {
        pin_init!(DeviceShared {
            index,
            files <- new_mutex!(KVVec::new()),
        })
    }
}

impl Device {
    /// Registers `/dev/pinwb`.
    pub(crate) fn register(shared: Arc<DeviceShared>) -> impl PinInit<Self, Error> {
        try_pin_init!(Device {
            shared,
            reg <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"pinwb" }),
        })
    }
}

/// The state of one open file of `/dev/pinwb`: its pins, keyed by handle.
///
/// Closing the file (its last reference, wherever it was inherited to)
/// drops the XArray and with it every pin.
#[pin_data]
pub(crate) struct PinwbFile {
    shared: Arc<DeviceShared>,
    #[pin]
    pins: XArray<Arc<PinRecord>>,
    /// Held while a record is taken out of `pins` (UNPIN) and while a
    /// sleeping operation uses a record outside the XArray's spinlock (DMA
    /// start and stop), so that a pin is released when UNPIN returns, not
    /// when a concurrent DMA ioctl drops its reference. The last close
    /// removes the rest, when no ioctl runs.
    #[pin]
    removal: Mutex<()>,
    /// The next handle to try; handles are given out cyclically and never 0.
    next_handle: Atomic<u32>,
    /// Live pins, for the per-file limit.
    nr_pins: Atomic<u32>,
}

#[vtable]
impl MiscDevice for PinwbFile {
    type Ptr = Arc<Self>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Self>> {
        // SAFETY: The only registration of `PinwbFile`s is the `reg` field of a `Device`,
        // which lives while the device can be opened.
        let dev =
            unsafe { &*kernel::container_of!(core::ptr::from_ref(misc).cast_mut(), Device, reg) };
        let me = Arc::pin_init(
            pin_init!(PinwbFile {
                shared: dev.shared.clone(),
                pins <- XArray::new(AllocKind::Alloc1),
                removal <- new_mutex!(()),
                next_handle: Atomic::new(1),
                nr_pins: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        me.shared.files.lock().push(me.clone(), GFP_KERNEL)?;
        Ok(me)
    }

    fn release(me: Arc<Self>, _file: &File) {
        let mut files = me.shared.files.lock();
        if let Some(i) = files.iter().position(|f| Arc::ptr_eq(f, &me)) {
            let _ = files.remove(i);
        }
        // The pins are released when the last `Arc` goes, here or after a concurrent
        // debugfs read of `pins`, never under a spinlock.
    }

    fn ioctl(me: ArcBorrow<'_, Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
        match cmd {
            defs::PINWB_IOC_VERSION => Ok(defs::PINWB_ABI_VERSION as isize),
            defs::PINWB_IOC_PIN => {
                let (r, w) = user.reader_writer();
                me.pin(r, w).map(|()| 0)
            }
            defs::PINWB_IOC_UNPIN => me.unpin(user.reader()).map(|()| 0),
            defs::PINWB_IOC_QUERY => {
                let (r, w) = user.reader_writer();
                me.query(r, w).map(|()| 0)
            }
            defs::PINWB_IOC_DMA_START => me.dma_start(user.reader()).map(|()| 0),
            defs::PINWB_IOC_DMA_STOP => {
                let (r, w) = user.reader_writer();
                me.dma_stop(r, w).map(|()| 0)
            }
            defs::PINWB_IOC_PAGE_STATE => {
                let (r, w) = user.reader_writer();
                page_state(&me.shared.index, r, w).map(|()| 0)
            }
            _ => Err(ENOTTY),
        }
    }
}

impl PinwbFile {
    fn pin(&self, mut r: UserSliceReader, mut w: UserSliceWriter) -> Result {
        COUNTERS.pin_calls.add(1, Relaxed);
        let ret = self.try_pin(&mut r, &mut w);
        if ret.is_err() {
            COUNTERS.pin_errors.add(1, Relaxed);
        }
        ret
    }

    fn try_pin(&self, r: &mut UserSliceReader, w: &mut UserSliceWriter) -> Result {
        let mut args: pinwb_pin = r.read()?;
        let req = request::validate_pin(&args, module_parameters::max_pages_per_pin.value())?;
        // Reserve a slot in the per-file limit first, so that concurrent pins cannot exceed it.
        // `pin_and_store` gives it back unless a record now holds it.
        let max = module_parameters::max_pins_per_file.value();
        if self.nr_pins.fetch_add(1, Relaxed) >= max {
            self.nr_pins.fetch_sub(1, Relaxed);
            return Err(ENOSPC);
        }
        self.pin_and_store(&req, &mut args, w)
    }

    fn pin_and_store(
        &self,
        req: &request::PinRequest,
        args: &mut pinwb_pin,
        w: &mut UserSliceWriter,
    ) -> Result {
        let record = PinRecord::new(req, args.addr, args.len, args.flags, &self.shared.index)
            .inspect_err(|_| {
                self.nr_pins.fetch_sub(1, Relaxed);
            })?;
        let handle;
        let mut guard = self.pins.lock();
        // A free handle exists: live pins are far fewer than 2^32 - 1 (per-file limit).
        loop {
            let h = self.next_handle.fetch_add(1, Relaxed);
            if h != 0 && guard.get(h as usize).is_none() {
                handle = h;
                break;
            }
        }
        record.handle.store(handle, Relaxed);
        args.handle = handle;
        args.nr_pages = record.nr_pages() as u64;
        crate::trace::pin(
            handle,
            record.addr,
            record.nr_pages(),
            record.kind(),
            record.flags & defs::PINWB_PIN_WRITE != 0,
        );
        if let Err(e) = guard.store(handle as usize, record, GFP_KERNEL) {
            // Release the pages outside the spinlock: unpinning may sleep.
            drop(guard);
            drop(e.value);
            self.nr_pins.fetch_sub(1, Relaxed);
            return Err(e.error);
        }
        drop(guard);
        if let Err(e) = w.write(&*args) {
            // Userspace cannot learn the handle: do not leave an unreachable pin behind.
            let _removal = self.removal.lock();
            let record = self.pins.lock().remove(handle as usize);
            // If another thread guessed the handle and unpinned it, it gave the slot back.
            if record.is_some() {
                self.nr_pins.fetch_sub(1, Relaxed);
            }
            drop(record);
            return Err(e);
        }
        Ok(())
    }

    fn unpin(&self, mut r: UserSliceReader) -> Result {
        COUNTERS.unpin_calls.add(1, Relaxed);
        let args: pinwb_unpin = r.read()?;
        let (handle, dirty) = request::validate_unpin(&args)?;
        // Take the record out under the locks; release its pages after dropping them.
        let record = {
            let _removal = self.removal.lock();
            self.pins.lock().remove(handle as usize).ok_or(ENOENT)?
        };
        self.nr_pins.fetch_sub(1, Relaxed);
        if dirty {
            record.release_dirty();
        } else {
            drop(record);
        }
        Ok(())
    }

    fn query(&self, mut r: UserSliceReader, mut w: UserSliceWriter) -> Result {
        let mut args: pinwb_query = r.read()?;
        if args.reserved0 != 0 || args.reserved.iter().any(|&x| x != 0) {
            return Err(EINVAL);
        }
        {
            let guard = self.pins.lock();
            let p = guard.get(args.handle as usize).ok_or(ENOENT)?;
            args.flags = p.flags;
            args.addr = p.addr;
            args.len = p.len;
            args.nr_pages = p.nr_pages() as u64;
            args.owner_pid = p.owner_tgid;
            args.age_ns = p.created.elapsed().as_nanos() as u64;
        }
        w.write(&args)
    }

    fn dma_start(&self, mut r: UserSliceReader) -> Result {
        let args: pinwb_dma = r.read()?;
        let params = DmaParams::from_args(&args)?;
        self.with_pin(args.handle, |p| p.start_dma(params))?
    }

    fn dma_stop(&self, mut r: UserSliceReader, mut w: UserSliceWriter) -> Result {
        let mut args: pinwb_dma = r.read()?;
        if args.reserved0 != 0 || args.reserved.iter().any(|&x| x != 0) {
            return Err(EINVAL);
        }
        let (passes, bytes) = self.with_pin(args.handle, |p| p.stop_dma())??;
        args.passes = passes;
        args.bytes = bytes;
        w.write(&args)
    }

    /// Runs `f`, which may sleep, on the live pin `handle`.
    fn with_pin<R>(&self, handle: u32, f: impl FnOnce(&PinRecord) -> R) -> Result<R> {
        let _removal = self.removal.lock();
        let record: Arc<PinRecord> = self.pins.lock().get(handle as usize).ok_or(ENOENT)?.into();
        Ok(f(&record))
    }

    /// Writes one line per live pin of this file to `f`.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.pins.lock();
        let (mut seen, live) = (0, self.nr_pins.load(Relaxed));
        // The Rust XArray has no iterator in 7.3: walk the handles given out so far, stopping
        // once every live pin was seen. Only debugfs reads pay for this.
        let last = self.next_handle.load(Relaxed);
        let mut h = 1u32;
        while seen < live && h != last {
            if let Some(p) = guard.get(h as usize) {
                seen += 1;
                writeln!(
                    f,
                    "{:>6} {:>7} {:<16} {:#018x} {:>10} {:>8} {:<9} {:>10}",
                    p.handle.load(Relaxed),
                    p.owner_tgid,
                    p.owner_comm(),
                    p.addr,
                    p.len,
                    p.nr_pages(),
                    p.kind().name(),
                    p.created.elapsed().as_millis()
                )?;
            }
            h = h.wrapping_add(1);
        }
        Ok(())
    }
}

/// Writes the debugfs `pins` listing: every live pin of every open file.
pub(crate) fn show_pins(shared: &DeviceShared, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "{:>6} {:>7} {:<16} {:>18} {:>10} {:>8} {:<9} {:>10}",
        "handle", "pid", "comm", "addr", "len", "pages", "kind", "age_ms"
    )?;
    for file in shared.files.lock().iter() {
        file.show(f)?;
    }
    Ok(())
}

/// `PINWB_IOC_PAGE_STATE`: what pinwb's index and mm say about the folio at
/// an address. The page is looked up with a temporary reference (faulting it
/// in for reading if needed), which does not disturb either answer.
fn page_state(index: &FolioIndex, mut r: UserSliceReader, mut w: UserSliceWriter) -> Result {
    let mut args: pinwb_page_state = r.read()?;
    if args.writable != 0 || args.reserved.iter().any(|&x| x != 0) {
        return Err(EINVAL);
    }
    let addr = usize::try_from(args.addr).map_err(|_| EFAULT)?;
    let mut page: *mut bindings::page = core::ptr::null_mut();
    // SAFETY: `page` has room for one pointer; no lock is held (the fast variant takes it).
    let got = unsafe { bindings::get_user_pages_fast(addr, 1, 0, &mut page) };
    if got != 1 {
        return Err(if got < 0 {
            Error::from_errno(got)
        } else {
            EFAULT
        });
    }
    // SAFETY: We hold a reference on `page`, and so on its folio, until the put below.
    let (pins, folio) = unsafe {
        (
            index.lookup_page(page),
            Folio::from_raw(pinwb_page_folio(page)),
        )
    };
    let (dma, anon) = (folio.maybe_dma_pinned(), folio.is_anon());
    // SAFETY: Drops the reference taken above.
    unsafe { pinwb_put_page(page) };
    args.flags = if dma { defs::PINWB_PAGE_DMA_PINNED } else { 0 }
        | if anon { defs::PINWB_PAGE_ANON } else { 0 };
    args.longterm = pins.longterm as u64;
    args.shortterm = pins.shortterm as u64;
    // At most 2^21 (folio_index.rs).
    args.writable = pins.writable as u32;
    w.write(&args)
}
