// SPDX-License-Identifier: GPL-2.0

//! pinwbfs regular files: file and inode operations, mmap, fsync, truncate,
//! and the ioctl that reads the backing store directly.

use crate::{
    aops,
    defs::{self, pinwbfs_read_store},
    fs_data::{Inode, Ops},
    helpers::{pinwb_file_readable, pinwb_invalidate_lock, pinwb_invalidate_unlock},
};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_ulong},
    ioctl::_IOC_SIZE,
    page::PAGE_SIZE,
    prelude::*,
    uaccess::UserSlice,
};

/// Regular files' file operations (`fs_glue.c` sets them).
#[export_name = "pinwbfs_file_fops"]
static FILE_FOPS: Ops<bindings::file_operations> = Ops(bindings::file_operations {
    llseek: Some(bindings::generic_file_llseek),
    read_iter: Some(bindings::generic_file_read_iter),
    write_iter: Some(bindings::generic_file_write_iter),
    mmap_prepare: Some(mmap_prepare),
    fsync: Some(fsync),
    splice_read: Some(bindings::filemap_splice_read),
    unlocked_ioctl: Some(ioctl),
    ..pin_init::zeroed()
});

/// Regular files' inode operations (`fs_glue.c` sets them).
#[export_name = "pinwbfs_file_iops"]
static FILE_IOPS: Ops<bindings::inode_operations> = Ops(bindings::inode_operations {
    setattr: Some(setattr),
    getattr: Some(bindings::simple_getattr),
    ..pin_init::zeroed()
});

/// mmap of a default (noop bdi) mount: no `page_mkwrite`, so mm does not
/// need dirty tracking for these VMAs and allows R/W long-term pins; pinwb
/// tracks CPU stores itself (`aops.rs`: PTE dirty bits are harvested with
/// `folio_mkclean()`).
static VM_OPS: Ops<bindings::vm_operations_struct> = Ops(bindings::vm_operations_struct {
    fault: Some(bindings::filemap_fault),
    map_pages: Some(bindings::filemap_map_pages),
    ..pin_init::zeroed()
});

/// mmap of an `mmwb` mount: as `generic_file_vm_ops` (write-notify through
/// `page_mkwrite`), so mm refuses R/W `FOLL_LONGTERM` pins with `EFAULT`.
static VM_OPS_MKWRITE: Ops<bindings::vm_operations_struct> = Ops(bindings::vm_operations_struct {
    fault: Some(bindings::filemap_fault),
    map_pages: Some(bindings::filemap_map_pages),
    page_mkwrite: Some(page_mkwrite),
    ..pin_init::zeroed()
});

/// `filemap_page_mkwrite()`, after a `cow` mount's reservation for the page
/// (its clean->dirty transition through a store): `SIGBUS` when the budget
/// is spent, as a disk filesystem's fault fails on `ENOSPC`.
///
/// # Safety
///
/// Called only by mm, as `vm_operations_struct::page_mkwrite` of an `mmwb`
/// pinwbfs mapping.
unsafe extern "C" fn page_mkwrite(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: mm passes a valid fault of a VMA that maps one of our regular files, which the
    // VMA holds open.
    let (inode, index) = unsafe {
        let f = &(*vmf).__bindgen_anon_1;
        (Inode::from_raw((*(*f.vma).vm_file).f_inode), f.pgoff)
    };
    if let Some(b) = &inode.sb_info().blocks {
        if inode.data().reserve(b, index).is_err() {
            return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
        }
    }
    // SAFETY: As above: the generic handler of a file mapping's write fault.
    unsafe { bindings::filemap_page_mkwrite(vmf) }
}

/// # Safety
///
/// Called only by the VFS, as `file_operations::mmap_prepare` of a pinwbfs file.
unsafe extern "C" fn mmap_prepare(desc: *mut bindings::vm_area_desc) -> c_int {
    // SAFETY: The VFS passes a valid descriptor of a mapping of one of our files.
    unsafe {
        let file = (*desc).file;
        bindings::touch_atime(&raw const (*file).__bindgen_anon_1.f_path);
        let mmwb = Inode::from_raw((*file).f_inode).sb_info().mmwb;
        (*desc).vm_ops = if mmwb { &VM_OPS_MKWRITE.0 } else { &VM_OPS.0 };
    }
    0
}

