# SPDX-License-Identifier: GPL-2.0
#
# pinwb's front door. Everything downloaded or built for the kernel lives in
# $(PINWB_CACHE) (default ~/.cache/pinwb); this tree gets the module objects
# and build/ (selftests, initramfs, guest logs).
#
# 'make help' lists the targets and variables.

SHELL := /bin/bash
S := scripts
# CMD is passed to the guest as written: make must not expand its '$'.
export PINWB_CMD := $(value CMD)
export KDIR EXTRA CLIPPY PINWB_CACHE PINWB_TIMEOUT QUICK DUMP INSTALL_MOD_PATH
# Only the kernel target says what it found cached (scripts/common.sh).
export PINWB_SAID_CACHED := 1

ifneq ($(KDIR),)
ifeq ($(wildcard $(KDIR)/.),)
$(error KDIR=$(KDIR) is not a directory (give a configured and built kernel tree))
endif
endif

.PHONY: all help setup kernel module selftests check check-debug run shell bench \
	layout-check fmt install modules_install rust-analyzer clean

all: module selftests

help:
	@echo 'pinwb: build and test in its own QEMU test kernel (README.md)'
	@echo
	@echo 'Targets:'
	@echo '  check          build what is missing, run every test; ends with "N passed, N failed, N skipped"'
	@echo '  check-debug    the same on the debug kernel (KASAN, lockdep, kmemleak, ...)'
	@echo '  run            boot with pinwb loaded: what 7.3 does, then the policies (DUMP=1: debugfs too)'
	@echo '  shell          the same, with a shell in the guest (kernel log: dmesg)'
	@echo '  bench          pin and writeback cost, wait latency, memory (QUICK=1: short)'
	@echo '  module         build pinwb.ko in place (CLIPPY=1: with clippy)'
	@echo '  selftests      build the selftests into build/selftests'
	@echo '  install        install pinwb.ko into KDIR'"'"'s /lib/modules/<version> (alias: modules_install)'
	@echo '  rust-analyzer  write rust-project.json for editors'
	@echo '  fmt            rustfmt src/ (the module build refuses unformatted code)'
	@echo '  setup          install packages, build bindgen'
	@echo '  kernel         build the test kernel, or check KDIR='
	@echo '  layout-check   compare Rust'"'"'s view of the kernel structs with C'"'"'s'
	@echo '  clean          remove build/ and the module objects'
	@echo
	@echo 'Variables:'
	@echo '  KDIR=dir           your own kernel build instead of the test kernel (options: selftests/config)'
	@echo '  CMD='"'"'...'"'"'          with run: run this in the guest instead of the demo'
	@echo '                     (one test: make run CMD='"'"'/selftests/pinwb_pin_test -t NAME'"'"')'
	@echo '  EXTRA='"'"'file...'"'"'    with run: copy files into the guest'"'"'s /extra'
	@echo '  DUMP=1             with run: print every readable debugfs file of pinwb'
	@echo '  CLIPPY=1           lint the Rust code while building'
	@echo '  QUICK=1            with bench: a short run'
	@echo '  SECTION=name       with bench: only that section (pin, fixed, wb, wake, mem,'
	@echo '                     scale_pins, scale_fsync, storm); the other goals print NOT met'
	@echo '  INSTALL_MOD_PATH=  with install: a staging root'
	@echo '  PINWB_CACHE=dir    toolchain, kernel source and builds (default ~/.cache/pinwb)'
	@echo '  PINWB_TIMEOUT=s    the guest'"'"'s time limit (default 900)'
	@echo '  PINWB_MEM= PINWB_CPUS=  guest memory (check: 6G) and CPUs (2)'

setup:
	@$(S)/setup.sh

kernel: setup
	@PINWB_SAID_CACHED= $(S)/kernel.sh >/dev/null

module: kernel
	@$(S)/module.sh

selftests: kernel
	@$(S)/selftests.sh

fmt: kernel
	@PINWB_FMT=1 $(S)/module.sh

layout-check: kernel
	@kb=$$($(S)/kernel.sh) && PINWB_SAID_CACHED= $(S)/layout-check.sh "$$kb"

# Targets that boot the kernel also need the tests' options (selftests/config).
check check-debug run shell bench: export PINWB_BOOT := 1

# 6 GiB: the large-file tests keep 2 GiB in the page cache and 2 GiB in the
# store (TCG allocates guest memory only when touched).
check: module selftests
	@PINWB_MEM=$${PINWB_MEM:-6G} $(S)/vm.sh check

run: module selftests
	@$(S)/vm.sh run

shell: module selftests
	@$(S)/vm.sh shell

# The whole suite on the debug kernel (.config.debug.fragment: KASAN, lockdep,
# kmemleak, DEBUG_VM, ...), with longer fuzzing and stress. The large-file
# test writes 768 MiB + 512 MiB there (2 GiB + 1 GiB took 944 s): still past
# the 512 MiB where 0.3.0's unbatched writeback failed. PINWB_REALFS_QUICK
# skips the lab's two slowest set-ups there (dm-integrity, the reclaim test).
check-debug: export PINWB_VARIANT := debug
check-debug: selftests
	@$(S)/module.sh
	@PINWB_KO=build/module-debug/pinwb.ko PINWB_MEM=$${PINWB_MEM:-6G} \
		PINWB_TIMEOUT=$${PINWB_TIMEOUT:-3000} \
		PINWB_APPEND="slub_debug=FZPU debug_pagealloc=on $${PINWB_APPEND:-}" \
		PINWB_GUEST_ENV="PINWB_FUZZ_SECONDS=60 PINWB_STRESS_SECONDS=10 \
			PINWB_LARGE_MB=768 PINWB_LARGE_PINNED_MB=512 PINWB_REALFS_QUICK=1 \
			$${PINWB_GUEST_ENV:-}" \
		$(S)/vm.sh check

# Benchmarks (not tests): QUICK=1 for a short run. Results: build/bench/.
bench: module selftests
	@PINWB_MEM=$${PINWB_MEM:-8G} PINWB_TIMEOUT=$${PINWB_TIMEOUT:-1800} $(S)/vm.sh bench

# For a kernel of your own (KDIR=): Kbuild's modules_install, into
# /lib/modules/<its version>/updates (INSTALL_MOD_PATH= for a staging root).
# The test kernel's module needs no installing: it is in the initramfs.
ifneq ($(filter install modules_install,$(MAKECMDGOALS)),)
ifeq ($(KDIR),)
$(error make install needs KDIR= (the kernel pinwb.ko is for); the test kernel's module is in its initramfs)
endif
endif
install modules_install: module
	@$(S)/module.sh modules_install

# rust-project.json for rust-analyzer, with the pinwb crate (src/Kbuild names
# its root); the module build first generates src/uapi_generated.rs.
rust-analyzer: module
	@$(S)/module.sh rust-analyzer

clean:
	@[ ! -d build ] || rm -rf build
	@rm -f src/uapi_generated.rs src/helpers_generated.rs rust-project.json
	@find . \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		-o -name '.*.cmd' -o -name '.*.d' -o -name '*.rmeta' \) -delete
	@rm -f modules.order Module.symvers
