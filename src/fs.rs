// SPDX-License-Identifier: GPL-2.0

//! pinwbfs: a small mountable in-memory filesystem whose files have pinwb's
//! own `address_space_operations` (`aops.rs`) and a backing store
//! (`store.rs`): the test address_space of the writeback policies.
//!
//! `mount -t pinwbfs [-o policy=<name>,mmwb] none <dir>`. A flat or nested
//! tree of regular files and directories.
//!
//! By default a pinwbfs mapping looks like tmpfs to mm: the superblock keeps
//! the noop bdi and the VMAs have no `page_mkwrite`, so mm allows R/W
//! `FOLL_LONGTERM` pins of them (`vma_needs_dirty_tracking()` is false) and
//! pinwb drives writeback itself (fsync, msync, syncfs, its flusher). With
//! `mmwb` the superblock gets a writeback-capable bdi and the VMAs
//! `page_mkwrite`: the kernel's own flusher and fsync path drive writepages,
//! and mm refuses R/W long-term pins (EFAULT), as mainline intends.

use crate::{
    aops, file,
    fs_data::{sb_info, FsShared, InodeData, InodePtr, Ops, SbInfo, POLICY_OF_KNOB},
    helpers::{
        pinwb_mapping_count_dirty, pinwb_mapping_set_stable_writes, pinwb_statfs_set_blocks,
        pinwbfs_init_fs_context, pinwbfs_show_options,
    },
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

/// `fs/ramfs`'s magic is taken; this one spells "PWBF".
const PINWBFS_MAGIC: usize = 0x5057_4246;

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
                // SAFETY: `slot` is valid for a write; every field not set is zero, as for a
                // static `struct file_system_type` in C.
                unsafe {
                    slot.write(pin_init::zeroed());
                    (*slot).name = c"pinwbfs".as_char_ptr();
                    (*slot).init_fs_context = Some(pinwbfs_init_fs_context);
                    (*slot).kill_sb = Some(kill_sb);
                    (*slot).owner = module.as_ptr();
                }
                // SAFETY: `slot` is a valid, pinned file_system_type; it is unregistered in
                // drop before its memory goes.
                kernel::error::to_result(unsafe { bindings::register_filesystem(slot) })?;
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

/// # Safety
///
/// Called by `get_tree_nodev` with a new superblock whose `s_fs_info` is ours.
#[no_mangle]
unsafe extern "C" fn pinwbfs_fill_super(sb: *mut bindings::super_block) -> c_int {
    // SAFETY: `sb` is a new superblock being set up, ours alone.
    unsafe {
        // MAX_LFS_FILESIZE on 64-bit.
        (*sb).s_maxbytes = i64::MAX;
        (*sb).s_blocksize = kernel::page::PAGE_SIZE as c_ulong;
        (*sb).s_blocksize_bits = kernel::page::PAGE_SHIFT as u8;
        (*sb).s_magic = PINWBFS_MAGIC as c_ulong;
        (*sb).s_op = &SUPER_OPS.0;
        (*sb).s_time_gran = 1;
        let sbi = &mut *(*sb).s_fs_info.cast::<SbInfo>();
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
        if sbi.mmwb {
            let ret = bindings::super_setup_bdi(sb);
            if ret != 0 {
                return ret;
            }
        }
        let root = new_inode(sb, ptr::null(), (bindings::S_IFDIR | 0o755) as u16);
        let Ok(root) = root else {
            return ENOMEM.to_errno();
        };
        (*sb).s_root = bindings::d_make_root(root);
        if (*sb).s_root.is_null() {
            return ENOMEM.to_errno();
        }
    }
    0
}

/// # Safety
///
/// Called only by the VFS, as `file_system_type::kill_sb`, once per pinwbfs superblock.
unsafe extern "C" fn kill_sb(sb: *mut bindings::super_block) {
    // SAFETY: The VFS hands us our superblock once, at unmount.
    unsafe {
        let fsi = (*sb).s_fs_info;
        bindings::kill_anon_super(sb);
        pinwbfs_free_fs_info(fsi);
    }
}

// --- superblock and inodes ------------------------------------------------------

static SUPER_OPS: Ops<bindings::super_operations> = Ops(bindings::super_operations {
    statfs: Some(statfs),
    drop_inode: Some(bindings::inode_just_drop),
    evict_inode: Some(evict_inode),
    sync_fs: Some(sync_fs),
    show_options: Some(pinwbfs_show_options),
    ..pin_init::zeroed()
});

/// `statfs(2)`: `simple_statfs`, and on a `cow` mount the block budget:
/// `f_blocks` is `blocks=`, `f_bfree` what stored pages and reservations
/// leave of it.
///
/// # Safety
///
/// Called only by the VFS, as `super_operations::statfs` of a pinwbfs superblock.
unsafe extern "C" fn statfs(dentry: *mut bindings::dentry, buf: *mut bindings::kstatfs) -> c_int {
    // SAFETY: The VFS passes a dentry of ours and a buffer to fill.
    unsafe {
        let ret = bindings::simple_statfs(dentry, buf);
        if ret == 0 {
            if let Some(b) = &sb_info((*dentry).d_sb).blocks {
                let (total, free) = b.usage();
                pinwb_statfs_set_blocks(buf, total, free);
            }
        }
        ret
    }
}

/// Allocates an inode of `mode` in `sb`.
///
/// # Safety
///
/// `sb` is a live pinwbfs superblock; `dir` is null or its directory inode.
unsafe fn new_inode(
    sb: *mut bindings::super_block,
    dir: *const bindings::inode,
    mode: u16,
) -> Result<*mut bindings::inode> {
    let data = if u32::from(mode) & bindings::S_IFMT == bindings::S_IFREG {
        Some(KBox::pin_init(
            try_pin_init!(InodeData {
                // SAFETY: `sb` is a live pinwbfs superblock, as the caller guarantees.
                store <- Store::new(unsafe { sb_info(sb) }.blocks.clone()),
                wb_lock <- new_mutex!(()),
                reserved <- new_mutex!(kernel::rbtree::RBTree::new()),
            }),
            GFP_KERNEL,
        )?)
    } else {
        None
    };
    // SAFETY: `sb` is valid, as the caller guarantees.
    let inode = unsafe { bindings::new_inode(sb) };
    if inode.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `inode` is new and ours; the tables are static.
    unsafe {
        (*inode).i_ino = bindings::get_next_ino().into();
        bindings::inode_init_owner(&raw mut bindings::nop_mnt_idmap, inode, dir, mode);
        if data.is_some() {
            // Only regular files have pages (directories keep `empty_aops`).
            (*(*inode).i_mapping).a_ops = &aops::AOPS.0;
        }
        bindings::simple_inode_init_ts(inode);
        match u32::from(mode) & bindings::S_IFMT {
            bindings::S_IFDIR => {
                (*inode).i_op = &DIR_IOPS.0;
                (*inode).__bindgen_anon_3.i_fop = &bindings::simple_dir_operations;
                // Directories start with i_nlink == 2 ("." entry).
                bindings::inc_nlink(inode);
            }
            _ => {
                (*inode).i_op = &file::FILE_IOPS.0;
                (*inode).__bindgen_anon_3.i_fop = &file::FILE_FOPS.0;
            }
        }
    }
    if let Some(data) = data {
        // SAFETY: Never moved again; freed in `evict_inode`.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(data) });
        // SAFETY: `inode` is ours until it is published by `d_make_persistent`.
        unsafe {
            (*inode).i_private = raw.cast();
            // Stable pages, as a checksumming filesystem needs: write(2) and page_mkwrite
            // wait for writeback of the folio. Stores through a default (noop bdi) mapping
            // cannot be held back: there is no write-notify.
            pinwb_mapping_set_stable_writes((*inode).i_mapping);
            if sb_info(sb).mmwb {
                // Unhashed inodes are ignored by __mark_inode_dirty: the kernel's flusher
                // would never see them.
                bindings::__insert_inode_hash(inode, (*inode).i_ino);
            }
        }
        // SAFETY: `sb` is a live pinwbfs superblock.
        let shared = &unsafe { sb_info(sb) }.shared;
        if shared
            .inodes
            .lock()
            .push(InodePtr(inode), GFP_KERNEL)
            .is_err()
        {
            // SAFETY: The inode is not published; `iput` evicts it and frees `raw`.
            unsafe { bindings::iput(inode) };
            return Err(ENOMEM);
        }
    }
    Ok(inode)
}

/// # Safety
///
/// Called only by the VFS, as `super_operations::evict_inode`, once per pinwbfs inode.
unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
    // SAFETY: The VFS evicts a pinwbfs inode once; nobody else uses it now.
    unsafe {
        if !(*inode).i_private.is_null() {
            // Data a policy kept dirty (skip, fail, bounce) goes with the inode: at umount
            // (whose sync_fs error the VFS ignores) and after the last unlink. Counted.
            let dirty = pinwb_mapping_count_dirty(&raw mut (*inode).i_data);
            COUNTERS.dirty_dropped_at_evict.add(dirty as u64, Relaxed);
        }
        bindings::truncate_inode_pages_final(&raw mut (*inode).i_data);
        bindings::clear_inode(inode);
        let data = (*inode).i_private.cast::<InodeData>();
        if !data.is_null() {
            let sbi = sb_info((*inode).i_sb);
            if let Some(blocks) = &sbi.blocks {
                // The file's stored pages and reservations go with it.
                (*data).store.release_blocks();
                (*data).drop_reservations(blocks, 0);
            }
            let mut list = sbi.shared.inodes.lock();
            if let Some(i) = list.iter().position(|p| p.0 == inode) {
                let _ = list.remove(i);
            }
            drop(list);
            (*inode).i_private = ptr::null_mut();
            drop(KBox::from_raw(data));
        }
    }
}

