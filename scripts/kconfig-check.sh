#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# kconfig-check.sh [--boot] CONFIG: check a kernel .config against the options
# pinwb needs, listed with their reasons in selftests/config. Without --boot
# only the "module:" options (build and load pinwb.ko); with --boot also the
# "check:" ones (boot it in pinwb's QEMU guest and run the tests), and a note
# for each "optional:" one that is off. One line per missing option; exits 1
# if any required one is missing.
set -euo pipefail
. "$(dirname "$0")/common.sh"

boot=
if [ "${1:-}" = --boot ]; then
	boot=1
	shift
fi
cfg=${1:?usage: kconfig-check.sh [--boot] CONFIG}
list=$PINWB_ROOT/selftests/config
[ -r "$cfg" ] || pinwb_die "$cfg: cannot read the kernel configuration"

missing=0 reason=
while IFS= read -r line; do
	case "$line" in
	"# module: "* | "# check: "* | "# optional: "*)
		reason=${line#\# }
		continue
		;;
	CONFIG_*=*) ;;
	*) continue ;;
	esac
	opt=${line%%=*} want=${line#*=}
	scope=${reason%%: *} why=${reason#*: }
	reason=
	[ -n "$scope" ] || pinwb_die "$list: no '# module|check|optional: reason' line before $opt"
	[ "$scope" = module ] || [ -n "$boot" ] || continue
	have=$(sed -n "s/^$opt=//p" "$cfg")
	[ "$have" = "$want" ] && continue
	# A module is enough to load pinwb; the guest's initramfs has no modules.
	[ "$scope" = module ] && [ "$want" = y ] && [ "$have" = m ] && continue
	state="=$have"
	[ -n "$have" ] || state=" is not set"
	if [ "$scope" = optional ]; then
		pinwb_note "note: $opt$state: $why"
		continue
	fi
	printf 'pinwb: error: %s%s, pinwb needs =%s: %s\n' "$opt" "$state" "$want" "$why" >&2
	missing=$((missing + 1))
done < "$list"
[ $missing = 0 ] || pinwb_die "$cfg lacks $missing option(s) pinwb needs (above; list: selftests/config)"
