#!/usr/bin/python3
"""Print the latest run directory under a data folder (for the Makefile).

Usage:
    latest_run.py [DATA_DIR]                 the latest run across machines
    latest_run.py --per-machine [DATA_DIR]   the latest run of each machine, one a line

Runs are data/<machine>/<run>/ holding a results.csv; "latest" compares the run
directory names (UTC timestamps from `make bench`), across machines, the machine
name breaking ties. Exit 2 with a message when there is none.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wxdata  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default="data", metavar="DATA_DIR", help="default: data")
    ap.add_argument("--per-machine", action="store_true", help="the latest run of each machine")
    args = ap.parse_args(argv)
    runs = wxdata.latest_runs(args.data) if args.per_machine else [wxdata.latest_run(args.data)]
    runs = [r for r in runs if r is not None]
    if not runs:
        raise wxdata.DataError(f"{args.data}: no <machine>/<run>/results.csv here; run `make bench` first")
    for r in runs:
        print(r)
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
