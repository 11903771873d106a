#!/bin/sh
# Print the first Python 3 that can import matplotlib (and, with --test,
# pytest): the project's .venv first, then the system interpreters. Prints
# nothing and exits 1 when none can.
need="import matplotlib"
[ "$1" = "--test" ] && need="import matplotlib, pytest"
here=$(cd "$(dirname "$0")/.." && pwd)
for py in "$here/.venv/bin/python" /usr/bin/python3 /opt/homebrew/bin/python3 /usr/local/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c "$need" >/dev/null 2>&1; then
        command -v "$py"
        exit 0
    fi
done
exit 1
