/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between fs_glue.c (pinwbfs's VFS glue, in C) and src/fs.rs (Rust).
 */
#ifndef PINWBFS_FS_GLUE_H
#define PINWBFS_FS_GLUE_H

#include <linux/types.h>

struct address_space_operations;
struct file_operations;
struct file_system_type;
struct inode;
struct inode_operations;
struct module;
struct super_block;

/* In Rust: the operations of regular files (src/aops.rs, src/file.rs). */
extern const struct address_space_operations pinwbfs_aops;
extern const struct inode_operations pinwbfs_file_iops;
extern const struct file_operations pinwbfs_file_fops;

/* In C: fills the (zeroed or not) pinwbfs type, to be registered. */
void pinwbfs_init_fs_type(struct file_system_type *fs_type, struct module *owner);

/* In Rust (src/fs.rs): the mount options, of a request (@fsi) or of a mount. */
void *pinwbfs_alloc_fs_info(struct file_system_type *fs_type);
void pinwbfs_free_fs_info(void *fsi);
int pinwbfs_parse_option(void *fsi, const char *key, const char *value);
int pinwbfs_reconfigure(struct super_block *sb, void *fsi);
const char *pinwbfs_policy_of_mount(struct super_block *sb);
bool pinwbfs_is_mmwb(struct super_block *sb);
unsigned long long pinwbfs_cow_blocks(struct super_block *sb);
bool pinwbfs_is_cow_fixup(struct super_block *sb);
const char *pinwbfs_policy_names(void);

/* In Rust: a new superblock's own state (the budget of a cow mount). */
int pinwbfs_setup_super(struct super_block *sb);
/* In Rust: a cow mount's budget and what is left of it; false without cow. */
bool pinwbfs_blocks_usage(struct super_block *sb, u64 *blocks, u64 *free);
int pinwbfs_sync_fs(struct super_block *sb, int wait);

/* In Rust: a new regular file's data (i_private) and registration. */
int pinwbfs_init_inode(struct inode *inode);
/* In Rust: after clear_inode() of a regular file, its data goes. */
void pinwbfs_evict_inode_data(struct inode *inode);
void pinwbfs_count_dirty_dropped(unsigned long folios);

#endif /* PINWBFS_FS_GLUE_H */
