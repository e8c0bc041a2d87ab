#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build pinwb.ko in place with Kbuild against the test kernel (or KDIR=).
# CLIPPY=1 runs clippy on the Rust crate as part of the build.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kbuild=$("$PINWB_ROOT/scripts/kernel.sh")
ksrc=$(readlink -f "$kbuild/source" 2>/dev/null || echo "$kbuild")
# rustfmt with the kernel's settings; it follows the crate's modules from the root.
fmt=(/usr/bin/rustfmt --edition 2021 --config-path "$ksrc/.rustfmt.toml" "$PINWB_ROOT/src/pinwb_main.rs")
if [ -n "${PINWB_FMT:-}" ]; then
	"${fmt[@]}"
elif ! "${fmt[@]}" --check >/dev/null 2>&1; then
	"${fmt[@]}" --check >&2 || true
	pinwb_die "src/ is not rustfmt-clean: run 'make fmt'"
fi
read -r -a MAKEVARS <<< "$(pinwb_make_vars)"
extra=()
[ -z "${CLIPPY:-}" ] || extra+=(CLIPPY=1)
make -s -C "$kbuild" M="$PINWB_ROOT" "${MAKEVARS[@]}" "${extra[@]}" W=1 modules
pinwb_log "module: $PINWB_ROOT/pinwb.ko"
