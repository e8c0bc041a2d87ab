#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# vm.sh check|run|shell: pack an initramfs (busybox, pinwb.ko, the selftests,
# EXTRA files) and boot the test kernel in QEMU.
#
#   check  run the host's tests (host-test.sh), then all tests in the guest;
#          parse the TAP streams (KUnit's with the kernel's kunit.py), scan the
#          console log for splats; the last line is "N passed, N failed, N skipped".
#   run    the demo: what 7.3 does, then the policies (DUMP=1: and debugfs);
#          CMD='…' runs a command in the guest instead, in /extra where the
#          EXTRA='file…' files are copied.
#   shell  interactive guest shell on this terminal; the kernel log to a file.
#   bench  run selftests/pinwb_bench (QUICK=1: -q) on -cpu max; the CSV and
#          its pictures (scripts/bench-plot.sh) in build/bench/.
#
# Logs: build/logs/<mode>-<time>/{console.log,tap.log,host.tap,kunit.tap,results.tap};
# build/logs/latest.
set -euo pipefail
. "$(dirname "$0")/common.sh"

mode=${1:?usage: vm.sh check|run|shell|bench}
# Booting needs the tests' options too (selftests/config), for KDIR= trees.
kbuild=$(PINWB_BOOT=1 "$PINWB_ROOT/scripts/kernel.sh")
ksrc=$(readlink -f "$kbuild/source" 2>/dev/null || echo "$kbuild")
bzimage=$kbuild/arch/x86/boot/bzImage
[ -f "$bzimage" ] || pinwb_die "no bzImage in $kbuild"

out=$PINWB_ROOT/build
logs=$out/logs/$mode-$(date +%Y%m%d-%H%M%S)
mkdir -p "$logs"
ln -sfn "$logs" "$out/logs/latest"

# --- initramfs -------------------------------------------------------------
stage=$out/initramfs
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc/pinwb,lib/modules,extra,root}
cp /bin/busybox "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$PINWB_ROOT/scripts/guest/init" "$stage/init"
cp "$PINWB_ROOT/scripts/guest/pinwb-guest" "$stage/bin/pinwb-guest"
cp "${PINWB_KO:-$PINWB_ROOT/pinwb.ko}" "$stage/lib/modules/pinwb.ko"
# The kselftest install (scripts/selftests.sh); /selftests is pinwb's part.
cp -a "$out/kselftest" "$stage/kselftest"
ln -s kselftest/pinwb "$stage/selftests"
for f in ${EXTRA:-}; do cp -a "$f" "$stage/extra/"; done

# add_tool PATH: a dynamically linked program from the host, with every
# library it loads, at the same paths (the guest then runs it as is).
add_tool() {
	local f lib
	for f in "$1" $(ldd "$1" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}'); do
		lib=$(readlink -f "$f")
		mkdir -p "$stage$(dirname "$f")"
		[ -e "$stage$f" ] || cp "$lib" "$stage$f"
	done
}
add_tool /usr/sbin/xfs_io
add_tool /usr/bin/fio
# The real-filesystem lab (selftests/pinwb_realfs_test): mkfs and dmsetup.
# mkfs.ext4 is a link to mke2fs, which picks the filesystem by its name.
for t in /usr/sbin/mkfs.ext4 /usr/sbin/mkfs.xfs /usr/sbin/mkfs.btrfs /usr/sbin/dmsetup; do
	[ -e "$t" ] && add_tool "$t"
done
# pinwb's trace events (Documentation/pinwb.rst, "Tracing").
[ -e /usr/bin/trace-cmd ] && add_tool /usr/bin/trace-cmd
echo "$mode" > "$stage/etc/pinwb/mode"
# Environment for the guest's tests (e.g. longer fuzzing on the debug kernel).
printf '%s\n' ${PINWB_GUEST_ENV:-} > "$stage/etc/pinwb/env"
[ -z "${QUICK:-}" ] || echo "-q" > "$stage/etc/pinwb/bench-args"
[ -z "${SECTION:-}" ] || echo "-s $SECTION" >> "$stage/etc/pinwb/bench-args"
[ -z "${DUMP:-}" ] || touch "$stage/etc/pinwb/dump"
echo "${PINWB_CPUS:-2}" > "$stage/etc/pinwb/cpus"
cmd=${PINWB_CMD:-${CMD:-}}
[ -z "$cmd" ] || printf '%s\n' "$cmd" > "$stage/etc/pinwb/cmd"

