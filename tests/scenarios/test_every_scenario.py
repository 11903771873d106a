"""Checks that hold for every scenario of the table (scenarios/scenarios.def),
parametrized over the scenarios the user build's `--list` names, so that a
scenario added later gets them without a line here: its entry in meta.json,
rows for every selected strategy, well-formed rows with valid statuses,
variants from the table, repetitions once per core class, unsupported rows
that say why, the TLB column, the write_code strategy of the test build, and
a figure drawn by scripts/plot.py (a dedicated one or the generic one).

What only one scenario does is checked in tests/scenarios/test_<scenario>.py."""
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import (QUICK_REPETITIONS, ROOT, SCENARIOS, STATUSES, USER_STRATEGIES, assert_exit_code,
                      assert_measured, ok_or_lost, ok_reason, victim_lost)

# Where the table cannot be read (the user build is missing), one case that
# fails through the wxbench fixture with the message saying what to build.
PARAMS = SCENARIOS or ("(build/wxbench not built)",)


def entry(run, scenario):
    """The scenario's entry in a run's meta.json table."""
    found = [t for t in run.meta["scenarios"] if t["name"] == scenario]
    assert len(found) == 1, (scenario, [t["name"] for t in run.meta["scenarios"]])
    return found[0]


def case_key(r):
    return (r["strategy"], r["variant"], r["threads"], r["victims"], r["size_bytes"], r["batch"])


@pytest.mark.parametrize("scenario", PARAMS)
def test_table_entry(quick_run, scenario):
    """meta.json describes the scenario: its question, what one op is, its
    variants; selected in a run without --scenario."""
    t = entry(quick_run, scenario)
    assert t["question"].strip() and t["op"].strip(), t
    assert t["variants"] and len(set(t["variants"])) == len(t["variants"]), t
    assert all(v and v.strip() == v and "," not in v for v in t["variants"]), t
    assert t["selected"] is True, t


@pytest.mark.parametrize("scenario", PARAMS)
def test_rows_exist_for_every_selected_strategy(quick_run, scenario):
    """A strategy-free scenario runs once, as strategy `none`; any other has
    rows for every strategy of the table (all are selected here)."""
    t = entry(quick_run, scenario)
    got = {r["strategy"] for r in quick_run.select(scenario=scenario)}
    if t["strategy_free"]:
        assert got == {"none"}, got
    else:
        selected = [s["name"] for s in quick_run.meta["strategies"] if s["selected"]]
        assert selected == list(USER_STRATEGIES)
        assert got == set(selected), (scenario, got ^ set(selected))


@pytest.mark.parametrize("scenario", PARAMS)
def test_rows_are_well_formed(quick_run, scenario):
    """Every field; statuses valid; nothing fails under --quick but rows
    whose victims lost their CPU to other programs; ok rows carry a number
    and no reason (but a P/E note), the others no number and a reason."""
    assert_exit_code(quick_run)
    rs = quick_run.select(scenario=scenario)
    assert rs, scenario
    for r in rs:
        assert None not in r and len(r) == 20, r
        assert r["status"] in STATUSES, r
        assert int(r["threads"]) >= 1 and int(r["victims"]) >= 0 and int(r["batch"]) >= 1, r
        assert int(r["size_bytes"]) >= 0 and int(r["repetition"]) >= 1, r
        if r["status"] == "ok":
            ns = float(r["ns_per_op"])
            assert ns > 0 and math.isfinite(ns), r
            assert int(r["iterations"]) > 0, r
            # empty, but a P/E row may say its thread left its core class (or a MAP_JIT row, an unenforced toggle)
            assert ok_reason(r), r
        else:
            assert r["status"] == "unsupported" or victim_lost(r), r
            assert r["ns_per_op"] == "" and len(r["reason"].strip()) > 10, r


@pytest.mark.parametrize("scenario", PARAMS)
def test_variants_are_those_the_table_declares(quick_run, scenario):
    """Every row's variant is one of the table's; a strategy that does not
    run here has one row for each of them."""
    t = entry(quick_run, scenario)
    rs = quick_run.select(scenario=scenario)
    assert {r["variant"] for r in rs} <= set(t["variants"]), (scenario, t["variants"])


@pytest.mark.parametrize("scenario", PARAMS)
def test_unsupported_rows_say_why(quick_run, platform, scenario):
    """Every unsupported row gives a reason and no number; a strategy that
    cannot run here gives one unsupported row per variant of the table
    (core class `any`), with the reason --list gives and the platform's
    words."""
    t = entry(quick_run, scenario)
    for r in quick_run.select(scenario=scenario, status="unsupported"):
        assert r["ns_per_op"] == "" and r["iterations"] in ("", "0") and r["reason"].strip(), r
    if t["strategy_free"]:
        return
    for s in platform.not_running():
        rows = quick_run.select(scenario=scenario, strategy=s)
        assert sorted(r["variant"] for r in rows) == sorted(t["variants"]), (s, rows)
        for r in rows:
            assert r["status"] == "unsupported" and r["core_class"] == "any", r
            assert platform.why(s) in r["reason"], (s, r["reason"])
            for w in platform.must_not_run.get(s, []):
                assert w in r["reason"], (s, w, r["reason"])


