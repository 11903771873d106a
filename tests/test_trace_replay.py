"""wxbench trace and wxbench replay: the interposer records a known call
sequence exactly (tests/trace_target.c: two threads, a forked child), the
trace files' formats, exit statuses, refusals where tracing cannot work,
replay's rows and its verification of what it writes, bad input."""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT, USER_STRATEGIES, _binary

TRACE_HEADER = ("process,thread,time_ns,duration_ns,call,region,region_size,offset,length,prot_before,prot_after,"
                "detail,result")
REPLAY_HEADER = "strategy,status,reason,switches,predicted_ns,traced_ns,ratio"
INTERVAL_COLUMNS = "repetitions,predicted_ns_low,predicted_ns_high,ratio_low,ratio_high"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the trace tests run the Linux interposer (LD_PRELOAD); macOS's is "
                                       "compiled and linked by make test-cross only")


@pytest.fixture(scope="session")
def target():
    return _binary("wxtrace-target")


def run(*args, env=None, timeout=120):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=e, timeout=timeout, cwd=ROOT)


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def traced(wxbench, target, tmp_path_factory):
    """One trace of the target program, shared by the tests below."""
    out = tmp_path_factory.mktemp("trace") / "t"
    p = run(wxbench, "trace", "--out", out, "--", target)
    return p, out


def page_size():
    return os.sysconf("SC_PAGESIZE")


def test_trace_passes_on_the_exit_status_and_writes_its_files(traced):
    p, out = traced
    assert p.returncode == 3, p.stderr  # the target's own status
    for name in ("trace.csv", "summary.json", "regions.csv", "processes.csv", "meta.json"):
        assert (out / name).is_file(), name
    assert not (out / "raw").exists()
    with open(out / "trace.csv", newline="") as f:
        assert f.readline().rstrip("\r\n") == TRACE_HEADER


def test_trace_records_the_known_sequence_exactly(traced):
    """Every call of the target on code memory, in order per thread, with
    offsets relative to its region; the never-executable mapping D is absent."""
    _, out = traced
    P = page_size()
    rows = rows_of(out / "trace.csv")
    letters = {}  # (lineage, region id) -> A, B, C in order of first appearance

    def region(r):
        if not r["region"]:
            return ""
        lineage = "exec" if r["process"] == "3" else "forked"  # process 2 keeps process 1's regions
        return letters.setdefault((lineage, r["region"]), "ABC"[len(letters)] if len(letters) < 3 else "?")

    got = [(int(r["process"]), int(r["thread"]), r["call"], region(r), r["offset"], int(r["length"]),
            r["prot_before"], r["prot_after"], r["result"]) for r in rows]
    want_main = [
        (1, 1, "mmap", "A", "0", 4 * P, "unmapped", "rw-", "0"),
        (1, 1, "mprotect", "A", str(P), 2 * P, "rw-", "r-x", "0"),
        (1, 1, "mprotect", "A", "0", 4 * P, "mixed", "rw-", "0"),
        (1, 1, "mprotect", "A", "0", 4 * P, "rw-", "r-x", "0"),
    ]
    want_thread = [
        (1, 2, "mmap", "B", "0", 2 * P, "unmapped", "r-x", "0"),
        (1, 2, "mprotect", "B", "0", 2 * P, "r-x", "rw-", "0"),
        (1, 2, "mprotect", "B", str(P), P, "rw-", "r-x", "0"),
        (1, 2, "munmap", "B", "0", 2 * P, "mixed", "unmapped", "0"),
    ]
    want_child = [
        (2, 1, "mprotect", "A", str(3 * P), P, "r-x", "rw-", "0"),
        (2, 1, "mprotect", "A", str(3 * P), P, "rw-", "r-x", "0"),
    ]
    want_exec = [
        (3, 1, "mmap", "C", "0", P, "unmapped", "r-x", "0"),
        (3, 1, "munmap", "C", "0", P, "r-x", "unmapped", "0"),
    ]
    want_end = [
        (1, 1, "membarrier", "", "", 0, "", "", "1023" if False else None),
        (1, 1, "munmap", "A", "0", 4 * P, "r-x", "unmapped", "0"),
    ]
    assert got[:4] == want_main, got
    assert got[4:8] == want_thread, got
    assert got[8:10] == want_child, got
    assert got[10:12] == want_exec, got
    assert len(got) == 14, got
    mb, unmap = got[12], got[13]
    assert mb[:8] == want_end[0][:8], mb
    assert rows[12]["detail"] == "MEMBARRIER_CMD_QUERY;syscall", rows[12]
    assert unmap == want_end[1], unmap
    # times in order per process, durations measured, every time inside the run
    assert all(int(r["duration_ns"]) > 0 for r in rows)
    times = [int(r["time_ns"]) for r in rows]
    assert times == sorted(times)
    wall = json.loads((out / "summary.json").read_text())["wall_ns"]
    assert 0 < times[0] and times[-1] + int(rows[-1]["duration_ns"]) < wall, (times, wall)
    # the target sleeps 30 ms between its fourth call and the second thread's first: the clock the
    # trace's times come from (a counter turned into ns where the kernel's clock is that counter) says so
    assert 30e6 <= times[4] - times[3] < 1e9, times
    # region sizes
    assert {r["region_size"] for r in rows if region(r) == "A"} == {str(4 * P)}
    assert {r["region_size"] for r in rows if region(r) == "B"} == {str(2 * P)}
    # B was mapped right next to A (the replay places it there)
    assert rows[4]["detail"].startswith("MAP_PRIVATE|MAP_ANONYMOUS"), rows[4]


