// SPDX-License-Identifier: GPL-2.0

//! pinwbfs: a small mountable in-memory filesystem whose files have pinwb's
//! own `address_space_operations` (`aops.rs`) and a backing store
//! (`store.rs`): the test address_space of the writeback policies.
//!
//! `mount -t pinwbfs [-o policy=<name>,mmwb] none <dir>`. A flat or nested
//! tree of regular files and directories.
//!
//! The VFS side (the type's, mount context's, superblock's and directories'
//! operations, inode set-up and eviction) is C, in `fs_glue.c`: 7.3's Rust
//! binds no filesystem. What it asks of Rust is here: the mount options, a
//! new superblock's and regular file's state and its end, statfs's block
//! budget, syncfs.
//!
//! By default a pinwbfs mapping looks like tmpfs to mm: the superblock keeps
//! the noop bdi and the VMAs have no `page_mkwrite`, so mm allows R/W
//! `FOLL_LONGTERM` pins of them (`vma_needs_dirty_tracking()` is false) and
//! pinwb drives writeback itself (fsync, msync, syncfs, its flusher). With
//! `mmwb` the superblock gets a writeback-capable bdi and the VMAs
//! `page_mkwrite`: the kernel's own flusher and fsync path drive writepages,
//! and mm refuses R/W long-term pins (EFAULT), as mainline intends.

use crate::{
    aops,
    fs_data::{sb_info, FsShared, InodeData, InodePtr, SbInfo, POLICY_OF_KNOB},
    helpers::pinwbfs_init_fs_type,
    policy::{Policy, POLICY_NAMES},
    stats::COUNTERS,
    store::{Blocks, Store},
};
use core::ptr;
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_ulong, c_void},
    new_mutex,
    prelude::*,
    str::CStr,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc,
    },
    types::Opaque,
};

// --- the filesystem type ------------------------------------------------------

/// The registered type, for [`for_each_super`]; null when not registered.
/// Global because the flusher's work item has no other way to it (its
/// callback gets only its own `work_struct`).
static FS_TYPE: Atomic<*mut bindings::file_system_type> = Atomic::new(ptr::null_mut());

/// Calls `f` on every live pinwbfs superblock with its `s_umount` held
/// (`iterate_supers_type`): an unmount cannot run meanwhile, so inodes taken
/// with `igrab` are given back before the superblock goes.
pub(crate) fn for_each_super(f: fn(*mut bindings::super_block)) {
    /// # Safety
    ///
    /// Called only by `iterate_supers_type` below, with `arg` pointing to `f`.
    unsafe extern "C" fn call(sb: *mut bindings::super_block, arg: *mut c_void) {
        // SAFETY: `arg` is the `fn` passed below, alive for the whole iteration.
        let f = unsafe { *arg.cast::<fn(*mut bindings::super_block)>() };
        f(sb);
    }
    let fs_type = FS_TYPE.load(Acquire);
    if fs_type.is_null() {
        return;
    }
    let mut f = f;
    // SAFETY: `fs_type` is registered (it is cleared before unregistering); `call` gets `f`.
    unsafe {
        bindings::iterate_supers_type(fs_type, Some(call), (&raw mut f).cast());
    }
}

/// The registered `file_system_type`, and pinwbfs's shared state; the type
/// is unregistered on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration {
    #[pin]
    fs_type: Opaque<bindings::file_system_type>,
    shared: Arc<FsShared>,
}

