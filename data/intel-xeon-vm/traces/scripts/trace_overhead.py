#!/usr/bin/python3
"""What tracing costs a program: its wall time run plainly, with the
interposer loaded but not recording (LD_PRELOAD without WXTRACE_DIR: every
hook passes straight through), and traced (exactly as `wxbench trace` loads
it), the three interleaved in a rotating order, N runs each. From the
repository root after make:

    trace_overhead.py N -- COMMAND [ARG...]

Prints each mode's median wall time and its runs, the median CPU time
(user + system, from wait4: less sensitive to other programs on a shared
machine), and the ratios. The
interposer's files go to a scratch directory ($RAWDIR or the system's
temporary folder) removed after each run."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("plain", "loaded", "traced")


def main(argv):
    n = int(argv[1])
    cmd = argv[argv.index("--") + 1:]
    lib = os.path.abspath("build/libwxtrace.so")
    runs = {m: [] for m in MODES}
    cpu = {m: [] for m in MODES}
    for i in range(n):
        for mode in MODES[i % 3:] + MODES[:i % 3]:
            env = dict(os.environ)
            env.pop("WXTRACE_DIR", None)
            scratch = None
            if mode != "plain":
                env["LD_PRELOAD"] = lib
            if mode == "traced":
                scratch = tempfile.mkdtemp(dir=os.environ.get("RAWDIR"))
                os.mkdir(os.path.join(scratch, "raw"))
                env["WXTRACE_DIR"] = scratch
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            runs[mode].append(time.perf_counter() - t0)
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                sys.exit(f"{' '.join(cmd)} exited with {p.returncode}")
            cpu[mode].append(ru.ru_utime + ru.ru_stime)
            if scratch:
                shutil.rmtree(scratch)
    print(f"command: {' '.join(cmd)}  ({n} runs per mode, interleaved)")
    med = {m: statistics.median(v) for m, v in runs.items()}
    for m in MODES:
        print(f"{m:7s} median {med[m] * 1e3:8.1f} ms   runs {' '.join(f'{x * 1e3:.0f}' for x in runs[m])}")
    print(f"wall: traced / plain = {med['traced'] / med['plain']:.3f}; loaded / plain = "
          f"{med['loaded'] / med['plain']:.3f}; traced / loaded = {med['traced'] / med['loaded']:.3f}")
    mc = {m: statistics.median(v) for m, v in cpu.items()}
    for m in MODES:
        print(f"{m:7s} CPU median {mc[m] * 1e3:8.1f} ms")
    print(f"CPU:  traced / plain = {mc['traced'] / mc['plain']:.3f}; loaded / plain = "
          f"{mc['loaded'] / mc['plain']:.3f}; traced / loaded = {mc['traced'] / mc['loaded']:.3f}")


if __name__ == "__main__":
    main(sys.argv)
