#!/usr/bin/python3
"""Trace and replay the README's two engines on this machine, from the
repository root after make (Debian packages: apt-get install luajit ruby):

    data/<machine>/traces/scripts/run_engines.py [--pairs K] [--repetitions N]

For each engine, K (default 5) trace/replay pairs, the engines interleaved:
each pair traces the compile-heavy script once (wxbench trace) and replays
it under mprotect (3 processes). validation.csv lists every pair (traced
time in mprotect, predicted, ratio): on a shared machine one trace is one
sample of the load, so the ratio is judged over the pairs. The pair whose
traced time is the median (a representative trace) is kept as data/<machine>/traces/<UTC>-<engine>/ and
replayed under every strategy (N processes each, default 10); the others
are removed. Then scripts/replay_report.py draws the figure and the table.

Every trace and replay runs under SCHED_FIFO (chrt -f 10) where that is
allowed (root), so that other programs on a shared machine do not preempt
them in the middle of a protection call; otherwise at normal priority (the
script says which)."""
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(os.path.relpath(Path(__file__).resolve().parent))
ENGINES = {
    "luajit": (["luajit", str(HERE / "luajit_compile.lua"), "3000"],
               lambda: "LuaJIT {} (Debian luajit {})".format(
                   subprocess.run(["luajit", "-v"], capture_output=True, text=True).stdout.split()[1],
                   dpkg("luajit"))),
    "ruby-yjit": (["ruby", "--yjit", str(HERE / "ruby_yjit_compile.rb"), "600"],
                  lambda: "Ruby {} YJIT (Debian libruby3.1 {})".format(
                      subprocess.run(["ruby", "-e", "print RUBY_VERSION"], capture_output=True, text=True).stdout,
                      dpkg("libruby3.1"))),
}


def dpkg(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
    return r.stdout or "?"


def rt_prefix():
    """chrt -f 10 where a real-time class is allowed here, else nothing."""
    if shutil.which("chrt") and subprocess.run(["chrt", "-f", "10", "true"], capture_output=True).returncode == 0:
        return ["chrt", "-f", "10"]
    return []


def replay_row(d, strategy):
    with open(d / "replay.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["strategy"] == strategy)


def main():
    args = sys.argv[1:]
    pairs = int(args[args.index("--pairs") + 1]) if "--pairs" in args else 5
    reps = int(args[args.index("--repetitions") + 1]) if "--repetitions" in args else 10
    machine = HERE.parent.parent.name
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = Path("data") / machine / "traces"
    scratch = base / f".pairs-{stamp}"
    results = {e: [] for e in ENGINES}
    rt = rt_prefix()
    print("priority:", "SCHED_FIFO 10 (chrt)" if rt else "normal (no real-time class allowed here)", flush=True)
    for k in range(1, pairs + 1):
        for engine, (cmd, _) in ENGINES.items():
            d = scratch / f"{engine}-{k}"
            subprocess.run([*rt, "build/wxbench", "trace", "--out", str(d), "--", *cmd], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([*rt, "build/wxbench", "replay", str(d), "--strategy", "mprotect", "--repetitions", "3"],
                           check=True, stdout=subprocess.DEVNULL)
            r = replay_row(d, "mprotect")
            results[engine].append((k, int(r["traced_ns"]), float(r["predicted_ns"]), float(r["ratio"]), d))
            print(f"{engine} pair {k}: traced {int(r['traced_ns']) / 1e6:.1f} ms, predicted "
                  f"{float(r['predicted_ns']) / 1e6:.1f} ms, ratio {float(r['ratio']):.3f}", flush=True)
    kept = []
    for engine, (cmd, version) in ENGINES.items():
        rs = results[engine]
        med = statistics.median_low([r[1] for r in rs])
        k, traced, pred, ratio, d = next(r for r in rs if r[1] == med)
        out = base / f"{stamp}-{engine}"
        shutil.move(str(d), out)
        (out / "replay.csv").unlink()
        (out / "engine.txt").write_text(version() + "\n")
        with open(out / "validation.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pair", "traced_ns", "predicted_ns", "ratio", "kept"])
            for r in rs:
                w.writerow([r[0], r[1], f"{r[2]:.0f}", f"{r[3]:.4f}", "yes" if r[0] == k else ""])
        subprocess.run([*rt, "build/wxbench", "replay", str(out), "--repetitions", str(reps)], check=True)
        kept.append(str(out))
    shutil.rmtree(scratch)
    py = subprocess.run(["tools/find_python.sh"], capture_output=True, text=True).stdout.strip() or sys.executable
    subprocess.run([py, "scripts/replay_report.py", *kept, "--out", f"plots/{machine}/traces/{stamp}"], check=True)


if __name__ == "__main__":
    main()