@pytest.mark.parametrize("scenario", PARAMS)
def test_measured_cases_have_every_repetition(quick_run, platform, scenario):
    """A case (strategy, variant and parameters) is either unsupported
    outright or measured: --quick's repetitions once per core class it runs
    on (every class of the platform for a single-thread case, `any` for a
    multi-thread one), each ok or failed because its victims lost their
    CPUs."""
    cases = defaultdict(list)
    for r in quick_run.select(scenario=scenario):
        cases[case_key(r)].append(r)
    assert cases, scenario
    for key, rows in cases.items():
        what = f"{scenario}/{'/'.join(key)}"
        if all(r["status"] == "unsupported" for r in rows):
            assert len({r["reason"] for r in rows}) == 1, (what, rows)
            continue
        assert_measured(rows, platform, QUICK_REPETITIONS, what, accept=ok_or_lost)


@pytest.mark.parametrize("scenario", PARAMS)
def test_tlb_column(quick_run, platform, scenario):
    """Empty wherever TLB shootdowns are not counted (all but x86 Linux,
    where /proc/interrupts has a TLB row); where counted, a number >= 0 on
    every ok row the harness timed (harness/native is Google Benchmark's own
    loop, which the harness's counters do not cover)."""
    ok = [r for r in quick_run.select(scenario=scenario) if r["status"] == "ok"]
    assert ok, scenario
    if not platform.tlb_counted:
        assert all(r["tlb_shootdowns_per_op"] == "" for r in quick_run.select(scenario=scenario))
        return
    timed = [r for r in ok if (r["scenario"], r["variant"]) != ("harness", "native")]
    missing = [r for r in timed if r["tlb_shootdowns_per_op"] == ""]
    assert not missing, missing[:3]
    given = [float(r["tlb_shootdowns_per_op"]) for r in ok if r["tlb_shootdowns_per_op"] != ""]
    assert all(x >= 0 and math.isfinite(x) for x in given), given


@pytest.mark.parametrize("scenario", PARAMS)
def test_write_code_strategy_is_verified_or_says_why(hook_run, platform, scenario):
    """Through test_hook (writable only inside write_code): never failed
    (but for victims that lost their CPU), crashed or timed out; every row
    ok or unsupported with a reason. A strategy-free scenario does not run
    when only test_hook is selected."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_exit_code(hook_run)
    t = entry(hook_run, scenario)
    rs = hook_run.select(scenario=scenario)
    if t["strategy_free"]:
        assert rs == [], rs
        return
    assert rs and {r["strategy"] for r in rs} == {"test_hook"}, rs
    assert {r["variant"] for r in rs} <= set(t["variants"]), rs
    for r in rs:
        assert r["status"] in ("ok", "unsupported") or victim_lost(r), r
        assert r["status"] == "ok" or len(r["reason"].strip()) > 10, r


@pytest.fixture(scope="module")
def quick_plots(quick_run, tmp_path_factory):
    """scripts/plot.py over the shared quick run, once."""
    out = tmp_path_factory.mktemp("quick_plots")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "plot.py"), str(quick_run.out), "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    return Path(out)


@pytest.mark.parametrize("scenario", PARAMS)
def test_a_figure_is_drawn(quick_plots, scenario):
    """Every scenario with an ok row gets a figure, its own or the generic
    one (scripts/plot.py, FIGURES)."""
    for ext in ("png", "svg"):
        path = quick_plots / f"{scenario}.{ext}"
        assert path.exists() and path.stat().st_size > 1000, path
    assert scenario in (quick_plots / f"{scenario}.svg").read_text()


def test_scenario_pages_belong_to_the_table():
    """docs/scenarios/: every page is a scenario of the table and the index
    links it (a scenario added to the table may come without a page)."""
    docs = ROOT / "docs" / "scenarios"
    index = (docs / "README.md").read_text()
    pages = sorted(p.stem for p in docs.glob("*.md") if p.name != "README.md")
    assert pages, docs
    for name in pages:
        assert name in SCENARIOS, f"docs/scenarios/{name}.md: no scenario {name} in the table {SCENARIOS}"
        assert f"]({name}.md)" in index, f"docs/scenarios/README.md does not link {name}.md"
