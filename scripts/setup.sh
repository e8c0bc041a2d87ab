#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything pinwb needs on a Debian 12 machine, as root, from the
# package registries only. Idempotent: satisfied steps are skipped quickly.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# Debian's rustc-web ships rust-src (rustup's toolchain here cannot fetch it);
# LLVM 22 matches rustc-web's LLVM. The rest is the usual kernel build set,
# QEMU, a static busybox for the initramfs and static glibc for selftests.
PACKAGES=(
	rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-22 lld-22 llvm-22 libclang-22-dev
	make gcc libc6-dev bc flex bison libelf-dev libssl-dev
	cpio kmod xz-utils python3 perl
	# the kselftest install (lib.mk) copies with rsync
	rsync
	qemu-system-x86 busybox-static
	# real tools run on pinwbfs in the guest; liburing (static) for the
	# io_uring selftest
	xfsprogs fio liburing-dev
	# the real-filesystem lab: mkfs for ext4 and btrfs, dmsetup for
	# dm-integrity and dm-delay
	e2fsprogs btrfs-progs dmsetup
	# pinwb's trace events, recorded in the guest
	trace-cmd
	# make bench's pictures (scripts/bench-plot.sh)
	gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || pinwb_die "need root to install: ${missing[*]}"
	pinwb_log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	log=$(mktemp)
	if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
		# A postinst that fails once on a fresh image (seen here) is retried.
		pinwb_log "apt-get install failed; retrying after dpkg --configure -a"
		dpkg --configure -a >>"$log" 2>&1 || true
		apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1 ||
			{ tail -n 30 "$log" >&2; pinwb_die "apt-get install failed (log above)"; }
	fi
	rm -f "$log"
else
	pinwb_log "packages: all present"
fi

[ -d /usr/lib/rustlib/src/rust/library ] ||
	pinwb_die "rust-web-src did not provide /usr/lib/rustlib/src/rust/library"

# bindgen: Debian's is too old for 7.3 with libclang 22.
bg=$PINWB_TOOLS/bin/bindgen
have=$("$bg" --version 2>/dev/null | awk '{print $2}' || true)
if [ -n "$have" ] && version_ge "$have" "$PINWB_BINDGEN_MIN"; then
	pinwb_log "bindgen $have: present"
else
	pinwb_log "building bindgen-cli >= $PINWB_BINDGEN_MIN with cargo (about 3 minutes)"
	command -v cargo >/dev/null || pinwb_die "cargo not found (needed to build bindgen-cli)"
	cargo install bindgen-cli --locked --root "$PINWB_TOOLS" --quiet
	have=$("$bg" --version | awk '{print $2}')
	version_ge "$have" "$PINWB_BINDGEN_MIN" || pinwb_die "bindgen $have < $PINWB_BINDGEN_MIN"
fi

pinwb_log "toolchain: $(/usr/bin/rustc --version), $(clang-22 --version | head -n1), bindgen $have"
