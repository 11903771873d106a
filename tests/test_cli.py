"""Command line: help, list, probe, and every bad input refused with exit 2
before anything is measured."""
import re
import subprocess

import pytest

from conftest import ROOT, USER_STRATEGIES, flag


def run(binary, *args, timeout=60):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def accepted_options():
    """Every option the parser accepts, read from its source (bench/app/options.c)."""
    src = (ROOT / "bench" / "app" / "options.c").read_text()
    opts = set(re.findall(r'strcmp\(name, "(--[a-z-]+)"\)', src))
    assert {"--quick", "--scenario", "--out", "--seed", "--target-ci"} <= opts, opts
    return opts


def test_help_lists_every_option(wxbench):
    p = run(wxbench, "--help")
    assert p.returncode == 0
    words = set(re.findall(r"(?<![\w-])(--[a-z-]+)", p.stdout))
    aliases = {"--scenarios", "--strategies"}  # accepted spellings of --scenario and --strategy
    missing = accepted_options() - aliases - words
    assert not missing, f"--help does not name {sorted(missing)}"
    assert "-- FLAGS" in p.stdout


def test_help_says_the_defaults_the_run_uses(wxbench, tmp_path):
    """The defaults --help states are the settings a run without flags records."""
    p = run(wxbench, "--help")
    text = " ".join(p.stdout.split())
    reps = re.search(r"--repetitions N .*?\(default (\d+); quick (\d+)\)", text)
    mint = re.search(r"--min-time S seconds per repetition \(default ([0-9.]+); quick ([0-9.]+)\)", text)
    tout = re.search(r"--timeout S .*?\(default (\d+)\)", text)
    assert reps and mint and tout, text
    for quick in (False, True):
        out = tmp_path / f"run{int(quick)}"
        r = subprocess.run([str(wxbench), "--scenario", "harness", "--strategy", "none", "--repetitions", "1", "--out",
                            str(out)] + (["--quick"] if quick else []), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        import json
        settings = json.loads((out / "meta.json").read_text())["settings"]
        assert settings["min_time_s"] == float(mint.group(2 if quick else 1))
        assert settings["timeout_s"] == int(tout.group(1))
    # the repetitions default, without --repetitions (only the count of processes is looked at)
    r = subprocess.run([str(wxbench), "--scenario", "harness", "--strategy", "none", "--quick", "--out",
                        str(tmp_path / "q")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json
    assert json.loads((tmp_path / "q" / "meta.json").read_text())["settings"]["repetitions"] == int(reps.group(2))
    # and the README says the same
    readme = " ".join((ROOT / "README.md").read_text().split())
    said = re.search(r"Defaults: (\d+) repetitions \(processes\) of at least ([0-9.]+) s each \(`--quick`: (\d+) of "
                     r"([0-9.]+) s\)", readme)
    assert said, "README: the 'Defaults: N repetitions (processes) of at least S s each (`--quick`: N of S s)' line"
    assert (int(said.group(1)), float(said.group(2)), int(said.group(3)), float(said.group(4))) == \
        (int(reps.group(1)), float(mint.group(1)), int(reps.group(2)), float(mint.group(2)))


def test_list_names_every_scenario_and_strategy_with_status(wxbench, platform):
    p = run(wxbench, "--list")
    assert p.returncode == 0
    for name in ("toggle_latency", "harness", "rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        assert name in p.stdout
    lines = p.stdout.splitlines()
    # every strategy line says whether it runs here, and the ones that don't say why
    for name in USER_STRATEGIES:
        line = next(l for l in lines if l.split() and l.split()[0] == name)
        assert "runs here" in line or "not here" in line
        if "not here" in line:
            why = lines[lines.index(line) + 1]
            assert "why:" in why and len(why.split("why:", 1)[1].strip()) > 5
        # what must (not) run on this platform is listed so
        if name in platform.must_run:
            assert "runs here" in line, (platform, line)
        if name in platform.must_not_run:
            assert "not here" in line, (platform, line)
    assert "test_segv" not in p.stdout, "test-only strategies must not reach users"


# What the probe must say of a strategy that runs here (docs/platforms.md,
# "wxbench --probe"): mprotect switches the whole process both ways, rwx
# never faults, dualmap has its alias, mapjit's toggle is per thread, and
# mapjit_callback's checks inside the writer callback are not tried. A
# strategy of the table not named here gets PROBE_ANY and the checks its
# flags in the table (meta.json) allow.
PROBE_ANY = ("write-when-writable=yes", "runs-when-executable=yes")
PROBE_EXPECT = {
    "rwx": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=no",
            "exec-faults-when-writable=no", "writable-alias=no"),
    "mprotect": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
                 "exec-faults-when-writable=yes (SIG", "other-thread-write-faults-while-writing=no",
                 "writable-alias=no"),
    "dualmap": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
                "writable-alias=yes"),
    "mapjit": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
               "exec-faults-when-writable=yes (SIG", "other-thread-write-faults-while-writing=yes (SIG",
               "writable-alias=no"),
    "mapjit_callback": ("write-when-writable=yes", "runs-when-executable=yes",
                        "write-faults-when-executable=yes (SIG", "exec-faults-when-writable=not tried",
                        "other-thread-write-faults-while-writing=not tried", "writable-alias=no"),
    "pkey": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
             "other-thread-write-faults-while-writing=yes (SIG"),
}


