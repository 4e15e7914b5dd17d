#!/bin/bash
# build.sh - helper of `smc-lab build` (run that instead).
#
# Builds the SMC lab from Debian packages only, fetched with apt:
#   build/vmlinuz-<flavor> + build/initrd-<flavor>.cpio.gz for each flavor in
#   $SMCLAB_KERNELS (default: all of them; smc-lab build --kernel picks):
#   k510    bullseye linux-image-5.10.0-*-amd64, stock modules
#   k61     bookworm linux-image-6.1.0-*-amd64, stock modules
#   k612    bookworm-backports linux-image-6.12.*+deb12-amd64, stock modules
#   k612lo  same kernel, smc.ko/smc_diag.ko rebuilt from Debian's linux-source-6.12
#           with CONFIG_SMC_LO=y (loopback-ism: SMC-D v2 without s390 hardware)
#   k617    trixie-backports linux-image-6.17.*+deb13-amd64, stock modules
#   k7      built here from trixie-backports' newest linux-source-7.*: Debian's own 7.x
#           kernels have no SMC (CONFIG_DIBS is not set), see kernel/smclab.config
#   k612t   trixie linux-image-6.12.*+deb13-amd64 (only when asked for)
# Kernel choices are version patterns (newest match wins), so they follow point releases.
#
# Everything goes to $SMCLAB_CACHE (default /var/cache/smctrace-lab, outside any
# work tree, so a fresh clone or CI reuses it). The host
# is never modified except for `apt-get install` of missing build tools (skip
# with SMCLAB_NO_HOST_INSTALL=1). The host's apt sources are not edited:
# bookworm-backports (and trixie) come from a private apt configuration.
# Every step is cached; re-running only redoes what changed.
set -euo pipefail
SRC=$(cd "$(dirname "$0")" && pwd)
LAB=${SMCLAB_CACHE:?SMCLAB_CACHE must be set (smc-lab sets it)}
KERNELS=" ${SMCLAB_KERNELS:-k510 k61 k612 k612lo k617 k7} "
want() { case "$KERNELS" in *" $1 "*) return 0 ;; esac; return 1; }
mkdir -p "$LAB"
LAB=$(cd "$LAB" && pwd)
cd "$LAB"
DEBS=$LAB/debs
B=$LAB/build
T_START=$(date +%s)
log() { echo "[smc-lab build +$(( $(date +%s) - T_START ))s] $*" >&2; }
DIED=
die() { DIED=1; echo "smc-lab build: error: $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || [ -n "$DIED" ] || echo "smc-lab build: failed (exit $rc): $BASH_COMMAND" >&2' EXIT

[ "$(id -u)" = 0 ] || die "must run as root (apt-get download/install, dpkg -x ownership)"
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs a Debian-based host (apt-get, dpkg)"
for k in $KERNELS; do
	case $k in k510|k61|k612|k612lo|k617|k7|k612t) ;; *) die "unknown kernel $k (see: smc-lab kernels)" ;; esac
done

# ---------------------------------------------------------------- disk space
# from scratch: ~700 MB of .debs + ~1.5 GB of extracted trees (the 7.x build tree is
# deleted once its bzImage is saved) + ~150 MB outputs
need_mb=2500
[ -e "$B/smc-lo/smc.ko" ] && [ -e "$B/vmlinuz-k7" ] && need_mb=300
avail_mb=$(df -Pm "$LAB" | awk 'NR==2{print $4}')
if [ "${avail_mb:-0}" -lt "$need_mb" ]; then
	die "not enough disk space in $LAB: ${avail_mb} MB free, need about ${need_mb} MB (set SMCLAB_CACHE to a bigger file system)"
fi

# ---------------------------------------------------------------- host tools
HOST_PKGS="gcc libc6-dev make binutils xz-utils iproute2 qemu-system-x86 tshark tcpdump"
want k7 && HOST_PKGS="$HOST_PKGS flex bison bc libelf-dev"
need=""
for p in $HOST_PKGS; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	if [ -n "${SMCLAB_NO_HOST_INSTALL:-}" ]; then
		die "missing host packages:$need (SMCLAB_NO_HOST_INSTALL is set; install them with: apt-get install$need)"
	fi
	log "installing missing host packages:$need"
	apt-get update -qq || die "apt-get update failed: no network or Debian mirror unreachable?"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need \
		|| die "apt-get install$need failed"