list=$out/initramfs.list
{
	echo "nod /dev/console 0600 0 0 c 5 1"
	(cd "$stage" && find . -mindepth 1 | sort) | while read -r p; do
		p=${p#.}
		m=$(stat -c %a "$stage$p")
		if [ -L "$stage$p" ]; then echo "slink $p $(readlink "$stage$p") 0777 0 0"
		elif [ -d "$stage$p" ]; then echo "dir $p $m 0 0"
		else echo "file $p $stage$p $m 0 0"; fi
	done
} > "$list"
# Uncompressed: unpacking gzip in a TCG guest costs more than reading the cpio.
"$kbuild/usr/gen_init_cpio" "$list" > "$out/initramfs.cpio"

# --- QEMU ------------------------------------------------------------------
# TCG unless the host has real VMX/SVM: kvm_pvm (a software "VM" for nested
# clouds) serves /dev/kvm on some machines and is far slower than TCG.
accel=(-accel tcg)
if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
	accel=(-accel kvm -cpu host)
fi
# A usable clock: without ACPI the guest has no HPET or PM timer to calibrate
# the TSC against, PIT calibration fails under TCG, and it falls back to
# jiffies (1 ms resolution: useless for benchmarks and latencies). Under TCG
# the guest's rdtsc reads the host's TSC, so give the guest the host's TSC
# frequency, and skip the cross-CPU sync check that TCG's vCPU threads fail.
clock=
if [ "${accel[1]}" = tcg ] && grep -qw constant_tsc /proc/cpuinfo; then
	khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
	[ -z "$khz" ] || clock="tsc_early_khz=$khz tsc=reliable"
fi

# make bench: a guest CPU with SSE4.2 and PCLMULQDQ, so that the kernel's
# crc32c() is the architecture's, as on any x86 machine of the last decade
# (TCG's default qemu64 has neither: a byte loop). PINWB_CPU overrides; the
# other modes keep QEMU's default unless it is set.
cpu=()
if [ "${accel[1]}" = tcg ]; then
	model=${PINWB_CPU:-}
	[ "$mode" != bench ] || model=${model:-max}
	[ -z "$model" ] || cpu=(-cpu "$model")
fi
# Under a loaded host the IO-APIC timer check at boot can miss its ticks and
# panic ("IO-APIC + timer doesn't work!"); a benchmark run is long to lose.
[ "$mode" != bench ] || clock="$clock no_timer_check"

# Without ACPI the guest finds CPUs in SeaBIOS's MP table, which lists one
# CPU per socket: hence sockets, not cores.
cpus=${PINWB_CPUS:-2}
qemu=(qemu-system-x86_64 "${accel[@]}" "${cpu[@]}" -smp "$cpus,sockets=$cpus" -m "${PINWB_MEM:-1G}" -no-reboot
	-kernel "$bzimage" -initrd "$out/initramfs.cpio"
	-append "console=ttyS0 panic=-1 rdinit=/init $clock ${PINWB_APPEND:-}")

console=$logs/console.log
# The shell is on the second serial port, this terminal; the kernel's
# console (the first) goes to the log.
if [ "$mode" = shell ]; then
	"${qemu[@]}" -nographic -serial "file:$console" -serial mon:stdio || true
	pinwb_log "kernel log: $console"
	exit 0
fi

# The host's own tests first (scripts/host-test.sh), counted with the
# guest's; once per CI run, with the default kernel, not again in check-debug.
: > "$logs/host.tap"
if [ "$mode" = check ] && [ -z "${PINWB_VARIANT:-}" ]; then
	"$PINWB_ROOT/scripts/host-test.sh" "$kbuild" "$out/kselftest/pinwb" > "$logs/host.tap"
	cat "$logs/host.tap"
fi

tapf=$logs/tap.log
: > "$tapf"
timeout=${PINWB_TIMEOUT:-900}
pinwb_log "booting $(basename "$kbuild") (${accel[*]}), logs in $logs"
set +e
if [ "$mode" = bench ]; then
	# The CSV goes to build/bench/, not to the terminal.
	tail -n +1 -f "$tapf" --pid=$$ | sed -u '/^# csv-begin/,/^# csv-end/d' &
else
	tail -n +1 -f "$tapf" --pid=$$ &
fi
tailer=$!
# A kernel that panics before the guest's init wrote a line never ran pinwb:
# under TCG, boot-time text patching (a static key flipped while the other
# vCPU runs: "Oops: int3" in sched_clock_cpu, seen once in ~50 boots) can
# kill it. Boot such a guest once more, and say so; any later panic counts.
for boot in 1 2; do
	timeout --kill-after=10 "$timeout" "${qemu[@]}" -display none -monitor none \
		-serial "file:$console" -serial "file:$tapf" </dev/null
	qrc=$?
	[ "$boot" = 1 ] && [ ! -s "$tapf" ] && grep -aq 'Kernel panic' "$console" || break
	cp "$console" "$logs/console-boot1.log"
	pinwb_log "the guest kernel panicked while booting, before pinwb ran (log: $logs/console-boot1.log); booting again"
done
sleep 0.2
kill $tailer 2>/dev/null
set -e
sed -i 's/\r$//' "$tapf" "$console"   # the serial lines end in CRLF

problems=()
[ $qrc = 124 ] && problems+=("the VM timed out after ${timeout}s (PINWB_TIMEOUT)")
[ $qrc != 0 ] && [ $qrc != 124 ] && problems+=("QEMU exited with status $qrc")
grep -aq '^# pinwb-guest: done' "$tapf" || problems+=("the guest did not finish its run (crash, panic or hang)")
splats=$(grep -anE 'BUG:|WARNING:|Oops|KASAN:|UBSAN:|possible circular locking|possible recursive locking|inconsistent lock state|INFO: task .* blocked|Kernel panic|general protection fault|unreferenced object|rcu_.*detected stall' "$console" || true)
[ -z "$splats" ] || problems+=("the guest log shows kernel splats:
$(sed "s|^|  $console:|" <<< "$splats")")

if [ "$mode" = bench ]; then
	for p in "${problems[@]}"; do pinwb_log "$p"; done
	mkdir -p "$out/bench"
	csv=$out/bench/bench-$(date +%Y%m%d-%H%M%S).csv
	sed -n '/^# csv-begin/,/^# csv-end/p' "$tapf" | sed '1d;$d' > "$csv"
	pinwb_log "results: $csv (and $tapf), after ${SECONDS}s"
	if [ -s "$csv" ] && command -v gnuplot >/dev/null; then
		"$PINWB_ROOT/scripts/bench-plot.sh" "$csv" | sed 's/^/pinwb: picture: /' ||
			problems+=("bench-plot.sh failed")
	else
		pinwb_log "no pictures: no CSV, or no gnuplot (scripts/setup.sh)"
	fi
	[ ${#problems[@]} = 0 ]
	exit
fi

if [ "$mode" = run ]; then
	for p in "${problems[@]}"; do pinwb_log "$p"; done
	[ ${#problems[@]} = 0 ] || exit 1
	# The status of CMD, if one was run.
	exit "$(sed -n 's/^# exit status: \([0-9]*\)$/\1/p' "$tapf" | tail -n1 | grep . || echo 0)"
fi

# pinwb's KUnit suites, parsed by the kernel's kunit.py (scripts/kunit-tap.py).
"$PINWB_ROOT/scripts/kunit-tap.py" "$ksrc" "$tapf" > "$logs/kunit.tap" ||
	problems+=("scripts/kunit-tap.py could not read the KUnit results in $tapf")
cat "$logs/kunit.tap"
results=$logs/results.tap
cat "$logs/host.tap" "$tapf" "$logs/kunit.tap" > "$results"

passed=$(grep -acE '^ok [0-9]+ ' "$results" || true)
skipped=$(grep -acE '^ok [0-9]+ .*# (SKIP|skip)' "$results" || true)
failed=$(grep -acE '^not ok [0-9]+ ' "$results" || true)
passed=$((passed - skipped))
if [ "$failed" != 0 ]; then
	echo "failed tests:"
	grep -aE '^not ok [0-9]+ ' "$results" | sed 's/^/  /'
fi
for p in "${problems[@]}"; do echo "pinwb: $p"; done
failed=$((failed + ${#problems[@]}))
[ "$passed" != 0 ] || { echo "pinwb: no test passed"; failed=$((failed + 1)); }
echo "logs: $logs"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
