#!/bin/sh
# bench.sh WXBENCH [flags...] - run the suite, then (through make after-bench)
# the figures, the report and the terminal chart for the run just written.
# Exits with wxbench's status (1 if the plotting step failed).
set -u
out=$(mktemp)
rcfile=$(mktemp)
{ "$@"; echo $? >"$rcfile"; } | tee "$out"
rc=$(cat "$rcfile")
run=$(sed -n 's|^results: \(.*\)/results.csv$|\1|p' "$out" | tail -1)
rm -f "$out" "$rcfile"
if [ -n "$run" ]; then
    ${MAKE:-make} --no-print-directory after-bench RUN="$run" || rc=1
    echo "run: $run"
fi
exit "$rc"
