#!/bin/sh
# Make kernel headers visible to BCC for the running kernel.
#
# BCC compiles every program (even a socket filter) against kernel headers and looks for
# them at /lib/modules/$(uname -r)/build and .../source (it needs include/linux/kconfig.h).
# Kernels without a matching header package (custom or cloud kernels) have neither; a
# Debian linux-headers-<ver>-amd64 package of another version works for smctrace's socket
# filter, which uses only stable UAPI definitions.  This script links the newest installed
# one in when (and only when) the links are missing.  Idempotent; never replaces anything.
#
# Usage: scripts/setup-bcc-headers.sh [--check]
#   --check   only report whether headers are usable (exit 0) or not (exit 1)
set -eu

release=$(uname -r)
moddir=/lib/modules/$release

usable() {
    [ -e "$1/include/linux/kconfig.h" ]
}

if usable "$moddir/build" || usable "$moddir/source"; then
    echo "setup-bcc-headers: kernel headers for $release already usable in $moddir"
    exit 0
fi
if [ -n "${BCC_KERNEL_SOURCE:-}" ] && usable "$BCC_KERNEL_SOURCE"; then
    echo "setup-bcc-headers: BCC_KERNEL_SOURCE=$BCC_KERNEL_SOURCE is usable"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "setup-bcc-headers: no kernel headers for $release" >&2
    exit 1
fi

# Newest installed Debian arch header tree (e.g. /usr/src/linux-headers-6.1.0-56-amd64) and
# the -common tree it refers to.
arch_tree=$(ls -d /usr/src/linux-headers-*-amd64 /usr/src/linux-headers-*-arm64 2>/dev/null \
    | sort -V | tail -n 1 || true)
if [ -z "$arch_tree" ]; then
    echo "setup-bcc-headers: no /usr/src/linux-headers-*-<arch> tree found;" \
        "install linux-headers-$release, or linux-headers-amd64, then rerun" >&2
    exit 1
fi
common_tree=$(echo "$arch_tree" | sed 's/-\(amd64\|arm64\)$/-common/')
if [ ! -d "$common_tree" ]; then
    echo "setup-bcc-headers: $arch_tree has no matching $common_tree" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-bcc-headers: must run as root to create links in $moddir" >&2
    exit 1
fi

mkdir -p "$moddir"
# Only create links that are missing: a dangling link from an earlier, removed package
# is replaced, an existing directory is left alone.
for pair in "build:$arch_tree" "source:$common_tree"; do
    name=${pair%%:*}
    target=${pair#*:}
    link="$moddir/$name"
    if [ -L "$link" ] && [ ! -e "$link" ]; then
        rm -f "$link"
    fi
    if [ ! -e "$link" ]; then
        ln -s "$target" "$link"
        echo "setup-bcc-headers: $link -> $target"
    fi
done
if usable "$moddir/build" || usable "$moddir/source"; then
    exit 0
fi
echo "setup-bcc-headers: links created but include/linux/kconfig.h still missing" >&2
exit 1
