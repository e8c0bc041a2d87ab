#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Real tools on pinwbfs: xfs_io (pwrite, mmap, msync, fsync), fio with
# verify=crc32c, and fio's io_uring fixed buffers in a pinwbfs mapping (pins
# that are not pinwb's). Each result is checked against what the backing
# store holds (pinwb_store_cat), not only against the page cache. TAP output.

M=/tmp/pinwbfs-tools
R=/tmp/pinwbfs-tools-ref
BIN=${0%/*}
KSFT_SKIP=4

# kselftest's rule: skip, not fail, when something this needs is absent.
skip() { echo "1..0 # SKIP $*"; exit $KSFT_SKIP; }
[ "$(id -u)" = 0 ] || skip "needs root (pinwbfs and /dev/pinwb)"
for tool in xfs_io fio; do
	command -v $tool > /dev/null || skip "$tool is not installed"
done
grep -qw pinwbfs /proc/filesystems || skip "pinwbfs is not registered: load pinwb.ko first"
DBG=/sys/kernel/debug/pinwb
n=0
failed=0

t() { # t NAME: run the function NAME, one TAP line
	n=$((n + 1))
	if "$1" > /tmp/tools.out 2>&1; then
		echo "ok $n tools.$1"
	else
		echo "not ok $n tools.$1"
		sed 's/^/# /' /tmp/tools.out
		failed=1
	fi
}

# stored FILE: the backing store holds exactly FILE's contents.
stored() { "$BIN/pinwb_store_cat" "$1" > /tmp/stored && cmp "$1" /tmp/stored; }

xfs_io_pwrite_fsync() {
	xfs_io -f -c "pwrite -S 0xab -b 8k 0 100k" -c "pwrite -S 0x5c 4000 1000" "$R/a" &&
	xfs_io -f -c "pwrite -S 0xab -b 8k 0 100k" -c "pwrite -S 0x5c 4000 1000" -c fsync "$M/a" &&
	cmp "$R/a" "$M/a" && stored "$M/a"
}

xfs_io_mmap_mwrite_msync() {
	xfs_io -f -c "truncate 64k" -c "mmap -rw 0 64k" -c "mwrite -S 0xcd 0 64k" \
		-c "msync -s 0 64k" -c munmap "$M/b" &&
	xfs_io -f -c "pwrite -S 0xcd 0 64k" "$R/b" &&
	cmp "$R/b" "$M/b" && stored "$M/b"
}

# Loads first, then stores: on a tmpfs-like mapping the stores do not fault.
xfs_io_mmap_load_then_store() {
	xfs_io -f -c "truncate 64k" -c "mmap -rw 0 64k" -c "mread 0 64k" \
		-c "mwrite -S 0xef 0 64k" -c "msync -s 0 64k" -c munmap "$M/c" &&
	xfs_io -f -c "pwrite -S 0xef 0 64k" "$R/c" &&
	cmp "$R/c" "$M/c" && stored "$M/c"
}

# Stores after a completed writeback must be persisted by the next one.
xfs_io_store_after_writeback() {
	xfs_io -c "mmap -rw 0 64k" -c "mwrite -S 0x11 4096 100" -c fsync \
		-c "mwrite -S 0x22 8192 100" -c fsync -c munmap "$M/c" &&
	stored "$M/c"
}

# --thread: jobs as threads (the test kernel has no SysV IPC for fio's shm).
fio_job() {
	fio --thread --directory="$M" --size=8m --bs=4k --verify=crc32c --randrepeat=1 \
		--norandommap --output=/tmp/fio.out "$@" || { cat /tmp/fio.out; return 1; }
}

fio_psync_verify() {
	fio_job --name=p --filename=p --ioengine=psync --rw=randwrite --fsync=64 \
		--end_fsync=1 --do_verify=1 && stored "$M/p"
}

fio_verify_only_after_drop_caches() {
	echo 3 > /proc/sys/vm/drop_caches &&
	fio_job --name=p --filename=p --ioengine=psync --rw=randwrite --verify_only
}

fio_mmap_verify() {
	fio_job --name=m --filename=m --ioengine=mmap --rw=randwrite --end_fsync=1 \
		--do_verify=1 && stored "$M/m"
}

# Nothing above writes into pages under IO: no torn write may appear.
no_torn_writes() { [ "$(cat $DBG/torn_writes)" -eq "$torn0" ]; }

# fio with io_uring fixed buffers in a pinwbfs mapping (pinwbfs_fio_uring):
# its pins are foreign to pinwb. field NAME: a field of the scenario's line.
field() { echo "$row" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
fio_uring() { row=$("$BIN/pinwbfs_fio_uring.sh" "$1" 3) && echo "# $row" && [ "$(field fio)" = 0 ]; }

# The bug, with code nobody here wrote: naive writes folios that io_uring is
# copying into.
fio_uring_naive_tears() { fio_uring naive && [ "$(field torn)" -gt 0 ]; }

# auto recognises the pins as someone else's, bounces, tears nothing, and
# loses nothing once fio has let go.
fio_uring_auto_bounces() {
	fio_uring auto && [ "$(field torn)" = 0 ] && [ "$(field foreign)" -gt 0 ] &&
	[ "$(field bounced)" -gt 0 ] && [ "$(field first_error)" = ok ] &&
	[ "$(field final)" = ok ] && [ "$(field lost)" = 0 ]
}

echo "TAP version 13"
echo "1..10"
torn0=$(cat $DBG/torn_writes)
# fio's mmap stores could meet the periodic flusher's IO: on a default mount
# nothing holds a store back while its folio is under writeback (no
# write-notify), and the store checker would rightly count it as torn.
period=$(cat $DBG/flush_period_ms)
echo 0 > $DBG/flush_period_ms
mkdir -p "$M" "$R"
mount -t pinwbfs -o policy=auto none "$M" || { echo "Bail out! mount pinwbfs"; exit 1; }
for name in xfs_io_pwrite_fsync xfs_io_mmap_mwrite_msync xfs_io_mmap_load_then_store \
	    xfs_io_store_after_writeback fio_psync_verify fio_verify_only_after_drop_caches \
	    fio_mmap_verify no_torn_writes; do
	t $name
done
umount "$M"
for name in fio_uring_naive_tears fio_uring_auto_bounces; do
	t $name
done
echo "$period" > $DBG/flush_period_ms
exit $failed
