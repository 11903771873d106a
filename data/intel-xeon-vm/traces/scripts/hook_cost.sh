#!/bin/sh
# hook_cost.sh [ROUNDS] - hook_cost.c's three patterns run plainly and traced
# (the interposer recording, exactly as `wxbench trace` loads it), back to
# back, ROUNDS (default 15) times; prints each pattern's median ns per call
# in both modes and the median over rounds of the difference within a round
# (a shared host moves whole rounds): what tracing adds to one call. From
# the repository root after make.
set -eu
rounds=${1:-15}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cc -O2 -o "$bin/hook_cost" "$(dirname "$0")/hook_cost.c"
lib=$(pwd)/build/libwxtrace.so
for pattern in redundant area heap; do
    i=0
    while [ "$i" -lt "$rounds" ]; do
        "$bin/hook_cost" "$pattern" | sed 's/^/plain /'
        mkdir -p "$bin/t/raw"
        LD_PRELOAD="$lib" WXTRACE_DIR="$bin/t" "$bin/hook_cost" "$pattern" | sed 's/^/traced /'
        rm -rf "$bin/t"
        i=$((i + 1))
    done
done | /usr/bin/python3 -c '
import collections, statistics, sys
v = collections.defaultdict(list)
for line in sys.stdin:
    mode, pattern, ns = line.split()[:3]
    v[pattern, mode].append(float(ns))
for pattern in ("redundant", "area", "heap"):
    p, t = v[pattern, "plain"], v[pattern, "traced"]
    d = sorted(b - a for a, b in zip(p, t))  # per round: traced minus plain, run back to back
    print(f"{pattern:9s} plain {statistics.median(p):6.0f} ns  traced {statistics.median(t):6.0f} ns  per call, "
          f"paired: +{statistics.median(d):.0f} ns (rounds: {d[0]:.0f} to {d[-1]:.0f})")
'
