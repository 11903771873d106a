#!/usr/bin/python3
"""What tracing costs a program: wall time of COMMAND run plainly and with the
interposer loaded (exactly as `wxbench trace` loads it), interleaved, N runs
each, from the repository root after make:

    trace_overhead.py N -- COMMAND [ARG...]

Prints the median wall time of each and their ratio, with the runs; the
interposer's files go to a scratch directory removed afterwards."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main(argv):
    n = int(argv[1])
    cmd = argv[argv.index("--") + 1:]
    lib = os.path.abspath("build/libwxtrace.so")
    plain, traced = [], []
    for i in range(n):
        for mode in (("plain", "traced") if i % 2 == 0 else ("traced", "plain")):
            env = dict(os.environ)
            scratch = None
            if mode == "traced":
                scratch = tempfile.mkdtemp(dir=os.environ.get("RAWDIR"))
                os.mkdir(os.path.join(scratch, "raw"))
                env["LD_PRELOAD"] = lib
                env["WXTRACE_DIR"] = scratch
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
            dt = time.perf_counter() - t0
            (plain if mode == "plain" else traced).append(dt)
            if scratch:
                shutil.rmtree(scratch)
    mp, mt = statistics.median(plain), statistics.median(traced)
    print(f"command: {' '.join(cmd)}")
    print(f"plain  median {mp * 1e3:.1f} ms  runs {' '.join(f'{x * 1e3:.1f}' for x in plain)}")
    print(f"traced median {mt * 1e3:.1f} ms  runs {' '.join(f'{x * 1e3:.1f}' for x in traced)}")
    print(f"traced / plain = {mt / mp:.3f}")


if __name__ == "__main__":
    main(sys.argv)