/// `fsync(2)`/`fdatasync(2)`/`msync(MS_SYNC)`: data-integrity writeback of
/// the range. On `mmwb` mounts through the kernel's own path
/// (`file_write_and_wait_range` reaches `->writepages`), otherwise directly.
/// Either way an error recorded in the mapping since this file last looked
/// (a failed store write of the flusher, of another descriptor's sync) is
/// reported once (`file_check_and_advance_wb_err`), as on disk filesystems.
/// # Safety
///
/// Called only by the VFS, as `file_operations::fsync` of a pinwbfs file.
unsafe extern "C" fn fsync(
    file: *mut bindings::file,
    start: i64,
    end: i64,
    _datasync: c_int,
) -> c_int {
    // SAFETY: The VFS passes an open regular file of ours, which references its inode.
    let inode = unsafe { Inode::from_raw((*file).f_inode) };
    if inode.sb_info().mmwb {
        // SAFETY: An open file; the kernel's own fsync path.
        return unsafe { bindings::file_write_and_wait_range(file, start, end) };
    }
    let ret = aops::sync_mapping(inode, start, end, true, None);
    // SAFETY: An open file.
    let err = unsafe { bindings::file_check_and_advance_wb_err(file) };
    if ret != 0 {
        ret
    } else {
        err
    }
}

/// # Safety
///
/// Called only by the VFS, as `inode_operations::setattr` of a pinwbfs file, with its locks held.
unsafe extern "C" fn setattr(
    idmap: *mut bindings::mnt_idmap,
    dentry: *mut bindings::dentry,
    attr: *mut bindings::iattr,
) -> c_int {
    // SAFETY: The VFS passes a locked dentry of ours and valid attributes.
    unsafe {
        let inode = (*dentry).d_inode;
        let ret = bindings::setattr_prepare(idmap, dentry, attr);
        if ret != 0 {
            return ret;
        }
        if (*attr).ia_valid & bindings::ATTR_SIZE != 0 {
            let data = Inode::from_raw(inode).data();
            let mapping = (*inode).i_mapping;
            // No fault or read-in may fill a folio from the store between the two steps
            // (they take the invalidate lock shared), and no writeback may store pages
            // while the file shrinks under it.
            pinwb_invalidate_lock(mapping);
            {
                let _wb = data.wb_lock.lock();
                bindings::truncate_setsize(inode, (*attr).ia_size);
                data.store.truncate((*attr).ia_size as u64);
                if let Some(b) = &Inode::from_raw(inode).sb_info().blocks {
                    // The dropped folios' reservations go with them.
                    let first = ((*attr).ia_size as u64).div_ceil(PAGE_SIZE as u64);
                    data.drop_reservations(b, usize::try_from(first).unwrap_or(usize::MAX));
                }
            }
            pinwb_invalidate_unlock(mapping);
        }
        bindings::setattr_copy(idmap, inode, attr);
    }
    0
}

/// # Safety
///
/// Called only by the VFS, as `file_operations::unlocked_ioctl` of a pinwbfs file.
unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    if cmd != defs::PINWBFS_IOC_READ_STORE {
        return ENOTTY.to_errno() as c_long;
    }
    let (mut r, _) = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd)).reader_writer();
    let res = (|| -> Result<usize> {
        // SAFETY: The VFS passes an open file.
        if !unsafe { pinwb_file_readable(file) } {
            return Err(EBADF);
        }
        let args: pinwbfs_read_store = r.read()?;
        if args.reserved.iter().any(|&x| x != 0) {
            return Err(EINVAL);
        }
        let len = usize::try_from(args.len).map_err(|_| EINVAL)?;
        args.offset.checked_add(args.len).ok_or(EINVAL)?;
        let mut w = UserSlice::new(UserPtr::from_addr(args.buf as usize), len).writer();
        // SAFETY: The VFS passes an open regular file of ours, which references its inode.
        let inode = unsafe { Inode::from_raw((*file).f_inode) };
        inode
            .data()
            .store
            .read_user(args.offset, len, inode.size().max(0) as u64, &mut w)
    })();
    match res {
        Ok(n) => n as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}
