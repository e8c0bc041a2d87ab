# SPDX-License-Identifier: GPL-2.0
# Shared settings for pinwb's scripts. Sourced, never executed.
#
# Everything that is downloaded or built lives in $PINWB_CACHE, outside the
# repository, so that a fresh clone reuses a warm cache.

PINWB_CACHE=${PINWB_CACHE:-$HOME/.cache/pinwb}
PINWB_TOOLS=$PINWB_CACHE/tools
PINWB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The kernel package pinwb is developed against, and the minimum bindgen.
PINWB_KPKG=${PINWB_KPKG:-linux-source-7.3}
PINWB_BINDGEN_MIN=0.72.1

# rustc-web's LLVM is 22: clang/lld/llvm must match (CONFIG_RUSTC_CLANG_LLVM_COMPATIBLE).
PINWB_LLVM=-22

# The kernel's top Makefile assigns RUSTC with '=', so these must be passed on
# the make command line, never through the environment (rustup's rustc has no
# rust-src and would be picked up silently).
pinwb_make_vars() {
	echo ARCH=x86_64 LLVM=$PINWB_LLVM \
		RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		CLIPPY_DRIVER=/usr/bin/clippy-driver \
		BINDGEN=$PINWB_TOOLS/bin/bindgen
}

pinwb_log() { printf 'pinwb: %s\n' "$*" >&2; }
# What a warm run finds (cached kernel, source, passed checks): the Makefile
# sets PINWB_SAID_CACHED for every script but the first one of a make run,
# which is the only one to say it.
pinwb_note() { [ -n "${PINWB_SAID_CACHED:-}" ] || pinwb_log "$@"; }
pinwb_die() { printf 'pinwb: error: %s\n' "$*" >&2; exit 1; }

# version_ge A B: true when version A >= version B (dotted numbers).
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
