"""Interference is not failure: a repetition whose measurement other work on
the machine spoiled (a victim or the measuring thread kept off its CPU) is
measured again in a fresh process later in the run's order, at most
WX_MAX_ATTEMPTS (3) tries in all; when every try was spoiled the row is
`interfered` with the last try's reason, and the run still exits 0.

Injected (test build, WXBENCH_TEST_INJECT): `interfere` spoils every case
with victims in every try, `interfere_once` only in a repetition's first
try. And for real: a CPU hog in its own process session beside a quick run."""
import collections
import subprocess
import sys
import time

from conftest import INTERFERED, QUICK_REPETITIONS, read_csv, run_wxbench, victim_lost

MAX_TRIES = 3
INJECTED = "injected interference (WXBENCH_TEST_INJECT): victim 0 lost its CPU"
CONFIG = ("scenario", "strategy", "variant", "threads", "victims", "size_bytes", "batch", "core_class")


def _one_row_per_repetition(run):
    """Every configuration has exactly one row per repetition, whatever the
    number of tries it took."""
    seen = collections.Counter(tuple(r[k] for k in CONFIG) + (r["repetition"],) for r in run.rows)
    assert seen and max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]


def _tries(run):
    """{(scenario, strategy, repetition): sorted tries} from processes.csv."""
    _, procs = read_csv(run.out / "processes.csv")
    out = collections.defaultdict(list)
    for p in procs:
        out[(p["scenario"], p["strategy"], int(p["repetition"]))].append(int(p["try"]))
        for k in ("ref_start_ns", "ref_end_ns"):  # the reference loop, timed in every child that got there
            assert float(p[k]) > 0, p
    return {k: sorted(v) for k, v in out.items()}


def test_spoiled_in_every_try_is_interfered_not_failed(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "run", "--quick", "--scenario", "mprotect_tlb", "--strategy",
                      "mprotect", env={"WXBENCH_TEST_INJECT": "interfere"})
    assert run.rc == 0, run.stderr
    rows = run.rows
    _one_row_per_repetition(run)
    with_victims = [r for r in rows if r["victims"] != "0"]
    assert with_victims and all(r["status"] == "interfered" and r["ns_per_op"] == "" for r in with_victims)
    for r in with_victims:
        m = INTERFERED.fullmatch(r["reason"])
        assert m and m["last"] == INJECTED, r["reason"]
    assert all(r["status"] == "ok" for r in rows if r["victims"] == "0")
    assert run.meta["rows"]["interfered"] == len(with_victims)
    assert f"{len(with_victims)} rows interfered" in run.stderr and "quieter machine" in run.stderr
    # every repetition was tried three times, in fresh processes
    assert _tries(run) == {("mprotect_tlb", "mprotect", k): [1, 2, 3] for k in range(1, QUICK_REPETITIONS + 1)}


def test_spoiled_once_is_measured_again_and_ok(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "run", "--quick", "--scenario", "mprotect_tlb", "--strategy",
                      "mprotect", env={"WXBENCH_TEST_INJECT": "interfere_once"})
    assert run.rc == 0, run.stderr
    _one_row_per_repetition(run)
    # the retry measured the spoiled cases (a busy machine may spoil a retry too: real interference, said so)
    for r in run.rows:
        assert r["status"] == "ok" or victim_lost(r), r
    assert any(r["status"] == "ok" and r["victims"] != "0" for r in run.rows)
    for key, tries in _tries(run).items():
        assert tries[:2] == [1, 2] and len(tries) <= MAX_TRIES, (key, tries)
    # a retry is placed later in the order, not straight after its first try everywhere
    _, procs = read_csv(run.out / "processes.csv")
    assert [int(p["order"]) for p in procs] == list(range(1, len(procs) + 1))


def test_a_cpu_hog_beside_the_run_never_fails_it(wxbench, tmp_path):
    """A CPU-bound program in a process session of its own (so that the
    scheduler's autogroups do not favour wxbench) runs beside a quick run of
    two scenarios with victims: exit 0, no failed row, every row ok,
    unsupported, or interfered with the reason of a victim or measuring
    thread that lost its CPU."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        time.sleep(0.3)
        run = run_wxbench(wxbench, tmp_path / "run", "--quick", "--scenario", "mprotect_tlb,icache_flush",
                          timeout=300)
    finally:
        hog.kill()
        hog.wait()
    assert run.rc == 0, run.stderr[-3000:]
    rows = run.rows
    assert rows and not [r for r in rows if r["status"] in ("failed", "crashed", "timeout")]
    for r in rows:
        assert r["status"] in ("ok", "unsupported") or victim_lost(r), r
    _one_row_per_repetition(run)
    print(f"hog beside the run: {sum(r['status'] == 'interfered' for r in rows)} interfered of {len(rows)} rows, "
          f"{sum(t > 1 for ts in _tries(run).values() for t in ts)} retries", file=sys.stderr)
