#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetch Debian's linux-source package from trixie-backports through a private
# apt configuration (the system's sources and preferences are not touched and
# nothing is installed), and extract it into $PINWB_CACHE/src/.
#
# Prints the path of the extracted tree on stdout; everything else goes to stderr.
set -euo pipefail
. "$(dirname "$0")/common.sh"

apt_dir=$PINWB_CACHE/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/parts" "$PINWB_CACHE/src"
cat > "$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
SRC
APT_OPTS=(
	-o Dir::Etc::SourceList="$apt_dir/sources.list"
	-o Dir::Etc::SourceParts="$apt_dir/parts"
	-o Dir::State::Lists="$apt_dir/lists"
	-o Dir::Cache="$apt_dir/cache"
	-o Dir::Cache::Archives="$apt_dir/archives"
	-o APT::Get::List-Cleanup=0
	-o Debug::NoLocking=1
	-o APT::Sandbox::User=root
)

# A tree that was extracted before is reused without asking the network.
pick_cached() {
	ls -d "$PINWB_CACHE"/src/"$PINWB_KPKG"_*/linux-source-* 2>/dev/null | sort -V | tail -n1
}

if [ -z "${PINWB_REFRESH:-}" ] && tree=$(pick_cached) && [ -n "$tree" ] && [ -f "$tree/.pinwb-extracted" ]; then
	pinwb_note "kernel source: $(cat "$tree/.pinwb-extracted") (cached at $tree)"
	echo "$tree"
	exit 0
fi

pinwb_log "updating the private package list (trixie-backports)"
apt-get "${APT_OPTS[@]}" update -qq >&2 || pinwb_die "apt-get update of trixie-backports failed"

pkg=$PINWB_KPKG
ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
	# Fall back to the newest 7.x source package, loudly.
	alt=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-source-7. 2>/dev/null | sort -V | tail -n1)
	[ -n "$alt" ] || pinwb_die "$pkg is gone from trixie-backports and no linux-source-7.* is left.
  Build against your own Rust-enabled tree with KDIR=<build dir>, or set PINWB_KPKG to an available package."
	pinwb_log "WARNING: $pkg is no longer in trixie-backports; falling back to $alt (untested)"
	pkg=$alt
	ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
fi

dest=$PINWB_CACHE/src/${pkg}_$ver
if [ ! -f "$dest"/linux-source-*/.pinwb-extracted ] 2>/dev/null || [ -z "$(ls "$dest"/linux-source-*/.pinwb-extracted 2>/dev/null)" ]; then
	pinwb_log "downloading $pkg $ver"
	work=$(mktemp -d "$PINWB_CACHE/src/.fetch.XXXXXX")
	(cd "$work" && apt-get "${APT_OPTS[@]}" download "$pkg=$ver" >&2) || pinwb_die "apt-get download $pkg=$ver failed"
	dpkg-deb -x "$work"/*.deb "$work/deb"
	tarball=$(ls "$work"/deb/usr/src/linux-source-*.tar.* | head -n1)
	rm -rf "$dest" && mkdir -p "$dest"
	pinwb_log "extracting $(basename "$tarball")"
	tar -C "$dest" -xf "$tarball"
	rm -rf "$work"
	tree=$(ls -d "$dest"/linux-source-* | head -n1)
	echo "$pkg $ver" > "$tree/.pinwb-extracted"
fi
tree=$(ls -d "$dest"/linux-source-* | head -n1)
pinwb_log "kernel source: $pkg $ver ($(make -s -C "$tree" kernelversion 2>/dev/null))"
echo "$tree"
