#!/bin/sh
# run.sh - every test suite of `make test`, then one closing line
# "total: N passed, N failed, N skipped". Exit status 0 only when nothing failed.
#   suites: build/unit_tests (C core), pytest over tests/ (command line,
#   integration, scenarios, scripts).
set -u
cd "$(dirname "$0")/.."
py=$(tools/find_python.sh --test) || { echo "tests: no Python 3 with matplotlib and pytest (run: make deps)"; exit 1; }

passed=0; failed=0; skipped=0
add() { passed=$((passed + ${1:-0})); failed=$((failed + ${2:-0})); skipped=$((skipped + ${3:-0})); }

echo "== unit tests (C core)"
out=$(mktemp)
status=$(mktemp)
# shown as it runs; the status is the unit tests' own, not the pipe's last command's
{ build/unit_tests 2>&1; echo $? >"$status"; } | tee "$out"
rc=$(cat "$status")
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
if [ -n "$line" ]; then
    add $(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
    [ $rc -ne 0 ] && [ "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" = 0 ] && add 0 1 0
else
    echo "unit tests printed no summary (exit $rc)"; add 0 1 0
fi

echo "== pytest (command line, integration, scenarios, scripts)"
{ "$py" -m pytest tests -q -rs -p no:cacheprovider 2>&1; echo $? >"$status"; } | tee "$out"
prc=$(cat "$status")
line=$(tail -1 "$out")
p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); p=${p:-0}
f=$(echo "$line" | grep -oE '[0-9]+ (failed|error|errors)' | awk '{n += $1} END {print n + 0}')
s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+'); s=${s:-0}
if [ "$p" = 0 ] && [ "$f" = 0 ]; then
    echo "pytest ran no test: $line"; f=1
elif [ "$prc" -ne 0 ] && [ "$f" = 0 ]; then
    echo "pytest exited $prc without counting a failure: $line"; f=1
fi
add "$p" "$f" "$s"
rm -f "$out" "$status"

echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
