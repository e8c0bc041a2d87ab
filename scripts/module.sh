#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build pinwb.ko in place with Kbuild against the test kernel (or KDIR=).
# CLIPPY=1 runs clippy on the Rust crate as part of the build.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kbuild=$("$PINWB_ROOT/scripts/kernel.sh")
read -r -a MAKEVARS <<< "$(pinwb_make_vars)"
extra=()
[ -z "${CLIPPY:-}" ] || extra+=(CLIPPY=1)
make -s -C "$kbuild" M="$PINWB_ROOT" "${MAKEVARS[@]}" "${extra[@]}" W=1 modules
pinwb_log "module: $PINWB_ROOT/pinwb.ko"