// SAFETY: The VFS owns the registered type's mutable parts; we only pass its address.
unsafe impl Send for Registration {}
// SAFETY: As above.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers pinwbfs, with its shared state.
    pub(crate) fn new(
        module: &'static ThisModule,
        shared: Arc<FsShared>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            shared,
            fs_type <- Opaque::try_ffi_init(move |slot: *mut bindings::file_system_type| {
                // SAFETY: `slot` is valid for a write, and pinned: it is unregistered in drop
                // before its memory goes.
                kernel::error::to_result(unsafe {
                    pinwbfs_init_fs_type(slot, module.as_ptr());
                    bindings::register_filesystem(slot)
                })?;
                FS_TYPE.store(slot, Release);
                Ok::<(), Error>(())
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Registration {
    fn drop(self: Pin<&mut Self>) {
        FS_TYPE.store(ptr::null_mut(), Release);
        // SAFETY: Registered in `new`. No pinwbfs is mounted: a mount holds a module reference.
        unsafe { bindings::unregister_filesystem(self.fs_type.get()) };
    }
}

/// A new `SbInfo` for a mount or remount request of `fs_type`.
///
/// # Safety
///
/// `fs_type` is pinwbfs's registered type (`fc->fs_type` of one of its
/// requests).
#[no_mangle]
unsafe extern "C" fn pinwbfs_alloc_fs_info(
    fs_type: *mut bindings::file_system_type,
) -> *mut c_void {
    // SAFETY: pinwbfs's only `file_system_type` is the `fs_type` field of a `Registration`,
    // which outlives every request (a request holds a reference on the module).
    let reg = unsafe { &*kernel::container_of!(Opaque::cast_from(fs_type), Registration, fs_type) };
    match KBox::new(
        SbInfo {
            policy: Atomic::new(POLICY_OF_KNOB),
            mmwb: false,
            cow: false,
            nr_blocks: 0,
            cow_fixup: false,
            blocks: None,
            shared: reg.shared.clone(),
        },
        GFP_KERNEL,
    ) {
        Ok(b) => KBox::into_raw(b).cast(),
        Err(_) => ptr::null_mut(),
    }
}

/// # Safety
///
/// `fsi` is null or came from `pinwbfs_alloc_fs_info` and is not used again.
#[no_mangle]
unsafe extern "C" fn pinwbfs_free_fs_info(fsi: *mut c_void) {
    if !fsi.is_null() {
        // SAFETY: As the caller guarantees.
        drop(unsafe { KBox::from_raw(fsi.cast::<SbInfo>()) });
    }
}

/// Mount options: `policy=<name>` (see [`POLICY_NAMES`]) and `mmwb`.
/// `EINVAL` for a bad value (the C glue logs which).
///
/// # Safety
///
/// `fsi` came from `pinwbfs_alloc_fs_info`; `key` is a C string, `value` a C
/// string or null.
#[no_mangle]
unsafe extern "C" fn pinwbfs_parse_option(
    fsi: *mut c_void,
    key: *const c_char,
    value: *const c_char,
) -> c_int {
    // SAFETY: As the caller guarantees; the fs_context owns `fsi` and is not shared.
    let (fsi, key) = unsafe { (&mut *fsi.cast::<SbInfo>(), CStr::from_char_ptr(key)) };
    let value = (!value.is_null()).then(|| {
        // SAFETY: A non-null `value` is a C string.
        unsafe { CStr::from_char_ptr(value) }
    });
    match (key.to_bytes(), value) {
        (b"policy", Some(v)) => match Policy::parse(v.to_bytes()) {
            Ok(p) => {
                fsi.policy.store(p as u32, Relaxed);
                0
            }
            Err(e) => e.to_errno(),
        },
        (b"mmwb", None) => {
            fsi.mmwb = true;
            0
        }
        (b"cow", None) => {
            fsi.cow = true;
            0
        }
        (b"cow_fixup", None) => {
            fsi.cow_fixup = true;
            0
        }
        (b"blocks", Some(v)) => match crate::stats::parse_knob(v.to_bytes(), u64::MAX) {
            Ok(n) if n > 0 => {
                fsi.nr_blocks = n;
                0
            }
            _ => EINVAL.to_errno(),
        },
        (b"policy" | b"mmwb" | b"cow" | b"cow_fixup" | b"blocks", _) => EINVAL.to_errno(),
        _ => -(bindings::ENOPARAM as c_int),
    }
}

/// `mount -o remount`: applies the parsed `fsi` to `sb`. A `policy=` takes
/// effect at once (the next writeback call reads it); `EINVAL` if `mmwb` is
/// asked of a mount without it (its bdi and vm_ops are set at mount).
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock; `fsi` came from
/// `pinwbfs_alloc_fs_info` and was filled by the remount's options.
#[no_mangle]
unsafe extern "C" fn pinwbfs_reconfigure(
    sb: *mut bindings::super_block,
    fsi: *mut c_void,
) -> c_int {
    // SAFETY: As the caller guarantees; the request is not shared.
    let (cur, new) = unsafe { (sb_info(sb), &*fsi.cast::<SbInfo>()) };
    // The bdi, vm_ops and the block budget are set at mount.
    if (new.mmwb && !cur.mmwb)
        || (new.cow && !cur.cow)
        || (new.cow_fixup && !cur.cow_fixup)
        || (new.nr_blocks != 0 && new.nr_blocks != cur.nr_blocks)
    {
        return EINVAL.to_errno();
    }
    let p = new.policy.load(Relaxed);
    if p != POLICY_OF_KNOB {
        cur.policy.store(p, Relaxed);
    }
    0
}

/// The `policy=` of a mount, for `show_options`; null if none was given.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock.
#[no_mangle]
unsafe extern "C" fn pinwbfs_policy_of_mount(sb: *mut bindings::super_block) -> *const c_char {
    // SAFETY: As the caller guarantees.
    match unsafe { sb_info(sb) }.mount_policy() {
        Some(p) => p.c_name().as_char_ptr(),
        None => ptr::null(),
    }
}

/// Whether a mount has `mmwb`, for `show_options`.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock.
#[no_mangle]
unsafe extern "C" fn pinwbfs_is_mmwb(sb: *mut bindings::super_block) -> bool {
    // SAFETY: As the caller guarantees.
    unsafe { sb_info(sb) }.mmwb
}

/// The `blocks=` of a `cow` mount, for `show_options`; 0 without `cow`.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock.
#[no_mangle]
unsafe extern "C" fn pinwbfs_cow_blocks(sb: *mut bindings::super_block) -> u64 {
    // SAFETY: As the caller guarantees.
    unsafe { sb_info(sb) }.nr_blocks
}

/// Whether a mount has `cow_fixup`, for `show_options`.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock.
#[no_mangle]
unsafe extern "C" fn pinwbfs_is_cow_fixup(sb: *mut bindings::super_block) -> bool {
    // SAFETY: As the caller guarantees.
    unsafe { sb_info(sb) }.cow_fixup
}

/// The valid `policy=` values, for the mount error message.
#[no_mangle]
extern "C" fn pinwbfs_policy_names() -> *const c_char {
    POLICY_NAMES.as_char_ptr()
}

/// The state of a new superblock (`fs_glue.c`'s fill_super) that its
/// options ask for: a `cow` mount's block budget.
///
/// # Safety
///
/// `sb` is a new pinwbfs superblock being set up, ours alone, with the
/// request's `SbInfo` in `s_fs_info`.
#[no_mangle]
unsafe extern "C" fn pinwbfs_setup_super(sb: *mut bindings::super_block) -> c_int {
    // SAFETY: As the caller guarantees: nothing else uses the `SbInfo` yet.
    let sbi = unsafe { &mut *(*sb).s_fs_info.cast::<SbInfo>() };
    // `cow` needs its budget, and `blocks=` and `cow_fixup` mean nothing without it.
    if sbi.cow != (sbi.nr_blocks != 0) || (sbi.cow_fixup && !sbi.cow) {
        pr_warn!("pinwbfs: cow needs blocks=N, and blocks= and cow_fixup need cow\n");
        return EINVAL.to_errno();
    }
    if sbi.cow {
        match Arc::new(Blocks::new(sbi.nr_blocks), GFP_KERNEL) {
            Ok(b) => sbi.blocks = Some(b),
            Err(_) => return ENOMEM.to_errno(),
        }
    }
    0
}

/// For `statfs(2)`: a `cow` mount's budget (`blocks=`) and what stored
/// pages and reservations leave of it; false without `cow`.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock; `blocks` and `free` are valid for a
/// write.
#[no_mangle]
unsafe extern "C" fn pinwbfs_blocks_usage(
    sb: *mut bindings::super_block,
    blocks: *mut u64,
    free: *mut u64,
) -> bool {
    // SAFETY: As the caller guarantees.
    unsafe {
        let Some(b) = &sb_info(sb).blocks else {
            return false;
        };
        (*blocks, *free) = b.usage();
    }
    true
}

/// A new regular file's [`InodeData`] in `i_private`, and its entry in the
/// registry; on error the caller evicts the inode (`iput`), which frees
/// what was made.
///
/// # Safety
///
/// `inode` is a new regular inode of a live pinwbfs superblock, not yet
/// published, with a null `i_private`.
#[no_mangle]
unsafe extern "C" fn pinwbfs_init_inode(inode: *mut bindings::inode) -> c_int {
    // SAFETY: As the caller guarantees.
    let sbi = unsafe { sb_info((*inode).i_sb) };
    let data = KBox::pin_init(
        try_pin_init!(InodeData {
            store <- Store::new(sbi.blocks.clone()),
            wb_lock <- new_mutex!(()),
            reserved <- new_mutex!(kernel::rbtree::RBTree::new()),
        }),
        GFP_KERNEL,
    );
    let data = match data {
        Ok(d) => d,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: Never moved again: freed in `pinwbfs_evict_inode_data`. The inode is ours until
    // it is published.
    unsafe { (*inode).i_private = KBox::into_raw(Pin::into_inner_unchecked(data)).cast() };
    match sbi.shared.inodes.lock().push(InodePtr(inode), GFP_KERNEL) {
        Ok(()) => 0,
        Err(_) => ENOMEM.to_errno(),
    }
}

/// Folios a policy kept dirty that an evicted file loses with it.
#[no_mangle]
extern "C" fn pinwbfs_count_dirty_dropped(folios: c_ulong) {
    COUNTERS.dirty_dropped_at_evict.add(folios as u64, Relaxed);
}

/// A regular file's data goes, after `clear_inode()`: its stored pages and
/// reservations give their blocks back, and it leaves the registry.
///
/// # Safety
///
/// Called once per regular pinwbfs inode, by its `evict_inode`; nobody else
/// uses it now.
#[no_mangle]
unsafe extern "C" fn pinwbfs_evict_inode_data(inode: *mut bindings::inode) {
    // SAFETY: As the caller guarantees; `i_private` is the `InodeData` of
    // `pinwbfs_init_inode`, freed here once.
    let (sbi, data) = unsafe {
        let data = KBox::from_raw((*inode).i_private.cast::<InodeData>());
        (*inode).i_private = ptr::null_mut();
        (sb_info((*inode).i_sb), data)
    };
    if let Some(blocks) = &sbi.blocks {
        data.store.release_blocks();
        data.drop_reservations(blocks, 0);
    }
    let mut list = sbi.shared.inodes.lock();
    if let Some(i) = list.iter().position(|p| p.0 == inode) {
        let _ = list.remove(i);
    }
}

/// `syncfs(2)`, `sync(2)`, umount: data-integrity writeback of every file
/// (on a noop bdi the kernel's own sync paths do not reach `writepages`),
/// with one wait budget for all of them. Returns the first error; each is
/// also recorded in its mapping, and so in the superblock's errseq.
///
/// # Safety
///
/// Called only by the VFS, as `super_operations::sync_fs` of a pinwbfs superblock.
#[no_mangle]
unsafe extern "C" fn pinwbfs_sync_fs(sb: *mut bindings::super_block, wait: c_int) -> c_int {
    let mut ret = 0;
    let deadline = aops::sync_deadline();
    // SAFETY: The VFS passes a live pinwbfs superblock.
    let shared = &unsafe { sb_info(sb) }.shared;
    shared.for_each_inode(Some(sb), |inode| {
        let r = aops::sync_mapping(inode, 0, i64::MAX, wait != 0, Some(deadline));
        if ret == 0 {
            ret = r;
        }
    });
    ret
}

/// Fault injection (debugfs `corrupt_store`): flips a bit of stored page
/// `index` of the regular file with inode number `ino`, on any mount.
/// `ENOENT` if there is no such file or page.
pub(crate) fn corrupt_store(shared: &FsShared, ino: u64, index: usize) -> Result {
    let mut ret = Err(ENOENT);
    shared.for_each_inode(None, |inode| {
        if inode.ino() == ino {
            ret = inode.data().store.corrupt(index);
        }
    });
    ret
}
