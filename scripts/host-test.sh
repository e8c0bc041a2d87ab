#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# host-test.sh KBUILD SELFTESTS: the tests make check runs on the host, as
# TAP lines named host.* (vm.sh counts them with the guest's). SELFTESTS is
# the kselftest install of pinwb (build/kselftest/pinwb).
#   kconfig.*  scripts/kconfig-check.sh on config files: the test kernel's
#              .config, a distribution-style one derived from it, and each of
#              them without one required option.
#   runner.*   the guest's verdict on a program (pinwb-guest: selftest) for
#              stand-ins that pass, fail, bail out, skip.
#   skip.*     every selftest program, run on this host where pinwb is not
#              loaded, skips with KSFT_SKIP (exit 4) and says why.
set -uo pipefail
. "$(dirname "$0")/common.sh"

kbuild=${1:?usage: host-test.sh KBUILD SELFTESTS}
selftests=${2:?usage: host-test.sh KBUILD SELFTESTS}
check=$PINWB_ROOT/scripts/kconfig-check.sh
# The notes of kconfig-check.sh are under test here, not said once.
unset PINWB_SAID_CACHED
work=$(mktemp -d "${TMPDIR:-/tmp}/pinwb-host-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

n=0
# t NAME CMD...: one TAP line; the command's output is shown on failure.
t() {
	local name=$1
	shift
	n=$((n + 1))
	if "$@" > "$work/out" 2>&1; then
		echo "ok $n host.$name"
	else
		echo "not ok $n host.$name"
		sed 's/^/# /' "$work/out"
	fi
}

# set_opt FILE OPT VALUE: VALUE is y, m, a number, or "" for not set.
set_opt() {
	sed -i -e "/^$2=/d" -e "/^# $2 is not set$/d" "$1"
	if [ -n "$3" ]; then echo "$2=$3" >> "$1"; else echo "# $2 is not set" >> "$1"; fi
}

# --- kconfig -----------------------------------------------------------------

# A distribution's choices where the test kernel makes VM-only ones (as in
# Debian's 7.3 config): many CPUs, HZ 250, PCI and ACPI, BTF, versioned and
# signed modules, filesystems and KUnit as modules, no gup_test, no fault
# injection. pinwb's module options stay; the VM's need not.
distro=$work/distro.config
cp "$kbuild/.config" "$distro"
for kv in NR_CPUS=8192 HZ_1000= HZ_250=y HZ=250 PCI=y ACPI=y DEBUG_INFO_BTF=y \
	MODVERSIONS=y MODULE_SIG=y LOG_BUF_SHIFT=17 DEFAULT_HUNG_TASK_TIMEOUT=120 \
	KUNIT=m EXT4_FS=m XFS_FS=m BTRFS_FS=m DM_INTEGRITY=m BLK_DEV_LOOP=m \
	GUP_TEST= FAULT_INJECTION= FAILSLAB= FAIL_PAGE_ALLOC= FAULT_INJECTION_DEBUG_FS=; do
	set_opt "$distro" "CONFIG_${kv%%=*}" "${kv#*=}"
done

# passes CONFIG [--boot]: the check accepts CONFIG and names no option.
passes() {
	"$check" ${2:+"$2"} "$1" 2> "$work/msg" || { cat "$work/msg"; return 1; }
	! grep -v '^pinwb: note: ' "$work/msg"
}

# fails_naming CONFIG OPT [--boot]: the check rejects CONFIG with one line
# naming OPT, and the summary.
fails_naming() {
	if "$check" ${3:-} "$1" 2> "$work/msg"; then
		echo "accepted a config without $2"
		return 1
	fi
	cat "$work/msg"
	[ "$(grep -c "^pinwb: error: $2[ =]" "$work/msg")" = 1 ] &&
		grep -q '^pinwb: error: .* lacks [0-9]* option(s) pinwb needs' "$work/msg"
}

t kconfig.test_kernel_passes_boot passes "$kbuild/.config" --boot
t kconfig.distro_passes passes "$distro"
# With --boot it names what the guest needs built in; nothing VM-only.
t kconfig.distro_boot_names_only_pinwb_options \
	sh -c "! '$check' --boot '$distro' 2>&1 | grep -E 'NR_CPUS|HZ|PCI|ACPI|BTF|MODVERSIONS|MODULE_SIG|LOG_BUF|HUNG_TASK'"
t kconfig.distro_notes_optional_gup_test \
	sh -c "'$check' --boot '$distro' 2>&1 | grep -q '^pinwb: note: CONFIG_GUP_TEST is not set: '"

# Without each required option, for its scope: module options on the distro
# config, the guest's on the test kernel's.
scope=
while IFS= read -r line; do
	case "$line" in
	"# module: "* | "# check: "* | "# optional: "*) scope=${line#\# }; scope=${scope%%:*}; continue ;;
	CONFIG_*=*) ;;
	*) continue ;;
	esac
	opt=${line%%=*}
	case $scope in
	module)
		cp "$distro" "$work/cfg"
		set_opt "$work/cfg" "$opt" ""
		t "kconfig.distro_without_$opt" fails_naming "$work/cfg" "$opt"
		;;
	check)
		cp "$kbuild/.config" "$work/cfg"
		set_opt "$work/cfg" "$opt" ""
		t "kconfig.boot_without_$opt" fails_naming "$work/cfg" "$opt" --boot
		;;
	esac
