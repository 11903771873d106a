"""Process-level replication: every repetition a fresh process, run in a seeded
random order (the same for the same seed), recorded in processes.csv;
--target-ci; gb.json in Google Benchmark's schema (and on stdout with
--benchmark_format=json); the machine's state recorded before timing; a failed
write never leaving part of a row."""
import csv
import io
import json
import math

import pytest

from conftest import HEADER, run_wxbench

GB_ITERATION_KEYS = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
                     "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index"}
GB_AGGREGATES = ("mean", "median", "stddev", "cv")


def processes(run):
    with open(run.out / "processes.csv", newline="") as f:
        return list(csv.DictReader(f))


def order(run):
    return [(p["scenario"], p["strategy"], p["repetition"], p["layout_pages"]) for p in processes(run)]


@pytest.fixture(scope="module")
def seeded(wxbench, tmp_path_factory):
    """Two runs with the same seed and one with another, of a small selection."""
    base = tmp_path_factory.mktemp("seeded")
    args = ("--quick", "--scenario", "harness,toggle_latency", "--strategy", "none,rwx,mprotect", "--repetitions", "4")
    return (run_wxbench(wxbench, base / "a", *args, "--seed", "12345"),
            run_wxbench(wxbench, base / "b", *args, "--seed", "12345"),
            run_wxbench(wxbench, base / "c", *args, "--seed", "54321"))


def test_every_repetition_is_a_process_of_its_own(seeded):
    a = seeded[0]
    assert a.rc == 0, a.stderr
    procs = processes(a)
    # 2 pairs (harness/none, toggle_latency x 2 strategies) x 4 repetitions
    assert len(procs) == 3 * 4, procs
    assert len({p["pid"] for p in procs}) == len(procs), "a repetition shares a process with another"
    for p in procs:
        assert p["end"] == "exited with status 0", p
    # every row's repetition is the repetition of the process that wrote it
    by_pair = {}
    for p in procs:
        by_pair.setdefault((p["scenario"], p["strategy"]), []).append(int(p["repetition"]))
    for reps in by_pair.values():
        assert sorted(reps) == [1, 2, 3, 4]
    for r in a.rows:
        assert int(r["repetition"]) in by_pair[(r["scenario"], r["strategy"])]
    assert a.meta["settings"]["seed"] == 12345
    assert a.meta["replication"]["unit"] == "process"
    assert a.meta["replication"]["processes"] == len(procs)


def test_the_same_seed_gives_the_same_order_and_layout(seeded):
    a, b, c = seeded
    assert order(a) == order(b)
    assert order(a) != order(c), "another seed should shuffle otherwise"
    # interleaved: the repetitions of one pair are not all back to back
    pairs = [(s, st) for s, st, _, _ in order(a)]
    runs_of_pair = sum(1 for i in range(1, len(pairs)) if pairs[i] != pairs[i - 1]) + 1
    assert runs_of_pair > 3, pairs
    assert len({p[3] for p in order(a)}) > 1, "every process got the same spacer"


def test_no_interleave_is_table_order(wxbench, tmp_path):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "toggle_latency,harness", "--strategy",
                      "mprotect,rwx,none", "--repetitions", "2", "--no-interleave")
    assert run.rc == 0, run.stderr
    got = [(p["scenario"], p["strategy"], p["repetition"]) for p in processes(run)]
    # scenarios in the order named, strategies in the table's order, repetitions back to back
    assert got == [("toggle_latency", "rwx", "1"), ("toggle_latency", "rwx", "2"), ("toggle_latency", "mprotect", "1"),
                   ("toggle_latency", "mprotect", "2"), ("harness", "none", "1"), ("harness", "none", "2")], got
    assert run.meta["settings"]["interleaved"] is False


def test_duplicate_names_run_once(wxbench, tmp_path):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "harness,harness", "--strategy",
                      "none,none", "--repetitions", "2")
    assert run.rc == 0, run.stderr
    assert len(processes(run)) == 2
    assert sorted(int(r["repetition"]) for r in run.select(variant="shim")) == [1, 2]


def test_unsupported_strategy_runs_once(wxbench, tmp_path, platform):
    absent = platform.not_running()
    if not absent:
        pytest.skip("every strategy runs here: no unsupported one to schedule")
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "toggle_latency", "--strategy", absent[0],
                      "--repetitions", "4")
    assert run.rc == 0, run.stderr
    assert len(processes(run)) == 1, "an unsupported strategy needs one process to say why, not one per repetition"
    assert run.rows and all(r["status"] == "unsupported" and r["repetition"] == "1" for r in run.rows)


def test_environment_is_recorded(seeded):
    env = seeded[0].meta["environment"]
    assert set(env) >= {"runnable_tasks_not_ours", "load_average", "busy", "warning"}
    assert isinstance(env["busy"], bool)
    assert (env["warning"] != "") == env["busy"]
    # the runnable tasks decide where they are counted (Linux); the load
    # average, which trails by a minute, only where they are not
    if env["runnable_tasks_not_ours"] >= 0:
        assert env["busy"] == (env["runnable_tasks_not_ours"] >= 1), env
    else:
        load = env["load_average"]
        assert env["busy"] == (load is not None and load[0] >= 0.5 * seeded[0].meta["cores"]["allowed"]), env
    if env["busy"]:
        assert "busy" in seeded[0].stderr


# ------------------------------------------------------------------ gb.json