fi
[ -x /usr/bin/rdma ] || die "/usr/bin/rdma (rdma-core / iproute2) not found"

# ---------------------------------------------------------------- private apt config
# Same mirror as the host's own sources (deb822 or one-line format).
MIRROR=${SMCLAB_MIRROR:-$( (grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null; \
	grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print "URIs: "$2}'; true) \
	| awk '{print $2}' | grep -E '/debian/?$' | head -1 || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p apt/lists/partial apt/cache/archives/partial apt/etc/sources.list.d apt/etc/preferences.d "$DEBS" "$B"
SUITES="bullseye bookworm-backports trixie trixie-backports"
{
	for s in $SUITES; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s main"
	done
} > apt/sources.list.new
changed=1; cmp -s apt/sources.list.new apt/sources.list && changed=
mv apt/sources.list.new apt/sources.list
: > apt/etc/preferences
APTOPTS=(-o Dir::Etc::SourceList="$LAB/apt/sources.list" -o Dir::Etc::SourceParts="$LAB/apt/etc/sources.list.d"
	-o Dir::State::Lists="$LAB/apt/lists" -o Dir::Cache="$LAB/apt/cache"
	-o Dir::Etc::Preferences="$LAB/apt/etc/preferences" -o Dir::Etc::PreferencesParts="$LAB/apt/etc/preferences.d"
	-o APT::Sandbox::User=root)
if [ -n "$changed" ] || [ ! -s apt/lists/.updated ] || [ -n "${SMCLAB_APT_UPDATE:-}" ]; then
	log "apt update (private config: $MIRROR $SUITES)"
	rm -f apt/lists/.updated
	upd=$(apt-get "${APTOPTS[@]}" update -q 2>&1) || true
	for s in $SUITES; do
		if ! ls apt/lists/*"_dists_${s}_"*Packages* >/dev/null 2>&1 || echo "$upd" | grep -qE "^(Err:|W: Failed to fetch|E: )"; then
			echo "$upd" | grep -E "^(Err|W|E):" | head -5 >&2
			die "cannot fetch the $s package lists from $MIRROR: no network, or mirror unreachable? (set SMCLAB_MIRROR=<debian mirror URL>)"
		fi
	done
	date > apt/lists/.updated
fi
if [ -z "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null)" ]; then
	log "host apt lists are empty: apt-get update"
	apt-get update -qq || die "apt-get update failed: no network or Debian mirror unreachable?"
fi

dl() { # download .debs into $DEBS (idempotent); args: [--private] pkg[=ver]...
	[ -n "${SMCLAB_RESOLVE_ONLY:-}" ] && return 0
	local opts=(-o APT::Sandbox::User=root)
	if [ "$1" = --private ]; then opts=("${APTOPTS[@]}"); shift; fi
	local p n v
	for p in "$@"; do
		n=${p%%=*}
		if [ "$n" != "$p" ]; then v=${p#*=}; v=${v//:/%3a}; else v=""; fi
		if ls "$DEBS/${n}_${v}"*.deb >/dev/null 2>&1; then continue; fi
		log "downloading $p ($(apt-cache "${opts[@]}" show "$p" 2>/dev/null | awk '/^Size:/{printf "%.0f MB", $2/1e6; exit}'))"
		(cd "$DEBS" && apt-get "${opts[@]}" download -q "$p" >&2) || die "apt-get download $p failed (network?)"
	done
}
deb_of() { ls "$DEBS/${1}_"*.deb 2>/dev/null | sort -V | tail -1; }
depends_of() { # private|host pkg=ver -> first Depends package names
	local opts=(); [ "$1" = private ] && opts=("${APTOPTS[@]}")
	apt-cache "${opts[@]}" show "$2" | awk -F': ' '/^Depends:/{print $2; exit}' | tr ',' '\n' | sed 's/^ *//; s/ .*//'
}
pkgver() { # [--private] pkg -> its version: from the downloaded .deb, else from the lists
	local opts=(); if [ "$1" = --private ]; then opts=("${APTOPTS[@]}"); shift; fi
	local d; d=$(deb_of "$1")
	if [ -n "$d" ]; then dpkg-deb -f "$d" Version
	else apt-cache "${opts[@]}" show "$1" 2>/dev/null | awk '/^Version:/{print $2}' | sort -V | tail -1; fi
}
newest_pkg() { # ERE over package names (private lists) -> the newest matching name
	apt-cache "${APTOPTS[@]}" pkgnames | grep -E "^$1\$" | sort -V | tail -1
}
newest_ver() { # pkg -> newest version in the private lists
	apt-cache "${APTOPTS[@]}" madison "$1" | awk -F' *\\| *' '{print $2}' | sort -V | tail -1
}

# ---------------------------------------------------------------- choose kernels
# version patterns, not file names: the newest match wins (override with SMCLAB_<K>_PKG)
: > "$B/kernels.tsv.new"
kline() { printf '%s\t%s\t%s\t%s\n' "$@" >> "$B/kernels.tsv.new"; } # name version source package
stock_image() { # NAME ERE WHAT [PIN]: the newest linux-image-* matching ERE (private lists)
	local pkg=${4:-$(newest_pkg "$2")}
	[ -n "$pkg" ] || die "cannot resolve $3"
	dl --private "$pkg"
	kline "$1" "$(pkgver --private "$pkg")" stock "$pkg"
	echo "$pkg"
}
if want k510; then
	K510_PKG=$(stock_image k510 'linux-image-5\.10\.0-[0-9]+-amd64' "linux-image-5.10.0-*-amd64 in bullseye" "${SMCLAB_K510_PKG:-}") || exit 1
fi
if want k61; then
	K61_PKG=${SMCLAB_K61_PKG:-$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')}
	[ -n "$K61_PKG" ] || die "cannot resolve bookworm linux-image-amd64 (host apt lists)"
	dl "$K61_PKG"
	kline k61 "$(pkgver "$K61_PKG")" stock "$K61_PKG"
fi
if want k612 || want k612lo; then
	BPO_VER=${SMCLAB_BPO_VER:-$(apt-cache "${APTOPTS[@]}" madison linux-image-amd64 | awk -F' *\\| *' '$3 ~ /bookworm-backports/{print $2; exit}')}
	[ -n "$BPO_VER" ] || die "cannot resolve linux-image-amd64 in bookworm-backports"
	BPO_PKG=$(depends_of private "linux-image-amd64=$BPO_VER" | grep '^linux-image-' | head -1)
	BPO_ABI=${BPO_PKG#linux-image-}; BPO_ABI=${BPO_ABI%-amd64}          # e.g. 6.12.95+deb12
	BPO_SRC="linux-source-$(echo "$BPO_ABI" | cut -d. -f1,2)=$BPO_VER"   # linux-source-6.12=<ver>
	dl --private "$BPO_PKG"
	want k612 && kline k612 "$BPO_VER" stock "$BPO_PKG"
	if want k612lo; then
		dl --private "linux-headers-$BPO_ABI-amd64" "linux-headers-$BPO_ABI-common" "linux-kbuild-$BPO_ABI" "$BPO_SRC"
		kline k612lo "$BPO_VER" "stock+smc.ko(CONFIG_SMC_LO)" "$BPO_PKG"
	fi
fi
if want k617; then
	K617_PKG=$(stock_image k617 'linux-image-6\.17\.[0-9]+\+deb13-amd64' "linux-image-6.17.*+deb13-amd64 in trixie-backports" "${SMCLAB_K617_PKG:-}") || exit 1
fi
if want k7; then
	K7_SRC=${SMCLAB_K7_PKG:-$(newest_pkg 'linux-source-7\.[0-9]+')}
	[ -n "$K7_SRC" ] || die "cannot resolve linux-source-7.* in trixie-backports"
	dl --private "$K7_SRC=$(newest_ver "$K7_SRC")"
	kline k7 "$(pkgver --private "$K7_SRC")" self-built "$K7_SRC"
fi
if want k612t; then
	TRX_VER=$(apt-cache "${APTOPTS[@]}" madison linux-image-amd64 | awk -F' *\\| *' '$3 ~ /trixie\//{print $2; exit}')
	TRX_PKG=$(depends_of private "linux-image-amd64=$TRX_VER" | grep '^linux-image-' | head -1)
	[ -n "$TRX_PKG" ] || die "cannot resolve trixie linux-image-amd64"
	dl --private "$TRX_PKG"
	kline k612t "$TRX_VER" stock "$TRX_PKG"
fi
dl busybox-static
# kernels.tsv: every flavor ever built here (smc-lab kernels reads it); the new lines win
touch "$B/kernels.tsv"
awk -F'\t' 'NR==FNR{seen[$1]=1; print; next} !seen[$1]' "$B/kernels.tsv.new" "$B/kernels.tsv" > "$B/kernels.tsv.tmp"
mv "$B/kernels.tsv.tmp" "$B/kernels.tsv"; rm -f "$B/kernels.tsv.new"
log "kernels: $(awk -F'\t' -v k="$KERNELS" 'index(k, " "$1" "){printf "%s %s (%s)  ", $1, $2, $3}' "$B/kernels.tsv")"
[ -n "${SMCLAB_RESOLVE_ONLY:-}" ] && exit 0

# ---------------------------------------------------------------- extract
xdeb() { # deb dir
	if [ -e "$2/.done" ] && [ "$(cat "$2/.done")" = "$(basename "$1")" ]; then return 0; fi
	log "extracting $(basename "$1")"
	rm -rf "$2"; mkdir -p "$2"; dpkg -x "$1" "$2"; basename "$1" > "$2/.done"
}
# kernel trees are extracted only when something needs them (see mk_initrd)
xdeb "$(deb_of busybox-static)" "$B/busybox"
BB=$B/busybox/bin/busybox

# ---------------------------------------------------------------- smc.ko with CONFIG_SMC_LO
# Debian sets "# CONFIG_SMC_LO is not set"; smc_loopback.o is part of smc.ko,
# so rebuilding smc.ko (out of tree, against Debian's headers, with the gcc-12
# the bookworm-backports kernel was built with) is enough.
if want k612lo; then
	SMCLO_ID="$(basename "$(deb_of "${BPO_SRC%%=*}")") $(basename "$(deb_of "$BPO_PKG")")"
	if [ ! -e "$B/smc-lo/smc.ko" ] || [ "$(cat "$B/smc-lo/.id" 2>/dev/null)" != "$SMCLO_ID" ]; then
		log "building smc.ko with CONFIG_SMC_LO=y from $(basename "$(deb_of "${BPO_SRC%%=*}")")"
		xdeb "$(deb_of "$BPO_PKG")" "$B/k612"
		rm -rf "$B/hdr" "$B/src" "$B/smc-lo"; mkdir -p "$B/hdr" "$B/src" "$B/smc-lo"
		for p in "linux-headers-$BPO_ABI-amd64" "linux-headers-$BPO_ABI-common" "linux-kbuild-$BPO_ABI"; do
			dpkg -x "$(deb_of "$p")" "$B/hdr"
		done
		dpkg -x "$(deb_of "${BPO_SRC%%=*}")" "$B/src"
		KH=$B/hdr/usr/src/linux-headers-$BPO_ABI-amd64
		# the arch Makefile includes the -common one by absolute path
		sed -i "s#^include /usr/src/#include $B/hdr/usr/src/#" "$KH/Makefile"
		SRCDIR=linux-source-$(echo "$BPO_ABI" | cut -d. -f1,2)
		tar -xJf "$B/src/usr/src/$SRCDIR.tar.xz" -C "$B/src" --wildcards "$SRCDIR/net/smc/*"
		cp "$B/src/$SRCDIR/net/smc/"* "$B/smc-lo/"
		echo 'ccflags-y += -DCONFIG_SMC_LO=1' >> "$B/smc-lo/Makefile"
		CCV=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$B/k612/boot/config-"*)
		if ! command -v "$CCV" >/dev/null; then
			log "warning: kernel was built with $CCV, not found; using gcc"
			CCV=gcc
		fi
		make -s -C "$KH" M="$B/smc-lo" CC="$CCV" CONFIG_SMC=m CONFIG_SMC_DIAG=m CONFIG_SMC_LO=y \
			CONFIG_DEBUG_INFO_BTF_MODULES= -j"$(nproc)" modules >&2 || die "building smc.ko failed"
		strip --strip-debug "$B/smc-lo/smc.ko" "$B/smc-lo/smc_diag.ko"
		echo "$SMCLO_ID" > "$B/smc-lo/.id"
		rm -rf "$B/src" "$B/hdr" # the 150 MB source tarball and headers are not needed any more
	fi
fi

# ---------------------------------------------------------------- the lab's own 7.x kernel
# Debian's 7.x kernels ship without SMC (CONFIG_DIBS is not set, and CONFIG_SMC depends on
# it); the TCP core carries the SMC option hooks only when CONFIG_SMC is set at build time,
# so no out-of-tree module can help: build a small QEMU-guest kernel from Debian's own
# linux-source-7.x with kernel/smclab.config (everything built in, no modules).
if want k7; then
	K7_ID="$(basename "$(deb_of "$K7_SRC")") $(sha256sum < "$SRC/kernel/smclab.config" | cut -c1-16) $(gcc -dumpfullversion)"
	if [ ! -s "$B/vmlinuz-k7" ] || [ "$(cat "$B/k7.id" 2>/dev/null)" != "$K7_ID" ]; then
		KS=$B/k7-src; KO=$B/k7-obj; SRCDIR=${K7_SRC}
		rm -rf "$KS" "$KO"; mkdir -p "$KS" "$KO"
		log "extracting $SRCDIR.tar.xz from $(basename "$(deb_of "$K7_SRC")")"
		dpkg-deb --fsys-tarfile "$(deb_of "$K7_SRC")" | tar -xO "./usr/src/$SRCDIR.tar.xz" \
			| xz -dc -T0 | tar -x -C "$KS" || die "extracting the $SRCDIR source failed"
		KT=$KS/$SRCDIR
		make -s -C "$KT" O="$KO" ARCH=x86_64 tinyconfig >/dev/null || die "make tinyconfig failed"
		"$KT/scripts/kconfig/merge_config.sh" -m -O "$KO" "$KO/.config" "$SRC/kernel/smclab.config" >/dev/null \
			|| die "merging kernel/smclab.config failed"
		make -s -C "$KT" O="$KO" ARCH=x86_64 olddefconfig || die "make olddefconfig failed"
		for c in SMC SMC_DIAG DIBS DIBS_LO RDMA_RXE IPV6 9P_FS NET_9P_VIRTIO VIRTIO_NET SYN_COOKIES PACKET; do
			grep -q "^CONFIG_$c=y" "$KO/.config" || die "CONFIG_$c did not survive olddefconfig (see $KO/.config)"
		done
		log "compiling Linux $(dpkg-deb -f "$(deb_of "$K7_SRC")" Version) (kernel/smclab.config, -j$(nproc); about 10 min on 2 cores)"
		t7=$(date +%s)
		( while sleep 60; do log "  ... $(find "$KO" -name '*.o' | wc -l) objects compiled"; done ) &
		ticker=$!
		if ! make -C "$KT" O="$KO" ARCH=x86_64 -j"$(nproc)" bzImage > "$B/k7-build.log" 2>&1; then
			kill "$ticker" 2>/dev/null; tail -30 "$B/k7-build.log" >&2
			die "building the 7.x kernel failed (log: $B/k7-build.log)"
		fi
		kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
		log "compiled the 7.x kernel in $(( $(date +%s) - t7 )) s"
		cp "$KO/arch/x86/boot/bzImage" "$B/vmlinuz-k7.new"
		cp "$KO/.config" "$B/config-k7"
		mv "$B/vmlinuz-k7.new" "$B/vmlinuz-k7"
		echo "$K7_ID" > "$B/k7.id"
		rm -rf "$KS" "$KO" # about 1.3 GB; the bzImage is all the lab needs
	fi
fi

# ---------------------------------------------------------------- guest tools
mkdir -p "$B/tools"
for t in smcecho pcapcap smctool; do
	if [ ! -x "$B/tools/$t" ] || [ "$SRC/guest/$t.c" -nt "$B/tools/$t" ]; then
		log "compiling static guest tool $t"
		gcc -static -O2 -Wall -Wextra -o "$B/tools/$t.tmp" "$SRC/guest/$t.c" || die "compiling $t.c failed"
		strip "$B/tools/$t.tmp"; mv "$B/tools/$t.tmp" "$B/tools/$t"
	fi
done

# ---------------------------------------------------------------- initramfs per flavor
# crc32_generic: rdma_rxe needs the "crc32" shash at "rdma link add" time (else ENOENT; from
# 6.15 crc32 is a library and the module is gone: "?" = only where it exists);
# 9p: the host's /usr and the project tree, read-only, for smctrace inside the guest
MODS="virtio_pci virtio_net smc smc_diag ?crc32_generic rdma_rxe veth 9pnet_virtio 9p"

modinfo_field() { objcopy -O binary --only-section=.modinfo "$1" /dev/stdout | tr '\0' '\n' | sed -n "s/^$2=//p"; }

mk_initrd() { # flavor kernel-deb|- kernel-root|- [smc-override-dir]
	local fl=$1 kdeb=$2 kr=$3 ovr=${4:-} kver root stamp mroot
	# inputs: kernel package (or self-built bzImage), smc override, init, tools, module list, this script
	stamp=$( { if [ "$kdeb" = - ]; then cat "$B/k7.id"; else basename "$kdeb"; fi; echo "$MODS"
		[ -n "$ovr" ] && cat "$ovr/.id" "$ovr/smc.ko"
		cat "$SRC/guest/init" "$B/tools/"* "$SRC/build.sh" "$BB" /usr/sbin/ip /usr/bin/rdma; } | sha256sum | cut -c1-16)
	if [ -s "$B/initrd-$fl.cpio.gz" ] && [ -s "$B/vmlinuz-$fl" ] && [ "$(cat "$B/initrd-$fl.stamp" 2>/dev/null)" = "$stamp" ]; then
		log "initramfs $fl is up to date"
		return 0
	fi
	root=$B/initrd-$fl
	rm -rf "$root"; mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/sbin,lib/modules,lib64,lib/x86_64-linux-gnu,proc,sys,dev,tmp,run,out,etc,host/usr,host/repo}
	: > "$root/lib/modules/load-order.txt"
	if [ "$kdeb" != - ]; then
		xdeb "$kdeb" "$kr"
		kver=$(ls "$kr/lib/modules" 2>/dev/null | head -1 || true)
		mroot=$kr/lib/modules/$kver
		[ -d "$mroot" ] || { kver=$(ls "$kr/usr/lib/modules" | head -1); mroot=$kr/usr/lib/modules/$kver; }
		log "initramfs $fl (kernel $kver)"
	else
		log "initramfs $fl (self-built kernel, no modules)"
	fi
	cp "$BB" "$root/bin/busybox"
	for a in $("$BB" --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
	cp "$B/tools/"* "$root/usr/local/sbin/"
	cp "$SRC/guest/init" "$root/init"; chmod +x "$root/init"
	# iproute2 ip + rdma with their shared libraries (from the host's install)
	for bin in /usr/sbin/ip /usr/bin/rdma; do
		cp "$bin" "$root/usr/local/sbin/"
		ldd "$bin" | awk '/=>/{print $3} /ld-linux/{print $1}' | while read -r l; do
			[ -f "$l" ] || continue
			case "$l" in /lib64/*) cp -L "$l" "$root/lib64/" ;; *) cp -L "$l" "$root/lib/x86_64-linux-gnu/" ;; esac
		done
	done
	printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
	if [ "$kdeb" != - ]; then
		# module index name -> path
		declare -A idx=()
		while read -r f; do
			n=$(basename "$f"); n=${n%.xz}; n=${n%.ko}; n=${n//-/_}
			idx[$n]=$f
		done < <(find "$mroot/kernel" -name '*.ko' -o -name '*.ko.xz')
		if [ -n "$ovr" ]; then idx[smc]=$ovr/smc.ko; idx[smc_diag]=$ovr/smc_diag.ko; fi
		declare -A done_=()
		add_mod() {
			local m=${1//-/_} f dst deps d opt=
			case $m in \?*) m=${m#?}; opt=1 ;; esac
			[ -n "${done_[$m]:-}" ] && return 0
			done_[$m]=1
			f=${idx[$m]:-}
			if [ -z "$f" ]; then
				grep -qE "/${m//_/[_-]}\.ko" "$mroot/modules.builtin" && return 0
				[ -n "$opt" ] && return 0
				die "module $m not found in $mroot"
			fi
			dst=$root/lib/modules/$m.ko
			case "$f" in *.xz) xz -dc "$f" > "$dst" ;; *) cp "$f" "$dst" ;; esac
			deps=$(modinfo_field "$dst" depends)
			for d in ${deps//,/ }; do add_mod "$d"; done
			echo "$m.ko" >> "$root/lib/modules/load-order.txt"
		}
		for m in $MODS; do add_mod "$m"; done
	fi
	(cd "$root" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null) | gzip -6 > "$B/initrd-$fl.cpio.gz.tmp"
	mv "$B/initrd-$fl.cpio.gz.tmp" "$B/initrd-$fl.cpio.gz"
	if [ "$kdeb" != - ]; then
		cp "$kr/boot/vmlinuz-"* "$B/vmlinuz-$fl"
		cp "$kr/boot/config-"* "$B/config-$fl"
	fi
	echo "$stamp" > "$B/initrd-$fl.stamp"
	log "  modules: $(tr '\n' ' ' < "$root/lib/modules/load-order.txt")"
	rm -rf "$root"
}
want k510 && mk_initrd k510 "$(deb_of "$K510_PKG")" "$B/k510"
want k61 && mk_initrd k61 "$(deb_of "$K61_PKG")" "$B/k61"
want k612 && mk_initrd k612 "$(deb_of "$BPO_PKG")" "$B/k612"
want k612lo && mk_initrd k612lo "$(deb_of "$BPO_PKG")" "$B/k612" "$B/smc-lo"
want k617 && mk_initrd k617 "$(deb_of "$K617_PKG")" "$B/k617"
want k7 && mk_initrd k7 - -
want k612t && mk_initrd k612t "$(deb_of "$TRX_PKG")" "$B/k612t"

if [ -z "${SMCLAB_KEEP_TREES:-}" ]; then # keep only what `run` needs (+ debs/ to rebuild)
	rm -rf "$B"/k510 "$B"/k61 "$B"/k612 "$B"/k617 "$B"/k612t "$B"/hdr "$B"/src
fi
log "SMC-related kernel config:"
for k in $KERNELS; do
	c=$B/config-$k; [ -e "$c" ] || continue
	extra=""; case "$k" in k612lo) extra="(but smc.ko rebuilt with CONFIG_SMC_LO=y)" ;; esac
	echo "  $k: $(grep -E '^(# )?CONFIG_(SMC|SMC_DIAG|SMC_LO|ISM|DIBS|DIBS_LO|RDMA_RXE)[ =]' "$c" | tr '\n' ' ')$extra" >&2
done
log "done: $(for k in $KERNELS; do [ -s "$B/vmlinuz-$k" ] && printf '%s ' "$k"; done)in $B"
