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
#include <linux/seq_file.h>

#include "fs_context.h"

static int pinwbfs_fc_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	const char *value = param->type == fs_value_is_string ? param->string : NULL;
	int ret;

	/* -ENOPARAM lets the VFS handle what is not ours (e.g. "source"). */
	ret = pinwbfs_parse_option(fc->s_fs_info, param->key, value);
	if (ret == -EINVAL)
		return invalfc(fc, "bad option '%s%s%s': policy=%s, blocks=<N > 0>, or mmwb, cow, cow_fixup without a value",
			       param->key, value ? "=" : "", value ?: "", pinwbfs_policy_names());
	return ret;
}

/*
 * mount -o remount: policy= takes effect at once; mmwb (the superblock's bdi
 * and every mapping's vm_ops) cannot be added to a mounted filesystem.
 */
static int pinwbfs_fc_reconfigure(struct fs_context *fc)
{
	int ret = pinwbfs_reconfigure(fc->root->d_sb, fc->s_fs_info);

	if (ret == -EINVAL)
		return invalfc(fc, "mmwb, cow, cow_fixup and blocks= cannot be changed on remount; mount again to change them");
	return ret;
}

int pinwbfs_show_options(struct seq_file *m, struct dentry *root)
{
	const char *policy = pinwbfs_policy_of_mount(root->d_sb);

	if (policy)
		seq_printf(m, ",policy=%s", policy);
	if (pinwbfs_is_mmwb(root->d_sb))
		seq_puts(m, ",mmwb");
	if (pinwbfs_cow_blocks(root->d_sb))
		seq_printf(m, ",cow,blocks=%llu", pinwbfs_cow_blocks(root->d_sb));
	if (pinwbfs_is_cow_fixup(root->d_sb))
		seq_puts(m, ",cow_fixup");
	return 0;
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
	.reconfigure	= pinwbfs_fc_reconfigure,
	.free		= pinwbfs_fc_free,
};

int pinwbfs_init_fs_context(struct fs_context *fc)
{
	void *fsi = pinwbfs_alloc_fs_info(fc->fs_type);

	if (!fsi)
		return -ENOMEM;
	fc->s_fs_info = fsi;
	fc->ops = &pinwbfs_context_ops;
	return 0;
}
