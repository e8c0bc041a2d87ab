/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between fs_context.c (C glue) and src/fs.rs (Rust).
 */
#ifndef PINWBFS_FS_CONTEXT_H
#define PINWBFS_FS_CONTEXT_H

struct fs_context;
struct super_block;

/* In C, for file_system_type.init_fs_context. */
int pinwbfs_init_fs_context(struct fs_context *fc);

/* In Rust (src/fs.rs). */
void *pinwbfs_alloc_fs_info(void);
void pinwbfs_free_fs_info(void *fsi);
int pinwbfs_parse_option(void *fsi, const char *key, const char *value);
int pinwbfs_fill_super(struct super_block *sb);

#endif /* PINWBFS_FS_CONTEXT_H */
