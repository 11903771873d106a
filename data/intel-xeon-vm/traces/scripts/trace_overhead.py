#!/usr/bin/python3
"""What tracing costs a program: its wall time run plainly, with the
interposer loaded but not recording (LD_PRELOAD without WXTRACE_DIR: every
hook passes straight through), and traced (exactly as `wxbench trace` loads
it), the three interleaved in a rotating order, N runs each. From the
repository root after make:

    trace_overhead.py N -- COMMAND [ARG...]

Prints each mode's median wall time and its runs, the median CPU time
(user + system, from wait4: less sensitive to other programs on a shared
machine), and the ratios, each with its 95% interval (percentile bootstrap
of the ratio of the two modes' medians, 4000 resamples, seeded), then the
paired ratios: each round runs the three modes back to back, so the median
over rounds of (mode / plain within the round) leaves out most of a shared
host's drift, which moves whole rounds; its interval is a bootstrap over
rounds. On a machine whose runs scatter by 15%, the paired interval is what
says whether a ratio of 1.05 is the interposer or the host. The
interposer's files go to a scratch directory ($RAWDIR or the system's
temporary folder) removed after each run."""
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("plain", "loaded", "traced")


def interval(a, b, resamples=4000):
    """95% percentile-bootstrap interval of median(a) / median(b)."""
    rng = random.Random(20261201)
    r = sorted(statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
               for _ in range(resamples))
    return r[int(0.025 * resamples)], r[int(0.975 * resamples) - 1]


def paired(d):
    """Median over rounds of mode / plain in the same round, with a bootstrap interval over rounds."""
    parts = []
    for x in ("traced", "loaded"):
        r = [a / b for a, b in zip(d[x], d["plain"])]
        rng = random.Random(20261201)
        boot = sorted(statistics.median(rng.choices(r, k=len(r))) for _ in range(4000))
        parts.append(f"{x} / plain = {statistics.median(r):.3f} ({boot[100]:.3f}-{boot[3899]:.3f})")
    return "; ".join(parts)


def ratios(d):
    parts = []
    for x, y in (("traced", "plain"), ("loaded", "plain"), ("traced", "loaded")):
        lo, hi = interval(d[x], d[y])
        parts.append(f"{x} / {y} = {statistics.median(d[x]) / statistics.median(d[y]):.3f} ({lo:.3f}-{hi:.3f})")
    return "; ".join(parts)


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
    print(f"wall: {ratios(runs)}")
    mc = {m: statistics.median(v) for m, v in cpu.items()}
    for m in MODES:
        print(f"{m:7s} CPU median {mc[m] * 1e3:8.1f} ms")
    print(f"CPU:  {ratios(cpu)}")
    print(f"paired, wall: {paired(runs)}")
    print(f"paired, CPU:  {paired(cpu)}")


if __name__ == "__main__":
    main(sys.argv)