/// `syncfs(2)`, `sync(2)`, umount: data-integrity writeback of every file
/// (on a noop bdi the kernel's own sync paths do not reach `writepages`),
/// with one wait budget for all of them. Returns the first error; each is
/// also recorded in its mapping, and so in the superblock's errseq.
/// # Safety
///
/// Called only by the VFS, as `super_operations::sync_fs` of a pinwbfs superblock.
unsafe extern "C" fn sync_fs(sb: *mut bindings::super_block, wait: c_int) -> c_int {
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

// --- directories ------------------------------------------------------------------

static DIR_IOPS: Ops<bindings::inode_operations> = Ops(bindings::inode_operations {
    create: Some(create),
    lookup: Some(bindings::simple_lookup),
    link: Some(bindings::simple_link),
    unlink: Some(bindings::simple_unlink),
    mkdir: Some(mkdir),
    rmdir: Some(bindings::simple_rmdir),
    rename: Some(bindings::simple_rename),
    ..pin_init::zeroed()
});

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

/// # Safety
///
/// VFS callback contract of `->mknod`.
unsafe fn mknod(dir: *mut bindings::inode, dentry: *mut bindings::dentry, mode: u16) -> c_int {
    // SAFETY: `dir` is a live pinwbfs directory.
    match unsafe { new_inode((*dir).i_sb, dir, mode) } {
        Ok(inode) => {
            // SAFETY: `dentry` is a negative dentry of `dir`, locked by the VFS.
            unsafe {
                bindings::d_make_persistent(dentry, inode);
                bindings::inode_set_ctime_current(dir);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called only by the VFS, as `inode_operations::create` of a pinwbfs directory, with its locks held.
unsafe extern "C" fn create(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: u16,
) -> c_int {
    // SAFETY: VFS callback contract.
    unsafe { mknod(dir, dentry, mode | bindings::S_IFREG as u16) }
}

/// # Safety
///
/// Called only by the VFS, as `inode_operations::mkdir` of a pinwbfs directory, with its locks held.
unsafe extern "C" fn mkdir(
    _idmap: *mut bindings::mnt_idmap,
    dir: *mut bindings::inode,
    dentry: *mut bindings::dentry,
    mode: u16,
) -> *mut bindings::dentry {
    // SAFETY: VFS callback contract.
    let ret = unsafe { mknod(dir, dentry, mode | bindings::S_IFDIR as u16) };
    if ret != 0 {
        return kernel::error::Error::from_errno(ret).to_ptr();
    }
    // SAFETY: `dir` is locked by the VFS.
    unsafe { bindings::inc_nlink(dir) };
    ptr::null_mut()
}