def probe_by_flags(name):
    """What the probe must say of a strategy from its flags in the table."""
    want = ("writable-alias=yes",) if flag(name, "writable_alias") else ("writable-alias=no",)
    if flag(name, "always_rwx"):
        want += ("write-faults-when-executable=no", "exec-faults-when-writable=no")
    return want


def test_probe_reports_each_strategy(wxbench, platform):
    p = run(wxbench, "--probe")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for name in USER_STRATEGIES:
        line = next((l for l in lines if l.split() and l.split()[0] == name and not l.startswith(" ")), None)
        assert line, (name, p.stdout)
        if platform.runs(name):
            assert "maps=yes" in line and "(WRONG VALUE)" not in line, line
            for want in platform.probe_expect(name, PROBE_EXPECT.get(name, PROBE_ANY + probe_by_flags(name))):
                assert want in line, (name, want, line)
        else:
            assert line.split(None, 1)[1] == f"unsupported: {platform.why(name)}", (line, platform.why(name))


@pytest.mark.parametrize("args, words", [
    (["--scenario", "nonsense"], ["unknown scenario", "toggle_latency"]),
    (["--strategy", "nonsense"], ["unknown strategy", "mprotect", "dualmap"]),
    (["--repetitions", "0"], ["--repetitions"]),
    (["--repetitions", "abc"], ["--repetitions"]),
    (["--repetitions", "-3"], ["--repetitions"]),
    (["--repetitions", "2x"], ["--repetitions"]),
    (["--repetitions"], ["needs a value"]),
    (["--min-time", "0"], ["--min-time"]),
    (["--timeout", "nope"], ["--timeout"]),
    (["--bogus"], ["unknown argument"]),
    (["--", "--benchmark_nonsense=1"], ["Google Benchmark"]),
])
def test_bad_input_exits_2_with_a_message(wxbench, tmp_path, args, words):
    out = tmp_path / "run"
    p = run(wxbench, "--out", str(out), *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    for w in words:
        assert w in p.stderr
    assert not (out / "results.csv").exists(), "nothing may be measured after a usage error"


def test_unwritable_out_is_refused_before_measuring(wxbench, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = run(wxbench, "--quick", "--out", str(blocker / "sub"))
    assert p.returncode == 2
    assert "cannot" in p.stderr
    assert "[1/" not in p.stderr, "no measurement may start"


def test_existing_results_are_never_overwritten(wxbench, tmp_path):
    (tmp_path / "results.csv").write_text("precious\n")
    p = run(wxbench, "--quick", "--scenario", "harness", "--out", str(tmp_path))
    assert p.returncode == 2
    assert "refusing to overwrite" in p.stderr
    assert (tmp_path / "results.csv").read_text() == "precious\n"
