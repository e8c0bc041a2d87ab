#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure and build pinwb's test kernel (tinyconfig + .config.fragment), or
# check an existing tree given as KDIR= against selftests/config. Prints the
# build directory on stdout.
#
# The build directory is keyed by kernel version, fragment and toolchain, so a
# warm run finds a finished build and returns at once.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# PINWB_VARIANT=debug adds .config.debug.fragment (KASAN, lockdep, kmemleak, ...).
fragment=${PINWB_FRAGMENT:-$PINWB_ROOT/.config.fragment}
if [ "${PINWB_VARIANT:-}" = debug ]; then
	merged=$(mktemp)
	trap 'rm -f "$merged"' EXIT
	cat "$fragment" "$PINWB_ROOT/.config.debug.fragment" > "$merged"
	fragment=$merged
fi
read -r -a MAKEVARS <<< "$(pinwb_make_vars)"
jobs=$(nproc)

# check_fragment BUILD FRAGMENT: every line of the fragment survived olddefconfig.
check_fragment() {
	local cfg=$1/.config bad=0 line opt
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF -- "$line" "$cfg" || {
				opt=${line%%=*}
				pinwb_log "fragment line lost: '$line' (config has: $(grep -E "^(# )?$opt[= ]" "$cfg" || echo 'nothing'))"
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }; opt=${opt%% *}
			if grep -q "^$opt=" "$cfg"; then
				pinwb_log "fragment line lost: '$line' (config has: $(grep "^$opt=" "$cfg"))"
				bad=1
			fi
			;;
		esac
	done < "$2"
	[ $bad = 0 ] || pinwb_die "the kernel configuration dropped fragment options (see above); check their dependencies"
}

# A tree of the user's: a configured and built kernel (or its build
# directory) with the options pinwb needs (selftests/config), built with the
# rustc pinwb builds with. PINWB_BOOT=1 (vm.sh): also what the tests need.
if [ -n "${KDIR:-}" ]; then
	[ -d "$KDIR" ] || pinwb_die "KDIR=$KDIR is not a directory (give a configured and built kernel tree)"
	KDIR=$(cd "$KDIR" && pwd)
	[ -f "$KDIR/.config" ] || pinwb_die "KDIR=$KDIR has no .config (not a configured kernel tree)"
	[ -f "$KDIR/Module.symvers" ] || pinwb_die "KDIR=$KDIR is not built (no Module.symvers)"
	"$PINWB_ROOT/scripts/kconfig-check.sh" ${PINWB_BOOT:+--boot} "$KDIR/.config"
	built=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$KDIR/.config")
	have=$(/usr/bin/rustc --version)
	[ "$built" = "$have" ] ||
		pinwb_die "KDIR=$KDIR was built with ${built:-an unknown rustc}, pinwb builds with /usr/bin/rustc ($have): a Rust module needs the kernel's own rustc"
	if [ -f "$KDIR/rust/bindings/.bindings_generated.rs.cmd" ]; then
		"$PINWB_ROOT/scripts/layout-check.sh" "$KDIR" >&2
	else
		pinwb_note "layout check: skipped, KDIR=$KDIR has no rust/bindings/.bindings_generated.rs.cmd (not the tree the kernel was built in)"
	fi
	echo "$KDIR"
	exit 0
fi

src=$("$PINWB_ROOT/scripts/kernel-source.sh")
kver=$(cat "$src/.pinwb-extracted" | awk '{print $2}')
toolchain="$(/usr/bin/rustc --version) $(clang$PINWB_LLVM --version | head -n1) $("$PINWB_TOOLS/bin/bindgen" --version)"
key=$(printf '%s\n%s\n%s\n' "$kver" "$toolchain" "tinyconfig" | cat - "$fragment" | sha256sum | cut -c1-12)
build=${PINWB_KBUILD:-$PINWB_CACHE/build/$(make -s -C "$src" kernelversion)${PINWB_VARIANT:+-$PINWB_VARIANT}-$key}

# One build per directory: a second caller (make module and make selftests
# run at once) waits for the first instead of building into the same tree.
mkdir -p "$(dirname "$build")"
exec 9>"$build.lock"
if ! flock -n 9; then
	pinwb_log "waiting for the kernel build in $build"
	flock 9
fi

if [ -f "$build/.pinwb-built" ]; then
	"$PINWB_ROOT/scripts/kconfig-check.sh" --boot "$build/.config"
	pinwb_note "test kernel: $build (cached)"
	echo "$build"
	exit 0
fi

pinwb_log "building the test kernel in $build (about 10 minutes on 2 cores)"
mkdir -p "$build"
log=$build/build.log
: > "$log"
kmake() { make -C "$src" O="$build" "${MAKEVARS[@]}" "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; pinwb_die "kernel make $* failed (log: $log)"; }; }

kmake tinyconfig
# -m: merge only; a plain merge_config.sh runs its own make without our RUSTC
# and Kconfig would silently drop CONFIG_RUST.
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" >>"$log" 2>&1
kmake olddefconfig
check_fragment "$build" "$fragment"
"$PINWB_ROOT/scripts/kconfig-check.sh" --boot "$build/.config"
kmake -j"$jobs" all
"$PINWB_ROOT/scripts/layout-check.sh" "$build" >&2
printf '%s\n%s\n' "$kver" "$toolchain" > "$build/.pinwb-built"
pinwb_log "test kernel: $build"
echo "$build"
