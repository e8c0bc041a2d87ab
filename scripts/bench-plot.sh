#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-plot.sh CSV: draw make bench's scale curves (pinwb_bench sections 6a
# and 6b) with gnuplot, as SVG next to the CSV:
#   <csv>-pins.svg   pin and unpin time of one page against live pins
#   <csv>-fsync.svg  fsync time against dirty size, with a line of slope 1
# Prints the paths of the pictures it wrote.
set -euo pipefail
. "$(dirname "$0")/common.sh"

csv=${1:?usage: bench-plot.sh CSV}
command -v gnuplot >/dev/null || pinwb_die "no gnuplot (scripts/setup.sh installs gnuplot-nox)"
base=${csv%.csv}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# extract SECTION CASE METRIC...: "param value..." rows, one per param.
extract() {
	local section=$1 case=$2
	shift 2
	awk -F, -v s="$section" -v c="$case" -v m="$*" '
		BEGIN { n = split(m, want, " ") }
		$1 == s && $2 == c { v[$3, $5] = $6; p[$3] = 1 }
		END {
			for (x in p) {
				line = x
				for (i = 1; i <= n; i++)
					line = line " " ((x, want[i]) in v ? v[x, want[i]] : "NaN")
				print line
			}
		}' "$csv" | sort -n
}

for mem in anon pinwbfs; do
	extract scale_pin "$mem" pin_ns_p50 pin_ns_p10 pin_ns_p90 \
		unpin_ns_p50 unpin_ns_p10 unpin_ns_p90 > "$tmp/pins-$mem.dat"
done
for c in unpinned bounce; do
	extract scale_fsync "$c" fsync_ms_p50 fsync_ms_p10 fsync_ms_p90 |
		awk '{ $1 = $1 / 1048576; print }' > "$tmp/fsync-$c.dat"
done
[ -s "$tmp/pins-anon.dat" ] || pinwb_die "$csv has no scale_pin rows"
# The slope-1 reference goes through the unpinned fsync nearest 64 MiB.
ref=$(awk '{ d = ($1 > 64 ? $1 / 64 : 64 / $1); if (!n++ || d < best) { best = d; r = $2 / $1 } }
	END { print r }' "$tmp/fsync-unpinned.dat")

gnuplot <<EOF
set terminal svg size 760,440 dynamic font 'sans,12'
set datafile missing 'NaN'
set grid
set key top left
set logscale x 2
set format x '%.0f'
set xlabel 'live one-page pins in the same file'
set ylabel 'ns (median, bars p10..p90)'
set yrange [0:*]
set title 'pinwb: one 4 KiB long-term pin and unpin against live pins'
set output '$base-pins.svg'
plot '$tmp/pins-anon.dat' using 1:2:3:4 with yerrorlines lw 2 title 'anon, pin', \
     '$tmp/pins-pinwbfs.dat' using 1:2:3:4 with yerrorlines lw 2 title 'pinwbfs, pin', \
     '$tmp/pins-anon.dat' using 1:5:6:7 with yerrorlines lw 2 dt 2 title 'anon, unpin', \
     '$tmp/pins-pinwbfs.dat' using 1:5:6:7 with yerrorlines lw 2 dt 2 title 'pinwbfs, unpin'
set logscale xy 2
set format y '%g'
set yrange [*:*]
set xlabel 'dirty MiB'
set ylabel 'fsync ms (median, bars p10..p90)'
set title 'pinwb: fsync time against dirty size (io\\_delay\\_us=0)'
set output '$base-fsync.svg'
plot '$tmp/fsync-unpinned.dat' using 1:2:3:4 with yerrorlines lw 2 title 'unpinned', \
     '$tmp/fsync-bounce.dat' using 1:2:3:4 with yerrorlines lw 2 title 'all pinned, bounce', \
     $ref * x with lines dt 3 lc rgb 'gray40' title 'linear (through unpinned, 64 MiB)'
EOF
echo "$base-pins.svg"
echo "$base-fsync.svg"
