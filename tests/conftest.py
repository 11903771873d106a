"""Shared pytest fixtures: paths to the built binaries, a helper that runs
wxbench and reads back its results.csv and meta.json, and what this platform
is: which strategies must run here, which must not (and what their reason
must say), which core classes single-thread cases are measured on.

The hosted CI runs `make test` on Apple silicon, an Intel Mac, Linux x86_64
and Linux arm64, so expectations come from the platform rather than from the
machine the tests were written on. Each platform keeps fixed anchors (below,
from docs/platforms.md and shared/reference/platforms.md) so that a strategy
that stops running where it must run, or runs where it cannot, still fails;
`wxbench --list` decides only where the facts leave it open (dualmap on
macOS, pkey), and then its reason is checked against the rows. On Apple
silicon `wxbench --probe` decides what the MAP_JIT strategies must do: whether
they run (a hosted runner is a virtual machine, and a hardened or allow-listed
signing refuses them), whether the per-thread toggle is enforced there, and
whether the code-signing monitor forbids provoking execute faults.

The scenarios and strategies the tests iterate come from the tables
(scenarios/scenarios.def, bench/strategies/strategies.def) as the built
binaries report them: names from `--list`, strategy flags from meta.json.
Tests of one scenario live in tests/scenarios/test_<scenario>.py; checks
that hold for every scenario of the table in tests/scenarios/test_every_scenario.py."""
import csv
import json
import os
import platform as host_platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WXBENCH_BUILD", ROOT / "build"))

HEADER = ("machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
          "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason")


def _binary(name):
    path = BUILD / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run `make all {path.relative_to(ROOT)}` (make test does)")
    return path


@pytest.fixture(scope="session")
def wxbench():
    """The user build of wxbench."""
    return _binary("wxbench")


@pytest.fixture(scope="session")
def wxbench_test():
    """The test build: test-only strategies and fault injection."""
    return _binary("wxbench-test")


class Run:
    """One finished wxbench run: exit code, output, rows and meta."""

    def __init__(self, proc, out):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out = Path(out)

    @property
    def header(self):
        with open(self.out / "results.csv", newline="") as f:
            return f.readline().rstrip("\r\n")

    @property
    def rows(self):
        with open(self.out / "results.csv", newline="") as f:
            return list(csv.DictReader(f))

    @property
    def meta(self):
        with open(self.out / "meta.json") as f:
            return json.load(f)

    def select(self, **kw):
        return [r for r in self.rows if all(r[k] == str(v) for k, v in kw.items())]


def read_csv(path):
    """(the header line, the rows as dicts) of a CSV file wxbench wrote."""
    with open(path, newline="") as f:
        first = f.readline().rstrip("\r\n")
        f.seek(0)
        return first, list(csv.DictReader(f))


def run_wxbench(binary, out, *args, env=None, timeout=300):
    """Run binary --out out args...; returns a Run."""
    e = dict(os.environ)
    if env:
        e.update(env)
    proc = subprocess.run([str(binary), "--out", str(out), *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=ROOT)
    return Run(proc, out)


@pytest.fixture(scope="session")
def quick_run(wxbench, tmp_path_factory):
    """`wxbench --quick` once per session (every scenario, every strategy),
    shared by the run-level and the scenario tests."""
    out = tmp_path_factory.mktemp("quick") / "run"
    return run_retrying_busy(wxbench, out, "--quick", timeout=600)


@pytest.fixture(scope="session")
def hook_run(wxbench_test, tmp_path_factory):
    """Every scenario through the test build's test_hook under --quick:
    writable only inside write_code, as mapjit_callback is on a Mac, built
    on mprotect, so the write_code paths run wherever mprotect runs."""
    out = tmp_path_factory.mktemp("hook") / "run"
    return run_retrying_busy(wxbench_test, out, "--quick", "--strategy", "test_hook", timeout=600)


# ---------------------------------------------------------------------------
# The tables: scenarios and strategies as the built binaries list them

def parse_list(stdout):
    """{strategy: (runs here?, why not)} from `wxbench --list`, in table order."""
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("strategies:"))
    out = {}
    for i in range(start + 1, len(lines)):
        words = lines[i].split()
        if len(words) < 3 or lines[i][:2] != "  " or lines[i][2] == " ":
            continue
        runs = words[1:3] == ["runs", "here"]
        assert runs or words[1:3] == ["not", "here"], lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        why = nxt.split("why:", 1)[1].strip() if "why:" in nxt else ""
        assert runs or why, f"{words[0]} does not run here and says no why: {lines[i]!r} {nxt!r}"
        out[words[0]] = (runs, why)
    return out