def test_a_signal_handlers_exit_inside_a_hook_ends_the_program(target, tmp_path):
    """The target switches a page back and forth until a timer's handler calls _exit, mostly while inside
    one of the interposer's hooks: the interposer's _exit hook must not wait for the lock its own thread holds
    (it did in 9 of 60 runs before t_busy was volatile)."""
    lib = BUILD / "libwxtrace.so"
    for i in range(40):  # before the fix 9 runs in 60 hung, so 40 runs all but always catch it
        d = tmp_path / f"t{i}"
        (d / "raw").mkdir(parents=True)
        try:
            p = run(target, "signal-exit", env={"LD_PRELOAD": str(lib), "WXTRACE_DIR": str(d)}, timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {i}: the traced program hung after its signal handler called _exit")
        assert p.returncode == 0, (i, p.returncode, p.stderr)


def test_summary_json(traced):
    _, out = traced
    P = page_size()
    s = json.loads((out / "summary.json").read_text())
    assert list(s) == ["command", "exit_status", "wall_ns", "threads", "regions", "calls"]
    assert s["command"][-1].endswith("wxtrace-target")
    assert s["exit_status"] == 3
    assert s["wall_ns"] > 0
    assert s["threads"] == 4  # two in the parent, one in the child, one in the program it ran
    assert s["regions"] == 4  # A and B in the parent, A in the child, C in the program it ran
    calls = s["calls"]
    assert {k: v["count"] for k, v in calls.items()} == {"mmap": 3, "munmap": 3, "mprotect": 7, "membarrier": 1}
    assert calls["mprotect"]["bytes"] == (2 + 4 + 4 + 2 + 1 + 1 + 1) * P
    assert calls["mmap"]["bytes"] == 7 * P
    assert all(v["in_call_ns"] > 0 for v in calls.values())


def test_processes_and_regions(traced):
    _, out = traced
    P = page_size()
    procs = rows_of(out / "processes.csv")
    assert [(p["process"], p["parent"], p["started_by"]) for p in procs] == [
        ("1", "0", "command"), ("2", "1", "fork"), ("3", "2", "exec")]
    assert [p["threads"] for p in procs] == ["2", "1", "1"]
    assert procs[0]["end_ns"] and not procs[1]["end_ns"] and procs[2]["end_ns"]  # 2 ended by exec
    regions = {(r["process"], r["size"]): r for r in rows_of(out / "regions.csv")}
    assert sorted(regions) == sorted([("1", str(4 * P)), ("1", str(2 * P)), ("2", str(4 * P)), ("3", str(P))])
    for key in (("1", str(4 * P)), ("1", str(2 * P))):  # every page written, seen at munmap
        r = regions[key]
        assert r["resident_bytes"] == r["size"] and r["resident"] == f"0:{r['size']}", r
    # the child's exec left no exit handler to look; C was never touched
    assert regions[("2", str(4 * P))]["resident_bytes"] == "0"
    assert regions[("3", str(P))]["resident_bytes"] == "0"


def test_trace_without_a_command_is_a_usage_error(wxbench, tmp_path):
    for args in (["trace"], ["trace", "--"], ["trace", "--out", tmp_path / "x", "--"]):
        p = run(wxbench, *args)
        assert p.returncode == 2, (args, p.stderr)
        assert "no command" in p.stderr
    assert not (tmp_path / "x").exists()


def test_trace_refuses_an_unwritable_directory(wxbench, target, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = run(wxbench, "trace", "--out", blocker / "t", "--", target)
    assert p.returncode == 2
    assert "cannot write" in p.stderr


def test_trace_refuses_an_unknown_command(wxbench, tmp_path):
    p = run(wxbench, "trace", "--out", tmp_path / "t", "--", "no-such-command-wxbench")
    assert p.returncode == 2
    assert "not found" in p.stderr


def test_trace_says_so_when_the_interposer_cannot_load(wxbench, target, tmp_path):
    """Preload stripped (here: the loader rejects it) -> no empty trace, exit 2, why."""
    bogus = tmp_path / "libbogus.so"
    bogus.write_text("not a library")
    p = run(wxbench, "trace", "--out", tmp_path / "t", "--", target, env={"WXBENCH_INTERPOSER": str(bogus)})
    assert p.returncode == 2, p.stderr
    assert "never started" in p.stderr and "static" in p.stderr
    assert not (tmp_path / "t" / "trace.csv").exists()


def test_trace_says_so_when_the_program_drops_the_preload(wxbench, target, tmp_path):
    env_bin = shutil.which("env")
    if not env_bin:
        pytest.skip("no env program")
    p = run(wxbench, "trace", "--out", tmp_path / "t", "--", env_bin, "-u", "LD_PRELOAD", target)
    assert p.returncode == 2, p.stderr
    assert "interposer was not loaded" in p.stderr
    assert not (tmp_path / "t" / "trace.csv").exists()


def test_trace_refuses_a_static_binary(wxbench, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    src = tmp_path / "s.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / "static"
    if not cc or subprocess.run([cc, "-static", "-o", str(exe), str(src)], capture_output=True).returncode != 0:
        pytest.skip("no static C library to build a static program with")
    p = run(wxbench, "trace", "--out", tmp_path / "t", "--", exe)
    assert p.returncode == 2
    assert "statically linked" in p.stderr
    assert not (tmp_path / "t" / "trace.csv").exists()


# --- replay ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def replayed(wxbench, traced, tmp_path_factory):
    _, out = traced
    d = tmp_path_factory.mktemp("replay") / "t"
    shutil.copytree(out, d)
    p = run(wxbench, "replay", d, "--repetitions", "2")
    return p, d


def test_replay_rows_for_every_strategy(replayed, platform):
    p, d = replayed
    assert p.returncode == 0, p.stdout + p.stderr
    with open(d / "replay.csv", newline="") as f:
        assert f.readline().rstrip("\r\n") == REPLAY_HEADER + "," + INTERVAL_COLUMNS
    rows = {r["strategy"]: r for r in rows_of(d / "replay.csv")}
    assert set(rows) == set(USER_STRATEGIES)
    traced_ns = {r["traced_ns"] for r in rows.values()}
    assert len(traced_ns) == 1 and int(traced_ns.pop()) > 0
    for s, r in rows.items():
        if platform.runs(s):
            assert r["status"] == "ok", r
            assert r["switches"] == "7", r  # the seven mprotect calls, re-enacted
            assert float(r["predicted_ns"]) > 0 and float(r["ratio"]) > 0
            assert float(r["predicted_ns_low"]) <= float(r["predicted_ns"]) <= float(r["predicted_ns_high"])
            assert r["repetitions"] == "2"
        else:
            assert r["status"] == "unsupported" and r["reason"], r
    assert "mprotect" in p.stdout and "ratio" in p.stdout  # the printed table


def test_replay_verifies_what_it_writes(wxbench_test, traced, tmp_path, platform):
    """Test build, skip_write: the replay's writes never land, so every
    strategy that runs fails verification instead of giving a number."""
    _, out = traced
    d = tmp_path / "t"
    shutil.copytree(out, d)
    p = run(wxbench_test, "replay", d, "--strategy", "mprotect,dualmap,rwx",
            env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert p.returncode == 1, p.stdout + p.stderr
    for r in rows_of(d / "replay.csv"):
        if platform.runs(r["strategy"]):
            assert r["status"] == "failed" and "verification failed" in r["reason"], r
            assert r["predicted_ns"] == "", r


def test_replay_of_a_missing_trace_names_the_file(wxbench, tmp_path):
    p = run(wxbench, "replay", tmp_path / "nothing")
    assert p.returncode == 2
    assert "trace.csv" in p.stderr and "missing" in p.stderr
    p = run(wxbench, "replay")
    assert p.returncode == 2


def test_replay_of_a_corrupt_trace_names_the_file_and_line(wxbench, traced, tmp_path):
    _, out = traced
    d = tmp_path / "t"
    shutil.copytree(out, d)
    lines = (d / "trace.csv").read_text().splitlines()
    lines[2] = "1,1,oops,5,mprotect,1,16384,0,4096,rw-,r-x,,0"
    (d / "trace.csv").write_text("\n".join(lines) + "\n")
    p = run(wxbench, "replay", d)
    assert p.returncode == 2
    assert f"{d / 'trace.csv'}:3:" in p.stderr, p.stderr
    assert not (d / "replay.csv").exists()

    lines = (d / "trace.csv").read_text().splitlines()
    lines[2] = "1,1,5,5,mprotect,1,16384,0,4096,rw-,sideways,,0"
    (d / "trace.csv").write_text("\n".join(lines) + "\n")
    p = run(wxbench, "replay", d)
    assert p.returncode == 2 and f"{d / 'trace.csv'}:3:" in p.stderr, p.stderr

    shutil.copytree(out, tmp_path / "u")
    (tmp_path / "u" / "regions.csv").unlink()
    p = run(wxbench, "replay", tmp_path / "u")
    assert p.returncode == 2 and "regions.csv" in p.stderr, p.stderr

    (tmp_path / "u" / "regions.csv").write_text("process,region,size,resident_bytes,resident\n1,1,x,0,\n")
    p = run(wxbench, "replay", tmp_path / "u")
    assert p.returncode == 2 and f"{tmp_path / 'u' / 'regions.csv'}:2:" in p.stderr, p.stderr


def test_replay_bad_options(wxbench, traced):
    _, out = traced
    for args in (["--strategy", "nonesuch"], ["--repetitions", "0"], ["--bogus"]):
        p = run(wxbench, "replay", out, *args)
        assert p.returncode == 2, (args, p.stderr)
