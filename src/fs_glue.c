// SPDX-License-Identifier: GPL-2.0
/*
 * pinwbfs's VFS glue. 7.3's Rust has no abstraction for filesystems,
 * superblocks, inodes or mount contexts (struct fs_context, fs_parameter and
 * their operations are not even in its bindings), so this file holds the
 * operations tables and the plain VFS calls that set up a superblock and its
 * inodes, as drivers/android/binder/rust_binderfs.c does for binderfs.
 * Every decision and all of pinwbfs's own state are in Rust (src/fs.rs and
 * src/fs_data.rs): the mount options, the block budget, each file's data and
 * the registry of files, sync_fs. Regular files get their operations from
 * Rust (src/file.rs, src/aops.rs); directories are libfs's.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/folio_batch.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/statfs.h>

#include "fs_glue.h"

/* fs/ramfs's magic is taken; this one spells "PWBF". */
#define PINWBFS_MAGIC	0x50574246

static const struct inode_operations pinwbfs_dir_iops;

/* Dirty folios of the mapping (as tagged in the page cache). */
static unsigned long pinwbfs_count_dirty(struct address_space *mapping)
{
	struct folio_batch fbatch;
	unsigned long n = 0;
	pgoff_t index = 0;

	folio_batch_init(&fbatch);
	while (filemap_get_folios_tag(mapping, &index, (pgoff_t)-1, PAGECACHE_TAG_DIRTY, &fbatch)) {
		n += folio_batch_count(&fbatch);
		folio_batch_release(&fbatch);
		cond_resched();
	}
	return n;
}

/* A new inode of @mode (a directory or a regular file) in @sb; NULL on ENOMEM. */
static struct inode *pinwbfs_new_inode(struct super_block *sb, const struct inode *dir,
				       umode_t mode)
{
	struct inode *inode = new_inode(sb);

	if (!inode)
		return NULL;
	inode->i_ino = get_next_ino();
	inode_init_owner(&nop_mnt_idmap, inode, dir, mode);
	simple_inode_init_ts(inode);
	if (S_ISDIR(mode)) {
		inode->i_op = &pinwbfs_dir_iops;
		inode->i_fop = &simple_dir_operations;
		/* Directories start with i_nlink == 2 ("." entry). */
		inc_nlink(inode);
		return inode;
	}
	inode->i_op = &pinwbfs_file_iops;
	inode->i_fop = &pinwbfs_file_fops;
	/* Only regular files have pages (directories keep empty_aops). */
	inode->i_mapping->a_ops = &pinwbfs_aops;
	/*
	 * Stable pages, as a checksumming filesystem needs: write(2) and
	 * page_mkwrite wait for writeback of the folio. Stores through a default
	 * (noop bdi) mapping cannot be held back: there is no write-notify.
	 */
	mapping_set_stable_writes(inode->i_mapping);
	/* __mark_inode_dirty() ignores unhashed inodes: the flusher would never see them. */
	if (pinwbfs_is_mmwb(sb))
		__insert_inode_hash(inode, inode->i_ino);
	/* On failure, iput() evicts the inode, and with it what Rust made of it. */
	if (pinwbfs_init_inode(inode)) {
		iput(inode);
		return NULL;
	}
	return inode;
}

static int pinwbfs_mknod(struct inode *dir, struct dentry *dentry, umode_t mode)
{
	struct inode *inode = pinwbfs_new_inode(dir->i_sb, dir, mode);

	if (!inode)
		return -ENOMEM;
	d_make_persistent(dentry, inode);
	inode_set_ctime_current(dir);
	return 0;
}

static int pinwbfs_create(struct mnt_idmap *idmap, struct inode *dir, struct dentry *dentry,
			  umode_t mode)
{
	return pinwbfs_mknod(dir, dentry, mode | S_IFREG);
}

static struct dentry *pinwbfs_mkdir(struct mnt_idmap *idmap, struct inode *dir,
				    struct dentry *dentry, umode_t mode)
{
	int ret = pinwbfs_mknod(dir, dentry, mode | S_IFDIR);

	if (ret)
		return ERR_PTR(ret);
	inc_nlink(dir);
	return NULL;
}

static const struct inode_operations pinwbfs_dir_iops = {
	.create		= pinwbfs_create,
	.lookup		= simple_lookup,
	.link		= simple_link,
	.unlink		= simple_unlink,
	.mkdir		= pinwbfs_mkdir,
	.rmdir		= simple_rmdir,
	.rename		= simple_rename,
};

static void pinwbfs_evict_inode(struct inode *inode)
{
	/*
	 * Data a policy kept dirty (skip, fail, bounce) goes with the inode: at
	 * umount (whose sync_fs error the VFS ignores) and after the last
	 * unlink. Counted.
	 */
	if (inode->i_private)
		pinwbfs_count_dirty_dropped(pinwbfs_count_dirty(&inode->i_data));
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (inode->i_private)
		pinwbfs_evict_inode_data(inode);
}

/*
 * statfs(2): simple_statfs(), and on a cow mount the block budget: f_blocks
 * is blocks=, f_bfree what stored pages and reservations leave of it.
 */
static int pinwbfs_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	u64 blocks, free;
	int ret = simple_statfs(dentry, buf);

	if (!ret && pinwbfs_blocks_usage(dentry->d_sb, &blocks, &free)) {
		buf->f_blocks = blocks;
		buf->f_bfree = free;
		buf->f_bavail = free;
	}
	return ret;
}

static int pinwbfs_show_options(struct seq_file *m, struct dentry *root)
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

static const struct super_operations pinwbfs_super_ops = {
	.statfs		= pinwbfs_statfs,
	.drop_inode	= inode_just_drop,
	.evict_inode	= pinwbfs_evict_inode,
	.sync_fs	= pinwbfs_sync_fs,
	.show_options	= pinwbfs_show_options,
};

/* --- mounting -------------------------------------------------------------- */

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

static int pinwbfs_fc_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct inode *root;
	int ret;

	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = PINWBFS_MAGIC;
	sb->s_op = &pinwbfs_super_ops;
	sb->s_time_gran = 1;
	/* sget_fc() moved fc->s_fs_info to sb->s_fs_info. */
	ret = pinwbfs_setup_super(sb);
	if (ret)
		return ret;
	if (pinwbfs_is_mmwb(sb)) {
		ret = super_setup_bdi(sb);
		if (ret)
			return ret;
	}
	root = pinwbfs_new_inode(sb, NULL, S_IFDIR | 0755);
	sb->s_root = d_make_root(root);
	if (!sb->s_root)
		return -ENOMEM;
	return 0;
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

static int pinwbfs_init_fs_context(struct fs_context *fc)
{
	void *fsi = pinwbfs_alloc_fs_info(fc->fs_type);

	if (!fsi)
		return -ENOMEM;
	fc->s_fs_info = fsi;
	fc->ops = &pinwbfs_context_ops;
	return 0;
}

static void pinwbfs_kill_sb(struct super_block *sb)
{
	void *fsi = sb->s_fs_info;

	kill_anon_super(sb);
	pinwbfs_free_fs_info(fsi);
}

void pinwbfs_init_fs_type(struct file_system_type *fs_type, struct module *owner)
{
	*fs_type = (struct file_system_type) {
		.name			= "pinwbfs",
		.init_fs_context	= pinwbfs_init_fs_context,
		.kill_sb		= pinwbfs_kill_sb,
		.owner			= owner,
	};
}