def check_gb(doc, run):
    assert set(doc) == {"context", "benchmarks"}
    ctx = doc["context"]
    for k in ("date", "host_name", "executable", "num_cpus", "library_version", "json_schema_version"):
        assert k in ctx, k
    ok = {}
    for r in run.rows:
        if r["status"] == "ok":
            name = "/".join([r["scenario"], r["strategy"], r["variant"], f"threads:{r['threads']}",
                             f"victims:{r['victims']}", f"size:{r['size_bytes']}", f"batch:{r['batch']}"])
            if r["core_class"] != "any":
                name += f"/class:{r['core_class']}"
            ok.setdefault(name, {})[int(r["repetition"])] = float(r["ns_per_op"])
    iterations = {}
    aggregates = {}
    for b in doc["benchmarks"]:
        assert "case:" not in b["name"] and "min_time" not in b["name"] and "repetition:" not in b["name"], b
        assert b["time_unit"] == "ns"
        if b["run_type"] == "iteration":
            assert GB_ITERATION_KEYS <= set(b), set(b) ^ GB_ITERATION_KEYS
            iterations.setdefault(b["name"], []).append(b)
        else:
            assert b["run_type"] == "aggregate" and b["aggregate_name"] in GB_AGGREGATES
            aggregates.setdefault(b["run_name"], {})[b["aggregate_name"]] = b
    assert set(iterations) == set(ok), set(iterations) ^ set(ok)
    for name, entries in iterations.items():
        want = ok[name]
        assert len(entries) == len(want) == entries[0]["repetitions"]
        assert sorted(e["repetition_index"] for e in entries) == list(range(len(want)))
        for e in entries:
            # the process of repetition k is repetition_index k-1 of the benchmark
            assert math.isclose(e["real_time"], want[sorted(want)[e["repetition_index"]]], rel_tol=1e-5)
        agg = aggregates[name]
        assert set(agg) == set(GB_AGGREGATES)
        values = sorted(want.values())
        med = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] +
                                                                 values[len(values) // 2]) / 2
        assert math.isclose(agg["median"]["real_time"], med, rel_tol=1e-5)
        assert math.isclose(agg["mean"]["real_time"], sum(values) / len(values), rel_tol=1e-5)
        assert agg["cv"]["aggregate_unit"] == "percentage"


def test_gb_json_is_one_document_of_the_whole_run(seeded):
    run = seeded[0]
    with open(run.out / "gb.json") as f:
        doc = json.load(f)
    check_gb(doc, run)
    # names are the same in every run of the same selection
    with open(seeded[2].out / "gb.json") as f:
        other = json.load(f)
    assert {b["name"] for b in doc["benchmarks"]} == {b["name"] for b in other["benchmarks"]}


def test_benchmark_format_json_makes_stdout_one_document(wxbench, tmp_path):
    out_file = tmp_path / "copy.json"
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "toggle_latency", "--strategy", "rwx",
                      "--", "--benchmark_format=json", f"--benchmark_out={out_file}")
    assert run.rc == 0, run.stderr
    doc = json.loads(run.stdout)  # the whole of stdout: one JSON document
    check_gb(doc, run)
    assert json.loads(out_file.read_text()) == doc
    assert json.loads((run.out / "gb.json").read_text()) == doc


@pytest.mark.parametrize("args, words", [
    (["--", "--benchmark_out_format=csv"], ["json"]),
    (["--", "--benchmark_repetitions=3"], ["--repetitions"]),
    (["--seed", "-1"], ["--seed"]),
    (["--seed", "x"], ["--seed"]),
    (["--target-ci", "0"], ["--target-ci"]),
    (["--target-ci", "abc"], ["--target-ci"]),
])
def test_bad_replication_flags_exit_2(wxbench, tmp_path, args, words):
    run = run_wxbench(wxbench, tmp_path / "r", *args)
    assert run.rc == 2, (run.rc, run.stderr)
    for w in words:
        assert w in run.stderr
    assert not (tmp_path / "r" / "results.csv").exists()


# ---------------------------------------------------------------- target CI


def test_target_ci_adds_processes_and_says_which_got_there(wxbench, tmp_path):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "harness", "--strategy", "none",
                      "--repetitions", "3", "--target-ci", "50")
    assert run.rc == 0, run.stderr
    with open(run.out / "target_ci.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["variant"] for r in rows} == {"shim", "native"}
    for r in rows:
        n = int(r["n"])
        assert n >= 6, "no 95% interval of the median exists below 6 values: more processes must have run"
        assert r["reached"] in ("yes", "no")
        if r["reached"] == "yes":
            assert float(r["half_width_pct"]) <= 50
        assert float(r["ci_low"]) <= float(r["median"]) <= float(r["ci_high"])
        assert n == len(run.select(variant=r["variant"], status="ok"))
    assert run.meta["settings"]["target_ci_pct"] == 50
    assert run.meta["target_ci"]["missed"] == sum(r["reached"] == "no" for r in rows)


# ------------------------------------------------------- nothing half-written


def test_a_failed_write_leaves_whole_rows_and_true_counts(wxbench_test, tmp_path):
    # every process writes 2 rows, then its 3rd write fails half-way (ENOSPC)
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency", "--strategy",
                      "rwx,mprotect", env={"WXBENCH_TEST_WRITE_FAIL": "2"})
    assert run.rc == 1
    text = (run.out / "results.csv").read_text()
    assert text.endswith("\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert ",".join(rows[0]) == HEADER
    assert all(len(r) == 20 for r in rows), "a row was cut"
    assert len(rows) - 1 == 2, rows  # the first process's two rows, then the run stopped
    assert "results.csv" in run.stderr and "No space left on device" in run.stderr
    meta = run.meta
    assert sum(meta["rows"].values()) == len(rows) - 1
    assert meta["finished"] is False and "results.csv" in meta["stopped"]
