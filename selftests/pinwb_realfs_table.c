// SPDX-License-Identifier: GPL-2.0
/*
 * pinwb_realfs_table: print "what mainline 7.3 does today", one line per
 * filesystem and pin, one column per event, measured now in this kernel by
 * the same cells pinwb_realfs_test asserts (selftests/pinwb_realfs.h).
 *
 *   pinwb_realfs_table [-v]    -v: trial counts and kernel-log lines per cell
 */
#include "pinwb_realfs.h"

static void cell_text(const struct rf_result *r, char *buf, size_t len)
{
	switch (r->outcome) {
	case RF_REFUSED:
		if (r->err == EINVAL)	/* DMA_START on an R/O pin */
			snprintf(buf, len, "no-dma EINVAL");
		else
			snprintf(buf, len, "refused %s", r->err == EFAULT ? "EFAULT" : strerror(r->err));
		break;
	case RF_CSUM:
		snprintf(buf, len, "csum %s%s", r->err == EILSEQ ? "EILSEQ" :
			 r->err == EIO ? "EIO" : strerror(r->err), r->klog_csum ? "+log" : "");
		break;
	default:
		snprintf(buf, len, "%s", rf_outcome_name[r->outcome]);
	}
	if (r->outcome != RF_REFUSED && r->fsync_ret)
		snprintf(buf + strlen(buf), len - strlen(buf), " fsync=%d", r->fsync_ret);
	if (r->klog_warn)
		snprintf(buf + strlen(buf), len - strlen(buf), " WARN");
}

int main(int argc, char **argv)
{
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");
	struct timespec t0, t1;
	int fs, pin, ev;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("What mainline 7.3 does today (%s): pinned MAP_SHARED file pages, pinwb's simulated device\n",
	       "measured now");
	printf("(writes through kernel mappings, never dirties); the oracle is the disk (O_DIRECT or remount).\n");
	printf("during = device writes during fsync (worst of up to %d tries); kept = device wrote, pin kept,\n"
	       "fsync; unpin = unpin without DIRTY, then remount (drop_caches on tmpfs, pinwbfs).\n"
	       "lt-ro: the CPU writes (pinwb's device needs a write pin); dio: O_DIRECT reads into the mapping.\n"
	       "Kernel functions per cell: Documentation/pinwb.rst, \"What mainline 7.3 does\".\n\n",
	       RF_TRIALS);
	printf("%-16s %-6s %-18s %-18s %-18s\n", "fs", "pin", "during", "kept", "unpin");
	for (fs = 0; fs < RF_NR_FS; fs++) {
		struct rf_mnt m;
		int ret = rf_up(&m, fs);
		char name[40];

		snprintf(name, sizeof(name), "%s", rf_fs_desc[fs].name);
		if (rf_fs_desc[fs].pinwbfs && ret == 0) {
			snprintf(name, sizeof(name), "%s%s", rf_fs_desc[fs].mmwb ? "pwb-mmwb" : "pwb",
				 strcmp(m.policy, "mainline") ? "(naive)" : "");
		}
		if (ret) {
			printf("%-16s (not available: %s)\n", name, ret == 1 ? "no mkfs tool" : strerror(-ret));
			continue;
		}
		for (pin = 0; pin < RF_NR_PIN; pin++) {
			char text[RF_NR_EVENT][40];
			struct rf_result r[RF_NR_EVENT];

			for (ev = 0; ev < RF_NR_EVENT; ev++) {
				rf_cell(&m, pin, ev, &r[ev]);
				cell_text(&r[ev], text[ev], sizeof(text[ev]));
			}
			printf("%-16s %-6s %-18s %-18s %-18s\n", name, rf_pin_name[pin],
			       text[0], text[1], text[2]);
			if (verbose)
				for (ev = 0; ev < RF_NR_EVENT; ev++)
					printf("#   %s: trials %d torn %d csum %d lost %d passes %llu klog csum %d warn %d %s\n",
					       rf_event_name[ev], r[ev].trials, r[ev].torn_trials,
					       r[ev].csum_trials, r[ev].lost_trials, r[ev].passes,
					       r[ev].klog_csum, r[ev].klog_warn, r[ev].why);
			fflush(stdout);
		}
		rf_down(&m);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("\n(%.1f s)\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
