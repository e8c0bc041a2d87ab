// SPDX-License-Identifier: GPL-2.0
/*
 * pinwbfs mount glue. struct fs_context, fs_context_operations and
 * fs_parameter are not in 7.3's Rust bindings, so this file holds the
 * context operations table, as drivers/android/binder/rust_binderfs.c does
 * for binderfs. Every decision is made in Rust (src/fs.rs).
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>

#include "fs_context.h"

static int pinwbfs_fc_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	const char *value = param->type == fs_value_is_string ? param->string : NULL;

	/* -ENOPARAM lets the VFS handle what is not ours (e.g. "source"). */
	return pinwbfs_parse_option(fc->s_fs_info, param->key, value);
}

static int pinwbfs_fc_fill_super(struct super_block *sb, struct fs_context *fc)
{
	/* sget_fc() moved fc->s_fs_info to sb->s_fs_info. */
	return pinwbfs_fill_super(sb);
}

static int pinwbfs_fc_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, pinwbfs_fc_fill_super);
}

static void pinwbfs_fc_free(struct fs_context *fc)
{
	pinwbfs_free_fs_info(fc->s_fs_info);
}

static const struct fs_context_operations pinwbfs_context_ops = {
	.parse_param	= pinwbfs_fc_parse_param,
	.get_tree	= pinwbfs_fc_get_tree,
	.free		= pinwbfs_fc_free,
};

int pinwbfs_init_fs_context(struct fs_context *fc)
{
	void *fsi = pinwbfs_alloc_fs_info();

	if (!fsi)
		return -ENOMEM;
	fc->s_fs_info = fsi;
	fc->ops = &pinwbfs_context_ops;
	return 0;
}
