"""gb.json is Google Benchmark's own format: its tools/compare.py (Debian's
libbenchmark-tools) reads two of them and runs its U test over the
process-level repetitions."""
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import run_wxbench  # noqa: E402

GB_COMPARE = Path("/usr/share/benchmark/compare.py")
REPS = 4


@pytest.mark.skipif(not GB_COMPARE.exists(), reason="Google Benchmark's compare.py is not installed here "
                    "(Debian: libbenchmark-tools; make deps installs it on Linux)")
def test_google_benchmark_compare_runs_its_u_test_on_two_gb_json(wxbench, tmp_path):
    runs = []
    for name in ("a", "b"):
        run = run_wxbench(wxbench, tmp_path / name, "--scenario", "toggle_latency", "--strategy", "mprotect",
                          "--repetitions", str(REPS), "--min-time", "0.005")
        assert run.rc == 0, run.stderr
        runs.append(run.out / "gb.json")
    p = subprocess.run([sys.executable, str(GB_COMPARE), "benchmarks", *map(str, runs)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    pvalues = [ln for ln in lines if "toggle_latency/mprotect/" in ln and "_pvalue" in ln]
    # one U test per configuration (the four toggle_latency variants), over the processes as repetitions
    assert len(pvalues) == 4, p.stdout
    assert all(f"U Test, Repetitions: {REPS} vs {REPS}" in ln for ln in pvalues), pvalues
