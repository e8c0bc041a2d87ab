#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the selftests (statically linked, so they run in a busybox initramfs)
# with the kernel tree's lib.mk and kselftest_harness.h, and install them as
# the kernel's kselftest install does, into build/kselftest/: the programs in
# pinwb/, the kernel's run_kselftest.sh and kselftest/ beside them, and
# kselftest-list.txt. The guest has it at /kselftest, and /selftests is
# /kselftest/pinwb.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kbuild=$("$PINWB_ROOT/scripts/kernel.sh")
ksrc=$(readlink -f "$kbuild/source" 2>/dev/null || echo "$kbuild")
inst=$PINWB_ROOT/build/kselftest
smake() {
	make -s -C "$PINWB_ROOT/selftests" KSRC="$ksrc" OUTPUT="$PINWB_ROOT/build/selftests" "$@"
}
mkdir -p "$PINWB_ROOT/build/selftests"
smake -j"$(nproc)" all >/dev/null
smake install INSTALL_PATH="$inst/pinwb" >/dev/null
smake emit_tests COLLECTION=pinwb > "$inst/kselftest-list.txt"
mkdir -p "$inst/kselftest"
cp "$ksrc/tools/testing/selftests/run_kselftest.sh" "$inst/"
cp "$ksrc"/tools/testing/selftests/kselftest/{runner.sh,ktap_helpers.sh,prefix.pl} "$inst/kselftest/"

# The kernel's own anchors for the real-filesystem lab, from the same source:
# tools/testing/selftests/mm gup_longterm and gup_test, static, against the
# kernel's uapi headers. `make headers` into a private O= directory (once,
# about 12 s): headers_install needs rsync, and the test kernel's build
# directory is shared.
hdr=$PINWB_ROOT/build/khdr
mm=$ksrc/tools/testing/selftests/mm
out=$inst/pinwb
if [ ! -f "$hdr/usr/include/linux/mman.h" ]; then
	mkdir -p "$hdr"
	make -s -C "$ksrc" O="$hdr" ARCH=x86_64 headers >/dev/null
fi
mkdir -p "$PINWB_ROOT/build/mmtests"
echo '#define LOCAL_CONFIG_HAVE_LIBURING 1' > "$PINWB_ROOT/build/mmtests/local_config.h_gen"
for t in gup_longterm gup_test; do
	[ "$out/$t" -nt "$mm/$t.c" ] && continue
	# In the source directory: gup_longterm names its "local tmpfile"
	# __FILE__"_XXXXXX", which must be a relative path in the guest.
	(cd "$mm" && gcc -static -O2 -pthread -isystem "$hdr/usr/include" \
		-I"$PINWB_ROOT/build/mmtests" -I"$ksrc/tools/testing/selftests" -I"$ksrc" \
		-o "$out/$t" "$t.c" vm_util.c hugepage_settings.c -luring)
done
