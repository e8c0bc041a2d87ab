#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the selftests (statically linked, so they run in a busybox initramfs)
# with the kernel tree's kselftest_harness.h, into build/selftests/.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kbuild=$("$PINWB_ROOT/scripts/kernel.sh")
ksrc=$(readlink -f "$kbuild/source" 2>/dev/null || echo "$kbuild")
make -s -C "$PINWB_ROOT/selftests" KSRC="$ksrc" OUT="$PINWB_ROOT/build/selftests"