done < "$PINWB_ROOT/selftests/config"
t kconfig.distro_kunit_module_fails_boot fails_naming "$distro" CONFIG_KUNIT --boot

# --- runner ------------------------------------------------------------------

# The guest's verdict on one program (pinwb-guest's selftest), run here with
# busybox's sh on stand-ins: verdict EXPECTED PROGRAM-BODY.
verdict() {
	printf '#!/bin/sh\n%s\n' "$2" > "$work/prog_test"
	chmod +x "$work/prog_test"
	(cd "$work" && PINWB_GUEST_LIB=1 busybox sh -c \
		". '$PINWB_ROOT/scripts/guest/pinwb-guest'; selftest ./prog_test") > "$work/verdict"
	cat "$work/verdict"
	tail -n1 "$work/verdict" | grep -qE "^$1 [0-9]+ guest\.prog_test"
}
t runner.passes verdict ok 'echo 1..2; echo ok 1 a; echo ok 2 b'
t runner.fails_exit_status verdict "not ok" 'echo 1..1; echo ok 1 a; exit 1'
t runner.fails_fewer_than_planned verdict "not ok" 'echo 1..3; echo ok 1 a; echo "Bail out!"'
t runner.fails_without_plan verdict "not ok" 'echo ok 1 a'
t runner.skip_counts_as_skip verdict "ok" 'echo "1..0 # SKIP no pinwb"; exit 4'

# --- skip --------------------------------------------------------------------

# skips REASON CMD...: CMD exits 4 with a "1..0 # SKIP ..." plan that
# matches REASON (an extended regular expression).
skips() {
	local reason=$1 rc

	shift
	"$@" > "$work/run" 2>&1 < /dev/null
	rc=$?
	cat "$work/run"
	[ $rc = 4 ] || { echo "exit status $rc, not 4 (KSFT_SKIP)"; return 1; }
	grep -qE "^1\.\.0 # SKIP .*($reason)" "$work/run"
}

if [ -e /dev/pinwb ] || grep -qw pinwbfs /proc/filesystems; then
	n=$((n + 1))
	echo "ok $n host.skip # SKIP pinwb is loaded on this host"
else
	# pinwb's programs: the kselftest list beside the install.
	for name in $(sed -n 's/^pinwb://p' "$selftests/../kselftest-list.txt"); do
		prog=$selftests/$name
		t "skip.${name}_without_pinwb" skips "load pinwb.ko first" "$prog"
		t "skip.${name}_as_nobody" skips "needs root" \
			setpriv --reuid=65534 --regid=65534 --clear-groups "$prog"
	done
	# No xfs_io or fio: a PATH with only what the script needs before it skips.
	mkdir "$work/bin"
	for tool in id grep; do ln -s "$(command -v $tool)" "$work/bin/"; done
	t skip.pinwbfs_tools_test.sh_without_xfs_io \
		skips "xfs_io is not installed" env PATH="$work/bin" /bin/sh "$selftests/pinwbfs_tools_test.sh"
fi
echo "1..$n"
