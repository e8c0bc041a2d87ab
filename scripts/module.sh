#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# module.sh [TARGET]: build pinwb.ko in place with Kbuild against the test
# kernel (or KDIR=), or run Kbuild's TARGET for it (modules_install,
# rust-analyzer). CLIPPY=1 runs clippy on the Rust crate as part of the build.
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
# Another kernel variant gets its own copy of the sources to build in, so the
# in-place objects of the default test kernel stay valid (cp -a keeps mtimes:
# Kbuild rebuilds only what changed).
dir=$PINWB_ROOT
if [ -n "${PINWB_VARIANT:-}" ]; then
	dir=$PINWB_ROOT/build/module-$PINWB_VARIANT
	mkdir -p "$dir"
	cp -a -u "$PINWB_ROOT/Kbuild" "$PINWB_ROOT/src" "$PINWB_ROOT/include" "$dir/"
fi
target=${1:-modules}
make -s -C "$kbuild" M="$dir" "${MAKEVARS[@]}" "${extra[@]}" W=1 "$target"
case $target in
modules) pinwb_log "module: $dir/pinwb.ko" ;;
modules_install) pinwb_log "installed: ${INSTALL_MOD_PATH:-}/lib/modules/$(make -s -C "$kbuild" kernelrelease)/updates/pinwb.ko" ;;
rust-analyzer)
	# scripts/generate_rust_analyzer.py finds a crate root through the
	# Kbuild file beside it (src/Kbuild).
	grep -q '"root_module": "[^"]*src/pinwb_main.rs"' "$dir/rust-project.json" ||
		pinwb_die "rust-project.json has no pinwb crate (src/pinwb_main.rs)"
	pinwb_log "rust-analyzer: $dir/rust-project.json, with the pinwb crate"
	;;
esac
