// SPDX-License-Identifier: GPL-2.0

//! What pinwbfs keeps per module, superblock and file, and how its callbacks
//! find it: [`FsShared`] (the index and the registry of regular files),
//! [`SbInfo`] (`sb->s_fs_info`), [`InodeData`] (`inode->i_private`), and the
//! `static` operations tables ([`Ops`]).

use crate::helpers::{pinwb_i_size_read, pinwb_mapping_set_error};
use crate::{
    folio_index::FolioIndex,
    policy::Policy,
    stats::{COUNTERS, TUNABLES},
    store::{Blocks, Store},
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{
        aref::{ARef, AlwaysRefCounted},
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    types::Opaque,
};

/// `SbInfo::policy` when no `policy=` was given: follow the debugfs knob.
pub(crate) const POLICY_OF_KNOB: u32 = u32::MAX;

/// pinwbfs's part of the module: shared by every superblock (each
/// [`SbInfo`] holds a reference) and by the flusher and debugfs.
#[pin_data]
pub(crate) struct FsShared {
    /// pinwb's pins of pinwbfs folios.
    pub(crate) index: Arc<FolioIndex>,
    /// Every regular pinwbfs inode, from creation to eviction (for syncfs,
    /// the flusher and `corrupt_store`).
    #[pin]
    pub(crate) inodes: Mutex<KVVec<InodePtr>>,
}

/// A regular pinwbfs inode in [`FsShared::inodes`].
pub(crate) struct InodePtr(pub(crate) *mut bindings::inode);

// SAFETY: Only used under `FsShared::inodes`'s lock, and with a reference from `igrab`; an
// inode may be used from any thread.
unsafe impl Send for InodePtr {}

impl FsShared {
    pub(crate) fn new(index: Arc<FolioIndex>) -> impl PinInit<Self> {
        pin_init!(FsShared {
            index,
            inodes <- kernel::new_mutex!(KVVec::new()),
        })
    }

    /// Calls `f` on every regular pinwbfs inode (of `sb`, if given), each
    /// held with `igrab` while `f` runs, outside the registry lock.
    pub(crate) fn for_each_inode(
        &self,
        sb: Option<*mut bindings::super_block>,
        mut f: impl FnMut(&Inode),
    ) {
        let mut held = KVVec::new();
        {
            let list = self.inodes.lock();
            for p in list.iter() {
                // SAFETY: Registered inodes are valid until they leave the registry in
                // `evict_inode`, which takes the lock; `igrab` fails for one being evicted and
                // otherwise takes a reference, which the `ARef` owns.
                let inode = unsafe {
                    if sb.is_some_and(|sb| (*p.0).i_sb != sb) {
                        continue;
                    }
                    match NonNull::new(bindings::igrab(p.0)) {
                        Some(i) => ARef::from_raw(i.cast::<Inode>()),
                        None => continue,
                    }
                };
                // Dropping one that does not fit puts it back (`iput`).
                let _ = held.push(inode, GFP_KERNEL);
            }
        }
        for inode in held.iter() {
            f(inode);
        }
    }
}

/// A regular pinwbfs inode.
///
/// # Invariants
///
/// A `&Inode` exists only for a live regular pinwbfs inode (an `InodeData`
/// in `i_private`, a pinwbfs superblock) that stays referenced for the
/// borrow; an `ARef<Inode>` owns a reference.
#[repr(transparent)]
pub(crate) struct Inode(Opaque<bindings::inode>);

// SAFETY: `ihold()` keeps an inode until the matching `iput()`; every inode is
// reference-counted.
unsafe impl AlwaysRefCounted for Inode {
    fn inc_ref(&self) {
        // SAFETY: The inode is referenced (type invariant), so `ihold` may take another.
        unsafe { bindings::ihold(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it owns; process context.
        unsafe { bindings::iput(obj.cast().as_ptr()) };
    }
}

impl Inode {
    /// # Safety
    ///
    /// `inode` is a live regular pinwbfs inode, referenced for `'a`.
    pub(crate) unsafe fn from_raw<'a>(inode: *mut bindings::inode) -> &'a Inode {
        // SAFETY: A transparent wrapper.
        // INVARIANT: As the caller guarantees.
        unsafe { &*inode.cast() }
    }

    /// The host of `mapping`.
    ///
    /// # Safety
    ///
    /// `mapping` is the mapping of a live regular pinwbfs inode, referenced
    /// for `'a` (as in every `address_space_operations` callback).
    pub(crate) unsafe fn of_mapping<'a>(mapping: *mut bindings::address_space) -> &'a Inode {
        // SAFETY: As the caller guarantees.
        unsafe { Inode::from_raw((*mapping).host) }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// pinwbfs's data of the file.
    pub(crate) fn data(&self) -> &InodeData {
        // SAFETY: Regular pinwbfs inodes get an `InodeData` in `i_private` at creation, freed
        // in `evict_inode`, after the last reference (type invariant).
        unsafe { &*(*self.as_raw()).i_private.cast::<InodeData>() }
    }

    /// The superblock's options and shared state.
    pub(crate) fn sb_info(&self) -> &SbInfo {
        // SAFETY: The inode's superblock is a live pinwbfs one (type invariant), which
        // outlives its inodes.
        unsafe { sb_info((*self.as_raw()).i_sb) }
    }

    /// The inode number.
    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: The inode is valid (type invariant); `i_ino` is set at creation.
        unsafe { (*self.as_raw()).i_ino }
    }

    /// The file's mapping (`i_mapping`).
    pub(crate) fn mapping(&self) -> *mut bindings::address_space {
        // SAFETY: The inode is valid (type invariant); `i_mapping` is set at creation.
        unsafe { (*self.as_raw()).i_mapping }
    }

    /// `i_size_read()`.
    pub(crate) fn size(&self) -> i64 {
        // SAFETY: The inode is valid (type invariant).
        unsafe { pinwb_i_size_read(self.as_raw()) }
    }

    /// `mapping_set_error()`: records a writeback error for fsync and
    /// syncfs (errseq).
    pub(crate) fn set_error(&self, err: Error) {
        // SAFETY: The inode, and so its mapping, is live (type invariant).
        unsafe { pinwb_mapping_set_error(self.mapping(), err.to_errno()) };
    }
}

/// Mount options of one superblock (`sb->s_fs_info`), or of a mount or
/// remount request being parsed.
pub(crate) struct SbInfo {
    /// `policy=` as a [`Policy`] number, or [`POLICY_OF_KNOB`]; changed by
    /// a remount while writeback may read it.
    pub(crate) policy: Atomic<u32>,
    /// `mmwb`: writeback-capable bdi, `page_mkwrite`, kernel-driven writeback.
    pub(crate) mmwb: bool,
    /// `cow`: Chinner's reservation model, with a budget of `blocks=` blocks.
    pub(crate) cow: bool,
    /// `blocks=`, as parsed (0: not given).
    pub(crate) nr_blocks: u64,
    /// `cow_fixup`: reserve again before pinwbfs keeps or makes a folio
    /// dirty (btrfs's writepage fixup), instead of writing it unreserved later.
    pub(crate) cow_fixup: bool,
    /// The budget of a `cow` mount, made at mount time.
    pub(crate) blocks: Option<Arc<Blocks>>,
    pub(crate) shared: Arc<FsShared>,
}

impl SbInfo {
    /// The `policy=` of the mount, if one was given.
    pub(crate) fn mount_policy(&self) -> Option<Policy> {
        Policy::from_u32(self.policy.load(Relaxed))
    }

    /// The policy in force: the mount's, or the debugfs knob's.
    pub(crate) fn policy(&self) -> Policy {
        self.mount_policy().unwrap_or_else(|| TUNABLES.policy())
    }
}

/// What pinwbfs keeps per regular file (`inode->i_private`).
#[pin_data]
pub(crate) struct InodeData {
    #[pin]
    pub(crate) store: Store,
    /// Serialises writepages, truncation and store updates of one file.
    #[pin]
    pub(crate) wb_lock: Mutex<()>,
    /// `cow`: the pages that hold a reservation (a block of the budget for
    /// their next write).
    #[pin]
    pub(crate) reserved: Mutex<RBTree<usize, ()>>,
}

impl InodeData {
    /// Reserves a block for page `index`'s next write unless it holds one:
    /// whether it took one now; `ENOSPC` if the budget has none left.
    pub(crate) fn reserve(&self, blocks: &Blocks, index: usize) -> Result<bool> {
        if self.reserved.lock().get(&index).is_some() {
            return Ok(false);
        }
        let node = RBTreeNode::new(index, (), GFP_KERNEL)?;
        blocks.take()?;
        if self.reserved.lock().insert(node).is_some() {
            // Reserved meanwhile (a fault and a write of the same page): one is enough.
            blocks.put(1);
            return Ok(false);
        }
        COUNTERS.reserved.add(1, Relaxed);
        Ok(true)
    }

    /// Gives back page `index`'s reservation, unused.
    pub(crate) fn unreserve(&self, blocks: &Blocks, index: usize) {
        if self.consume_reservation(index) {
            blocks.put(1);
        }
    }

    /// Takes page `index`'s reservation for its write; false if it had none.
    pub(crate) fn consume_reservation(&self, index: usize) -> bool {
        self.reserved.lock().remove(&index).is_some()
    }

    /// Drops the reservations of pages at or past `first` (truncation,
    /// eviction), giving their blocks back.
    pub(crate) fn drop_reservations(&self, blocks: &Blocks, first: usize) {
        let n = crate::store::remove_from(&mut self.reserved.lock(), first, usize::MAX);
        blocks.put(n as u64);
    }
}

/// The superblock's options.
///
/// # Safety
///
/// `sb` must be a live pinwbfs superblock.
pub(crate) unsafe fn sb_info<'a>(sb: *mut bindings::super_block) -> &'a SbInfo {
    // SAFETY: `s_fs_info` of a pinwbfs superblock is a `KBox<SbInfo>` set at mount (by
    // `sget_fc`) and freed in `kill_sb`, after the last use.
    unsafe { &*(*sb).s_fs_info.cast::<SbInfo>() }
}

/// An operations table in a `static`: the kernel only reads it. Transparent,
/// so that C can name the tables `fs_glue.c` links to.
#[repr(transparent)]
pub(crate) struct Ops<T>(pub(crate) T);

/// `Sync` for the operations tables pinwbfs defines, and only those.
macro_rules! ops_are_sync {
    ($($t:ty),*) => {$(
        // SAFETY: An operations table of this type holds only function pointers and
        // pointers to other immutable statics (the owner module, names); pinwbfs's tables are
        // `static`s that nothing writes after compilation, so sharing them is sharing
        // immutable data.
        unsafe impl Sync for Ops<$t> {}
    )*};
}
ops_are_sync!(
    bindings::address_space_operations,
    bindings::inode_operations,
    bindings::file_operations,
    bindings::vm_operations_struct
);
