#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# pinwbfs_fio_uring POLICY [SECONDS]: fio as the foreign long-term pinner.
#
# fio's io_uring engine with fixedbufs registers its IO buffers, which
# iomem=mmapshared places in a MAP_SHARED mapping of a pinwbfs file: io_uring
# pins those page cache pages FOLL_WRITE | FOLL_LONGTERM and copies the data
# it reads (random 4 KiB reads of a file on the initramfs) into them through
# kernel mappings. Meanwhile this script fsyncs the buffer file in a loop.
# When fio has exited (and io_uring has let go), a last fsync must succeed;
# then the backing store is compared with the page cache.
#
# Prints one line of key=value fields (make run shows them as a table; the
# tools test checks them):
#   policy fio (exit status) syncs (fsyncs while fio ran) first_error (of
#   those, the first failure: ok, EBUSY, ETIMEDOUT, ...) torn foreign bounced
#   timeouts (counter deltas) final (last fsync) lost (bytes of the buffer
#   file the store does not have, or EIO if a page torn in flight fails
#   its stored checksum).

policy=${1:?policy}
secs=${2:-3}
BIN=$(dirname "$0")
DBG=/sys/kernel/debug/pinwb
M=/tmp/pinwbfs-fio-$policy
SRC=/tmp/pinwbfs-fio-src
OUT=/tmp/pinwbfs-fio-$policy.out

ctr() { cat "$DBG/$1"; }
# fsync FILE; prints ok or the errno name.
fsync_res() {
	err=$(sync "$1" 2>&1) && { echo ok; return; }
	case $err in
	*"busy"*) echo EBUSY ;;
	*"timed out"*) echo ETIMEDOUT ;;
	*) echo "error($err)" ;;
	esac
}

mkdir -p "$M"
mount -t pinwbfs -o "policy=$policy" none "$M" || { echo "policy=$policy mount=failed"; exit 1; }
old_delay=$(ctr io_delay_us) old_timeout=$(ctr wait_timeout_ms)
echo 3000 > $DBG/io_delay_us
echo 200 > $DBG/wait_timeout_ms
# fio keeps an iomem file that exists before it starts.
xfs_io -f -c "truncate 64k" "$M/buf"

torn=$(ctr torn_writes) foreign=$(ctr foreign_seen) bounced=$(ctr bounced)
timeouts=$(ctr wait_timeouts)
fio --thread --name=uring --ioengine=io_uring --fixedbufs --iomem="mmapshared:$M/buf" \
	--rw=randread --bs=4k --iodepth=8 --filename="$SRC" --size=1m --time_based --eta=never \
	--runtime="$secs" --output="$OUT" &
pid=$!
syncs=0 first=ok
while kill -0 $pid 2>/dev/null; do
	r=$(fsync_res "$M/buf")
	syncs=$((syncs + 1))
	[ "$first" = ok ] && first=$r
	sleep 0.05
done
wait $pid
fio=$?
[ $fio = 0 ] || sed 's/^/# /' "$OUT" >&2
torn=$(($(ctr torn_writes) - torn)) foreign=$(($(ctr foreign_seen) - foreign))
bounced=$(($(ctr bounced) - bounced)) timeouts=$(($(ctr wait_timeouts) - timeouts))

# io_uring unpins the buffers when fio's ring is torn down, asynchronously
# after fio exits; skip, fail and wait refuse to sync until then.
i=0
while final=$(fsync_res "$M/buf") && [ "$final" != ok ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
# A page torn in flight fails its stored checksum: the store reads EIO.
if "$BIN/pinwb_store_cat" "$M/buf" > /tmp/pinwbfs-fio-stored 2>/dev/null; then
	lost=$(cmp -l "$M/buf" /tmp/pinwbfs-fio-stored 2>/dev/null | wc -l)
else
	lost=EIO
fi
size=$(stat -c %s "$M/buf")

echo "policy=$policy fio=$fio syncs=$syncs first_error=$first torn=$torn foreign=$foreign" \
	"bounced=$bounced timeouts=$timeouts final=$final lost=$lost size=$size"
echo "$old_delay" > $DBG/io_delay_us
echo "$old_timeout" > $DBG/wait_timeout_ms
rm -f /tmp/pinwbfs-fio-stored "$OUT"
umount "$M"