def parse_scenarios(stdout):
    """{scenario: {"variants": [...], "strategy_free": bool}} from `wxbench
    --list`, in table order."""
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("scenarios"))
    out, name = {}, None
    for line in lines[start + 1:]:
        if line.startswith("strategies:"):
            break
        words = line.split()
        if not words:
            continue
        if line[:2] == "  " and line[2] != " ":
            name = words[0]
            out[name] = {"variants": [], "strategy_free": False}
        elif name and words[0] == "variants:":
            free = line.rstrip().endswith("(strategy: none)")
            out[name]["variants"] = [w for w in words[1:] if w not in ("(strategy:", "none)")]
            out[name]["strategy_free"] = free
    return out


def _listing(name):
    """`BUILD/name --list`, or None where that binary is not built (the
    fixtures wxbench and wxbench_test then fail saying so)."""
    path = BUILD / name
    if not path.exists():
        return None
    p = subprocess.run([str(path), "--list"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    return p.stdout if p.returncode == 0 else None


def _strategy_table(name):
    """meta.json's "strategies" of a strategy-free run of BUILD/name (one
    entry per strategy of that build's table, with its flags), or None."""
    path = BUILD / name
    if not path.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="wxbench-table-") as tmp:
        out = Path(tmp) / "run"
        p = subprocess.run([str(path), "--out", str(out), "--quick", "--scenario", "harness"],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
        if p.returncode != 0 or not (out / "meta.json").exists():
            return None
        return json.loads((out / "meta.json").read_text()).get("strategies")


_USER_LIST = _listing("wxbench")
# Every strategy of the user build's table, in table order (its --list).
USER_STRATEGIES = tuple(parse_list(_USER_LIST)) if _USER_LIST else ()
# Every scenario of the table, in table order, with its variants (--list).
SCENARIO_TABLE = parse_scenarios(_USER_LIST) if _USER_LIST else {}
SCENARIOS = tuple(SCENARIO_TABLE)
# {strategy: its meta.json entry (per_thread, writable_alias, always_rwx,
# no_switch, write_code, ...)} for every strategy of the test build, which
# has the user build's and the test-only ones (test_segv, test_hang,
# test_hook); the user build's table where the test build is missing.
STRATEGY_FLAGS = {t["name"]: t for t in (_strategy_table("wxbench-test") or _strategy_table("wxbench") or [])}
# Strategies with a write_code hook here (write_code: writable only inside
# it, no begin_write window): test_hook, and mapjit_callback where it is
# built with its hook (Apple silicon).
WRITE_CODE_STRATEGIES = tuple(n for n, t in STRATEGY_FLAGS.items() if t.get("write_code"))
# Strategies whose begin_write/end_write do nothing (no_switch): the cheap
# reference a real switch is compared with.
NO_SWITCH_STRATEGIES = tuple(n for n, t in STRATEGY_FLAGS.items() if t.get("no_switch"))
# Strategies of the test build only.
TEST_STRATEGIES = tuple(n for n in STRATEGY_FLAGS if n not in USER_STRATEGIES)


def flag(strategy, name):
    """A strategy's flag from the table (meta.json), False where unknown."""
    return bool(STRATEGY_FLAGS.get(strategy, {}).get(name))


# The strategies on MAP_JIT memory under Apple's per-thread toggle.
JIT_TOGGLE_STRATEGIES = ("mapjit", "mapjit_callback")
# Strategies whose switch is process-wide (neither per thread nor absent):
# another thread's call while the writer may write would fault.
PROCESS_WIDE_SWITCH = tuple(n for n, t in STRATEGY_FLAGS.items()
                            if not (t.get("per_thread") or t.get("no_switch") or t.get("always_rwx")))
# What --probe says where the per-thread toggle is not enforced.
TOGGLE_NOT_ENFORCED = "toggle not enforced on this machine (virtual machine?)"


PROBE_SYSTEM = ("signing", "code-signing monitor", "JIT write protection", "JIT write allow-list")


def ok_reason(r):
    """What an `ok` row may say in reason: nothing, or a note - a P/E row
    that its thread left its core class, a MAP_JIT row that the per-thread
    toggle is not enforced on this machine (then it is no Mac result)."""
    if r["reason"] == "":
        return True
    if not r["reason"].startswith("note: "):
        return False
    return r["core_class"] in ("P", "E") or (r["strategy"] in JIT_TOGGLE_STRATEGIES
                                             and TOGGLE_NOT_ENFORCED in r["reason"])


def parse_probe(stdout):
    """(system, strategies) from `wxbench --probe`: system maps the lines
    about the machine (PROBE_SYSTEM) to their text; strategies maps each
    strategy to (its line, the indented lines under it)."""
    system, strategies, current = {}, {}, None
    for line in stdout.splitlines()[1:]:
        if not line.strip():
            continue
        if line.startswith(" "):
            if current:
                strategies[current][1].append(line.strip())
            continue
        key = next((k for k in PROBE_SYSTEM if line.startswith(k + ":")), None)
        if key:
            system[key] = line[len(key) + 1:].strip()
            continue
        current = line.split()[0]
        strategies[current] = (line, [])
    return system, strategies


# ---------------------------------------------------------------------------
# What this platform is and what must (not) run here


class Platform:
    """This machine as wxbench describes it (meta.json of a small run, the
    user build's --list and --probe) plus the fixed facts per platform."""

    def __init__(self, meta, listing, probe=""):
        self.meta = meta
        self.os = meta["os"].split()[0]              # "Linux" or "macOS"
        self.arch = meta["arch"]                     # "x86_64" or "arm64"
        self.classes = list(meta["core_classes"])    # ["any"] or ["P", "E"]
        self.strategies = listing
        self.linux = self.os == "Linux"
        self.macos = self.os == "macOS"
        self.apple_silicon = self.macos and self.arch == "arm64"
        self.probe_system, self.probe = parse_probe(probe)
        # the code-signing monitor is on: execute faults are not provoked (they would be a SIGKILL)
        self.csm = self.probe_system.get("code-signing monitor", "").startswith("on")
        # the per-thread JIT toggle is not enforced (writes succeed while write-protected)
        self.toggle_not_enforced = TOGGLE_NOT_ENFORCED in self.probe_system.get("JIT write protection", "")

    def probe_runs(self, strategy):
        """Whether --probe found the strategy mapping memory here."""
        line = self.probe.get(strategy, ("", []))[0]
        return "maps=yes" in line

    def probe_expect(self, strategy, words):
        """The words a strategy's --probe line must hold here: the fixed ones
        (words), less what this machine cannot show. With the code-signing
        monitor on, exec-while-writable is not tried; where the JIT toggle is
        not enforced, nothing faults for the MAP_JIT strategies."""
        words = list(words)
        if self.csm:
            words = [("exec-faults-when-writable=not tried (code-signing monitor on)"
                      if w.startswith("exec-faults-when-writable=yes") else w) for w in words]
        if self.toggle_not_enforced and strategy in JIT_TOGGLE_STRATEGIES:
            words = [w for w in words if "faults" not in w]
        return words

    def audit_expect(self, strategy, known):
        """The audit answers a strategy must give here: the known ones, less
        what this machine cannot decide (n/a where the code-signing monitor
        forbids provoking an execute fault; nothing fixed for a MAP_JIT
        strategy whose toggle is not enforced)."""
        known = dict(known)
        if self.toggle_not_enforced and strategy in JIT_TOGGLE_STRATEGIES:
            return {}
        if self.csm:
            # the writer's call always; another thread's where the switch is process-wide
            props = ["writer_can_execute_while_writable"]
            if strategy in PROCESS_WIDE_SWITCH:
                props.append("other_thread_can_execute_while_writable")
            for prop in props:
                if prop in known and known[prop] != "n/a":
                    known[prop] = "n/a"
        return known

    def __repr__(self):
        return f"<{self.os} {self.arch}, core classes {self.classes}>"

    def runs(self, strategy):
        """Whether a strategy runs here; test_hook is mprotect underneath."""
        if strategy == "test_hook":
            strategy = "mprotect"
        return self.strategies[strategy][0]

    def why(self, strategy):
        if strategy == "test_hook":
            strategy = "mprotect"
        return self.strategies[strategy][1]

    def running(self, names=USER_STRATEGIES):
        return [s for s in names if self.runs(s)]

    def not_running(self, names=USER_STRATEGIES):
        return [s for s in names if not self.runs(s)]

    @property
    def must_run(self):
        """Strategies that run on every machine of this platform."""
        if self.linux:
            return {"rwx", "mprotect", "dualmap"}
        if self.apple_silicon:
            # the MAP_JIT strategies where --probe finds them mapping memory
            return {"mprotect"} | {s for s in JIT_TOGGLE_STRATEGIES if self.probe_runs(s)}
        if self.macos:
            return {"rwx", "mprotect"}
        return {"mprotect"}

    @property
    def must_not_run(self):
        """{strategy: words its reason must contain} for strategies that
        cannot run on this platform."""
        if self.linux:
            pkey = {} if self.arch == "x86_64" else {"pkey": ["x86_64 PKU only"]}
            return {"mapjit": ["macOS"], "mapjit_callback": ["macOS"], **pkey}
        if self.apple_silicon:
            return {"rwx": ["without MAP_JIT", "errno 13"], "pkey": ["Linux"]}
        if self.macos:
            return {"mapjit": ["pthread_jit_write_protect_supported_np() returned 0"],
                    "mapjit_callback": ["pthread_jit_write_protect_supported_np() returned 0"], "pkey": ["Linux"]}
        return {}

    @property
    def baseline_memory(self):
        """Whether the baseline loops have their memory: plain RWX, or on
        Apple silicon a dual mapping (bench/core/strategy.c)."""
        return self.runs("dualmap") if self.apple_silicon else self.runs("rwx")

    @property
    def tlb_counted(self):
        """Whether TLB shootdowns are counted here: where /proc/interrupts
        has a TLB row (x86 Linux; arm64 broadcasts invalidation in
        hardware, macOS does not count them)."""
        if not self.linux:
            return False
        try:
            with open("/proc/interrupts") as f:
                return any(line.split()[:1] == ["TLB:"] for line in f)
        except OSError:
            return False


@pytest.fixture(scope="session")
def platform(wxbench, tmp_path_factory):
    """This platform: meta.json of a strategy-free run and `wxbench --list`."""
    out = tmp_path_factory.mktemp("platform") / "run"
    run = run_wxbench(wxbench, out, "--quick", "--scenario", "harness", timeout=120)
    assert run.rc == 0, run.stderr
    listing = subprocess.run([str(wxbench), "--list"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert listing.returncode == 0, listing.stderr
    probe = subprocess.run([str(wxbench), "--probe"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    return Platform(run.meta, parse_list(listing.stdout), probe.stdout)


def host_os_arch():
    """The OS and architecture Python sees, spelt as meta.json does."""
    os_name = {"linux": "Linux", "darwin": "macOS"}.get(sys.platform, sys.platform)
    machine = host_platform.machine()
    return os_name, {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "AMD64": "x86_64"}.get(machine, machine)


# ---------------------------------------------------------------------------
# Row expectations shared by the run-level and scenario tests

STATUSES = {"ok", "unsupported", "failed", "crashed", "timeout", "interfered"}
QUICK_REPETITIONS = 3
# The reason of a case a scenario registers for a strategy it does not ask about.
NOT_APPLICABLE = "question does not apply"
MEASURED = ("measured",)


def unsupported(*words):
    """An expected case that is one unsupported row whose reason says words."""
    return ("unsupported",) + words


def ncpu(run):
    return int(run.meta["cores"]["allowed"])


def top_victims(run):
    """The largest victim count swept: ncpu-1, at most WX_VICTIMS_MAX (64)."""
    return min(ncpu(run) - 1, 64)


def median_ns(run, **kw):
    """Median ns_per_op of the ok rows matching kw (asserting there are some)."""
    xs = [float(r["ns_per_op"]) for r in run.select(**kw) if r["status"] == "ok"]
    assert xs, kw
    return statistics.median(xs)


def assert_measured(rows, plat, reps, what, accept=None):
    """Rows of one measured case: status ok, repetitions 1..reps once per
    core class it is measured on (every class of the platform for a
    single-thread case, `any` for a multi-thread one). accept(row), where
    given, replaces "status ok" (e.g. failed rows of an injected fault)."""
    assert rows, f"{what}: no rows"
    threads = {r["threads"] for r in rows}
    assert len(threads) == 1, (what, threads)
    classes = plat.classes if threads == {"1"} else ["any"]
    assert sorted(Counter(r["core_class"] for r in rows)) == sorted(classes), (what, classes, rows)
    for cls in classes:
        mine = [r for r in rows if r["core_class"] == cls]
        assert sorted(int(r["repetition"]) for r in mine) == list(range(1, reps + 1)), (what, cls, mine)
        assert all(accept(r) if accept else r["status"] == "ok" for r in mine), (what, cls, mine)


def assert_unsupported_once(rows, what, *words):
    """The one row of a case that is unsupported before anything is
    measured (core class `any`), whose reason says each of words."""
    assert len(rows) == 1, (what, rows)
    r = rows[0]
    assert r["status"] == "unsupported" and r["core_class"] == "any" and r["ns_per_op"] == "", (what, r)
    for w in words:
        assert w in r["reason"], (what, w, r["reason"])


def assert_baseline_rows(rows, plat, reps, what):
    """A baseline case: measured where the baseline has its memory, else
    unsupported rows saying so (Apple silicon without the dual mapping)."""
    if plat.baseline_memory:
        assert_measured(rows, plat, reps, what)
    else:
        assert rows and all(r["status"] == "unsupported" and "baseline" in r["reason"] for r in rows), (what, rows)


# ---------------------------------------------------------------------------
# Rows whose victims lost their CPU to other programs

# The reason wx_victims_check (bench/core/threads.c) gives a row whose victim
# spent less than WX_VICTIM_MIN_RUNNING (a quarter) of the timed loop on its
# CPU: the machine was busy, the row would describe fewer victims than it
# claims, so it is measured again in a fresh process and, when every try was
# spoiled, `interfered`, not a number. Matched whole, nothing else.
VICTIM_LOST = re.compile(r"victim (thread|process) \d+ \(CPU -?\d+\) was on its CPU for only \d+% of the timed "
                         r"loop \(\d+\.\d{3} of \d+\.\d{3} ms; at least 25% is needed\): its CPU was busy with "
                         r"other work")
# Where that check runs: the scenario and the variants with victims.
VICTIM_CASES = {"mprotect_tlb": ("flip", "noop", "flip_victim_processes"), "icache_flush": ("membarrier",),
                "jit_workload": ("cross_thread", "cross_thread_nosync")}
# The allowance is bounded: in each of those variants, at least this share of
# the rows with victims must be ok. A busy machine may cost a few rows, not a
# variant; a victim check that fails everything (a unit mixed up, say) is a bug.
MIN_OK_VICTIM_SHARE = 0.5


def victim_allowance(run):
    """[] when every victim variant of the run has at least MIN_OK_VICTIM_SHARE of
    its rows with victims ok; else a line per variant that lost more."""
    out = []
    groups = {}
    for r in run.rows:
        if r["variant"] in VICTIM_CASES.get(r["scenario"], ()) and r["victims"] not in ("", "0") \
                and r["status"] in ("ok", "interfered"):
            groups.setdefault((r["scenario"], r.get("strategy", ""), r["variant"]), []).append(r)
    for key, rows in sorted(groups.items()):
        ok = sum(r["status"] == "ok" for r in rows)
        if ok < MIN_OK_VICTIM_SHARE * len(rows):
            out.append(f"{'/'.join(key)}: {ok} of {len(rows)} rows with victims ok")
    return out


def run_retrying_busy(binary, out, *args, **kw):
    """run_wxbench, and once more (into out + '-retry') when the machine was so busy
    that a victim variant lost more than its allowance; the second run stands."""
    run = run_wxbench(binary, out, *args, **kw)
    lost = victim_allowance(run)
    if lost:
        print(f"note: {out}: victims lost their CPUs beyond the allowance ({'; '.join(lost)}); running once more",
              file=sys.stderr)
        run = run_wxbench(binary, Path(str(out) + "-retry"), *args, **kw)
    return run


# The reason wx_measuring_check (bench/core/threads.c) gives a single-thread
# row with victims whose measuring thread waited for a CPU over three
# quarters of its timed loop (harness.c): starved, here by other programs on
# a busy machine (several wxbench runs at once pin their measuring threads to
# the same CPU).
MEASURING_STARVED = re.compile(r"the measuring thread was starved: it waited for a CPU for \d+% of the timed loop "
                               r"\(\d+\.\d{3} of \d+\.\d{3} ms, (runnable but not running|not on a CPU); at most "
                               r"75% is allowed\), so ns_per_op would measure the waiting")


# The reason of an `interfered` row (child.c): every try was spoiled; the last
# try's reason follows.
INTERFERED = re.compile(r"spoiled by other work in each of 3 tries \(fresh processes\); the last: (?P<last>.*)")


def victim_lost(r):
    """A row `interfered` only because a victim, or the measuring thread
    itself, lost its CPU to other programs during the timed loop in each try
    (a busy machine, not wrong code)."""
    if r["status"] != "interfered" or r["ns_per_op"] != "" or int(r["victims"]) == 0:
        return False
    m = INTERFERED.fullmatch(r["reason"])
    if m is None:
        return False
    if MEASURING_STARVED.fullmatch(m["last"]) is not None:
        return r.get("threads", "1") == "1"
    return r["variant"] in VICTIM_CASES.get(r["scenario"], ()) and VICTIM_LOST.fullmatch(m["last"]) is not None


def assert_variants_and_single_batch(run, scenario, variants):
    """The run's exit code is right, scenario has rows, each of a variant
    of variants and with batch 1 (a scenario that does not sweep batches)."""
    assert_exit_code(run)  # 0, or 1 only for rows whose victims lost their CPU to other programs
    rs = run.select(scenario=scenario)
    assert rs
    for r in rs:
        assert r["variant"] in variants, r
        assert int(r["batch"]) == 1, r


def assert_exit_code(run):
    """A run whose rows should all be ok or unsupported, or `interfered`
    because a victim lost its CPU to other programs in every try
    (docs/scenarios/README.md, "Victims"): exit 0."""
    bad = [r for r in run.rows if r["status"] not in ("ok", "unsupported")]
    lost = [r for r in bad if victim_lost(r)]
    assert lost == bad, [r for r in bad if not victim_lost(r)]
    assert not victim_allowance(run), victim_allowance(run)
    assert run.rc == 0, (run.rc, run.stderr, bad)


def ok_or_lost(r):
    """ok, or interfered because a victim lost its CPU to other programs."""
    return r["status"] == "ok" or victim_lost(r)


def assert_rows_as_expected(run, plat, scenario, strategy, want, accept=ok_or_lost):
    """The rows of scenario/strategy are exactly the expected cases want
    ({(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}):
    each measured case with its repetitions per core class (ok, or failed
    because its victims lost their CPUs), each unsupported case one row
    saying why."""
    got = {}
    for r in run.select(scenario=scenario, strategy=strategy):
        got.setdefault((r["variant"], int(r["victims"]), int(r["size_bytes"]), int(r["threads"])), []).append(r)
    assert set(got) == set(want), (scenario, strategy, sorted(set(got) ^ set(want)))
    for key, how in want.items():
        what = f"{scenario}/{strategy}/{'/'.join(map(str, key))}"
        if how == MEASURED:
            assert_measured(got[key], plat, QUICK_REPETITIONS, what, accept=accept)
        else:
            assert_unsupported_once(got[key], what, *how[1:])
            if how[1] == NOT_APPLICABLE:
                assert got[key][0]["reason"].startswith(NOT_APPLICABLE), got[key]
    return want


# ---------------------------------------------------------------------------
# toggle_latency rows: the scenario the run-level tests (crash and hang
# isolation, Google Benchmark flags) measure with

TOGGLE_VARIANTS = ("flip", "patch", "redundant", "baseline")


def assert_toggle_rows(run, plat, strategy, reps=QUICK_REPETITIONS):
    """toggle_latency rows of one strategy, as this platform must give them."""
    for v in TOGGLE_VARIANTS:
        rows = run.select(scenario="toggle_latency", strategy=strategy, variant=v)
        what = f"toggle_latency/{strategy}/{v}"
        if not plat.runs(strategy):
            assert_unsupported_once(rows, what, plat.why(strategy))
        elif v == "redundant" and strategy in WRITE_CODE_STRATEGIES:
            assert_unsupported_once(rows, what, "write_code")
        elif v == "baseline":
            assert_baseline_rows(rows, plat, reps, what)
        else:
            assert_measured(rows, plat, reps, what)


# ---------------------------------------------------------------------------
# Case tables of the scenarios that say exactly which cases they register
# (mprotect_tlb, dualmap_overhead, icache_flush, thread_contention): each
# tests/scenarios/test_<scenario>.py has expected_cases(plat, run, strategy)
# -> {(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}.

def every_variant_unsupported(plat, scenario, strategy):
    """The cases of a strategy a scenario does not measure: one unsupported
    row per variant of the table, saying why it cannot run here, or that
    the question does not apply to it."""
    why = plat.why(strategy) if not plat.runs(strategy) else NOT_APPLICABLE
    return {(v, 0, 0, 1): unsupported(why) for v in SCENARIO_TABLE[scenario]["variants"]}


def assert_every_strategy_as_expected(run, plat, scenario, expected_cases):
    """Every user strategy has exactly its expected cases; those that cannot
    run here say so in the platform's words. Returns the strategies with a
    measured case."""
    assert {r["strategy"] for r in run.select(scenario=scenario)} == set(USER_STRATEGIES)
    measured = set()
    for s in USER_STRATEGIES:
        want = assert_rows_as_expected(run, plat, scenario, s, expected_cases(plat, run, s))
        if any(how == MEASURED for how in want.values()):
            measured.add(s)
        for w in plat.must_not_run.get(s, []):
            assert all(w in r["reason"] for r in run.select(scenario=scenario, strategy=s)), (s, w)
    return measured


def verification_failed(r):
    return r["status"] == "failed" and "verification failed" in r["reason"]


def injected_run(wxbench_test, out, plat, scenario, fault):
    """A quick run of scenario under WXBENCH_TEST_INJECT=fault for every
    strategy that runs here, test_hook (write_code) included. Returns the
    run and those strategies."""
    strategies = plat.running(USER_STRATEGIES + ("test_hook",))
    assert plat.must_run <= set(strategies) and "test_hook" in strategies
    run = run_wxbench(wxbench_test, out, "--quick", "--scenario", scenario, "--strategy", ",".join(strategies),
                      env={"WXBENCH_TEST_INJECT": fault})
    return run, strategies


def skipped_write_run(wxbench_test, out, plat, scenario, expected_cases):
    """scenario under WXBENCH_TEST_INJECT=skip_write (injected_run): each
    case that is measured in a normal run fails verification, the others
    stay unsupported. Returns the run."""
    run, strategies = injected_run(wxbench_test, out, plat, scenario, "skip_write")
    for s in strategies:
        assert_rows_as_expected(run, plat, scenario, s, expected_cases(plat, run, s), accept=verification_failed)
    assert run.rc == (1 if any(r["status"] != "unsupported" for r in run.rows) else 0), (run.rc, run.stderr)
    return run
