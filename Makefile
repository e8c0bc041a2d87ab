# SPDX-License-Identifier: GPL-2.0
#
# pinwb's front door. Everything downloaded or built for the kernel lives in
# $(PINWB_CACHE) (default ~/.cache/pinwb); this tree gets the module objects
# and build/ (selftests, initramfs, guest logs).
#
#   make check        build everything needed and run all tests in QEMU
#   make check-debug  the same on the debug kernel (KASAN, lockdep, kmemleak, ...)
#   make run          boot the test kernel with pinwb loaded and show debugfs
#   make shell        the same, with an interactive guest shell
#   make bench        pin and writeback cost, wait latency, memory (QUICK=1: short)
#   make run CMD='…' EXTRA='file…'   copy files into the guest (/extra) and run CMD there
#
# Pieces: setup (packages, bindgen), kernel (test kernel, or KDIR=), module,
# selftests, layout-check, fmt (rustfmt src/; the module build refuses
# unformatted code). Add CLIPPY=1 to lint the Rust code while building.

SHELL := /bin/bash
S := scripts
# CMD is passed to the guest as written: make must not expand its '$'.
export PINWB_CMD := $(value CMD)
export KDIR EXTRA CLIPPY PINWB_CACHE PINWB_TIMEOUT QUICK INSTALL_MOD_PATH

ifneq ($(KDIR),)
ifeq ($(wildcard $(KDIR)/.),)
$(error KDIR=$(KDIR) is not a directory (give a configured and built kernel tree))
endif
endif

.PHONY: all setup kernel module selftests check check-debug run shell bench \
	layout-check fmt install modules_install rust-analyzer clean

all: module selftests

setup:
	@$(S)/setup.sh

kernel: setup
	@$(S)/kernel.sh >/dev/null

module: kernel
	@$(S)/module.sh

selftests: kernel
	@$(S)/selftests.sh

fmt: kernel
	@PINWB_FMT=1 $(S)/module.sh

layout-check: kernel
	@$(S)/layout-check.sh "$$($(S)/kernel.sh)"

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
	@rm -f src/uapi_generated.rs rust-project.json
	@find . \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		-o -name '.*.cmd' -o -name '.*.d' -o -name '*.rmeta' \) -delete
	@rm -f modules.order Module.symvers
