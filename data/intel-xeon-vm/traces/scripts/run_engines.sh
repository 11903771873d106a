#!/bin/sh
# run_engines.sh - trace and replay the two engines of the README's table on
# this machine (Debian packages: apt-get install luajit ruby), then draw the
# figure. Run from the repository root after make:
#   data/intel-xeon-vm/traces/scripts/run_engines.sh [REPETITIONS]
# Each engine is traced once (wxbench trace) and replayed REPETITIONS times
# (default 10) per strategy, every repetition a fresh process.
set -eu
here=$(dirname "$0")
reps=${1:-10}
machine=$(basename "$(cd "$here/.." && cd .. && pwd)")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for engine in luajit ruby-yjit; do
    out=data/$machine/traces/$stamp-$engine
    case $engine in
        luajit) build/wxbench trace --out "$out" -- luajit "$here/luajit_compile.lua" 3000 ;;
        ruby-yjit) build/wxbench trace --out "$out" -- ruby --yjit "$here/ruby_yjit_compile.rb" 600 ;;
    esac
    build/wxbench replay "$out" --repetitions "$reps"
done
"$(tools/find_python.sh)" scripts/replay_report.py data/$machine/traces/$stamp-* --out plots/$machine/traces/$stamp
