/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between fs_context.c (C glue) and src/fs.rs (Rust).
 */
#ifndef PINWBFS_FS_CONTEXT_H
#define PINWBFS_FS_CONTEXT_H

struct dentry;
struct fs_context;
struct seq_file;
struct super_block;

/* In C, for file_system_type.init_fs_context and super_operations.show_options. */
int pinwbfs_init_fs_context(struct fs_context *fc);
int pinwbfs_show_options(struct seq_file *m, struct dentry *root);

/* In Rust (src/fs.rs). */
struct file_system_type;
void *pinwbfs_alloc_fs_info(struct file_system_type *fs_type);
void pinwbfs_free_fs_info(void *fsi);
int pinwbfs_parse_option(void *fsi, const char *key, const char *value);
int pinwbfs_fill_super(struct super_block *sb);
int pinwbfs_reconfigure(struct super_block *sb, void *fsi);
const char *pinwbfs_policy_of_mount(struct super_block *sb);
bool pinwbfs_is_mmwb(struct super_block *sb);
unsigned long long pinwbfs_cow_blocks(struct super_block *sb);
bool pinwbfs_is_cow_fixup(struct super_block *sb);
const char *pinwbfs_policy_names(void);

#endif /* PINWBFS_FS_CONTEXT_H */
