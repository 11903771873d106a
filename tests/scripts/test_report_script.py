"""scripts/report.py: headline numbers, lists, self-contained HTML."""

import csv
import re
import statistics

import pytest
from wxplots_testlib import RUN_A, RUN_X86, median, ok_values, row, run_script, write_csv

UNITS = {"ns": 1.0, "µs": 1e3, "ms": 1e6, "s": 1e9}


@pytest.fixture(scope="session")
def report_a(tmp_path_factory):
    """report.py run once on RUN_A."""
    out = tmp_path_factory.mktemp("report_a")
    done = run_script("report.py", RUN_A, "--out", out)
    assert done.returncode == 0, done.stderr
    return out, done


def wxdata_configs(run_dir):
    """Every configuration of a fixture with ok rows, read with the csv module."""
    with open(run_dir / "results.csv", newline="") as f:
        return sorted({(r["scenario"], r["strategy"], r["variant"], r["core_class"], r["size_bytes"], r["threads"],
                        r["victims"], r["batch"]) for r in csv.DictReader(f) if r["status"] == "ok"})


def md_table(md, heading):
    """The first Markdown table after a heading line: list of rows (lists of cells)."""
    lines = md.splitlines()
    i = lines.index(heading)
    rows = []
    for line in lines[i + 1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows


def parse_ns(cell):
    m = re.match(r"([0-9.]+) (ns|µs|ms|s)\b", cell)
    assert m, f"not a duration: {cell!r}"
    return float(m.group(1)) * UNITS[m.group(2)]


def cell(rows, strategy, column):
    header = rows[0]
    (r,) = [r for r in rows[2:] if r[0] == strategy]
    return r[header.index(column)]


def close(shown, exact):
    """A value shown with 3 significant digits."""
    return abs(shown - exact) <= 0.005 * abs(exact)


def test_headline_numbers_equal_medians_computed_here(report_a):
    out, done = report_a
    md = (out / "report.md").read_text()
    rows = md_table(md, "### P cores")
    q = dict(scenario="toggle_latency", core_class="P")
    for strategy in ("mprotect", "dualmap", "mapjit", "mapjit_callback"):
        assert close(parse_ns(cell(rows, strategy, "flip round trip")),
                     median(ok_values(RUN_A, strategy=strategy, variant="flip", **q)))
        assert close(parse_ns(cell(rows, strategy, "verified patch")),
                     median(ok_values(RUN_A, strategy=strategy, variant="patch", **q)))
    mp = dict(scenario="mprotect_tlb", strategy="mprotect", variant="flip", size_bytes=16384)
    assert close(parse_ns(cell(rows, "mprotect", "mprotect 1 page, 0 victims")),
                 median(ok_values(RUN_A, victims=0, **mp)))
    most = cell(rows, "mprotect", "mprotect 1 page, most victims")
    assert most.endswith("(7 victims)") and close(parse_ns(most), median(ok_values(RUN_A, victims=7, **mp)))
    ic = dict(scenario="icache_flush", strategy="mapjit", variant="builtin")
    assert close(parse_ns(cell(rows, "mapjit", "icache flush 64 B")), median(ok_values(RUN_A, size_bytes=64, **ic)))
    assert close(parse_ns(cell(rows, "mapjit", "icache flush 4 KiB")),
                 median(ok_values(RUN_A, size_bytes=4096, **ic)))
    tc = dict(scenario="thread_contention", strategy="mprotect", variant="private")
    scaling = (median([24e9 / x for x in ok_values(RUN_A, threads=24, **tc)])
               / median([1e9 / x for x in ok_values(RUN_A, threads=1, **tc)]))
    shown = cell(rows, "mprotect", "contention scaling")
    assert shown.endswith("(at 24 threads)") and close(float(shown.split("×")[0]), scaling)
    # absent, not ok, partial
    assert cell(rows, "dualmap", "icache flush 64 B") == "—"
    assert cell(rows, "rwx", "flip round trip") == "unsupported"
    assert cell(rows, "mapjit_callback", "verified patch").endswith("†")
    e_rows = md_table(md, "### E cores")
    assert close(parse_ns(cell(e_rows, "mapjit", "flip round trip")),
                 median(ok_values(RUN_A, scenario="toggle_latency", strategy="mapjit", variant="flip", core_class="E")))


def test_machine_table_shows_meta_keys_generically(report_a):
    out, _ = report_a
    md = (out / "report.md").read_text()
    rows = md_table(md, "## Machine")
    keys = {r[0]: r[1] for r in rows[2:]}
    assert keys["wxbench_version"] == "v0.0-synthetic"
    assert keys["cores"] == "P: 8<br>E: 4<br>logical: 12"
    assert keys["load_average"] == "1.25, 1.5, 1.75"
    assert keys["cycles"] == "available: false<br>reason: kperf needs root"


def test_not_ok_list_and_noise_warning(report_a):
    out, _ = report_a
    md = (out / "report.md").read_text()
    rows = md_table(md, "## Not ok: unsupported, failed, crashed, timed out, interfered")
    reasons = {(r[1], r[2]): r[4] for r in rows[2:]}
    assert reasons[("pkey/flip", "unsupported")] == (
        'pkey_alloc: not available on macOS, "memory protection keys" are a Linux API<br>see --probe')
    assert reasons[("dualmap/exec_span", "crashed")] == "SIGBUS in the executable view at offset 0x8000"
    assert reasons[("mapjit_callback/patch", "failed")] == "patched function returned 0x2a, expected 0x2b"
    assert ("Definition: noise = the coefficient of variation between processes (sample standard deviation / mean "
            "of ns_per_op over the ok repetitions, each a fresh process); a configuration is flagged noisy when it "
            "exceeds 5%.") in md
    # the summary comes before the figures and the machine, the list of noisy configurations near the end
    assert md.index("## Headline numbers") < md.index("## Noise") < md.index("## Figures") < md.index("## Machine")
    noise = md_table(md, "## Noisy configurations")
    noisy = {r[0]: r[-1] for r in noise[2:]}
    want = {}
    for cfg in wxdata_configs(RUN_A):
        vals = ok_values(RUN_A, scenario=cfg[0], strategy=cfg[1], variant=cfg[2], core_class=cfg[3], size_bytes=cfg[4],
                         threads=cfg[5], victims=cfg[6], batch=cfg[7])
        if len(vals) >= 2:
            cv = statistics.stdev(vals) / statistics.mean(vals)
            if cv > 0.05:
                want[cfg] = f"{cv:.1%}"
    assert sorted(noisy.values()) == sorted(want.values())
    assert "toggle_latency/mapjit/redundant (E cores)" in noisy


def test_audit_table_and_exposure_scatter(report_a):
    out, _ = report_a
    md = (out / "report.md").read_text()
    rows = md_table(md, "## W^X audit")
    assert rows[0] == ["strategy", "write faults when executable", "per-thread"]
    assert cell(rows, "dualmap", "write faults when executable") == "no"
    assert cell(rows, "pkey", "per-thread") == "n/a"
    page = (out / "report.html").read_text()
    assert '<td class="audit-yes" title="other thread still faults">yes</td>' in page
    assert '<td class="audit-na" title="not available">n/a</td>' in page
    assert (out / "exposure_vs_patch.png").stat().st_size > 10_000
    assert "![cost per patch vs exposure window](exposure_vs_patch.png)" in md


def test_html_is_self_contained(report_a):
    out, done = report_a
    page = (out / "report.html").read_text()
    assert str(out / "report.html") in done.stdout and str(out / "report.md") in done.stdout
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 9 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"https?://|<link|<script|@import|href=", page)
    assert "&lt;br&gt;" not in page and "memory protection keys" in page  # escaped, not raw


def test_report_without_meta_says_so(tmp_path):
    done = run_script("report.py", RUN_X86, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "report.md").read_text()
    assert "No machine details:" in md and "meta.json: not found" in md
    assert "## Headline numbers" in md and "## W^X audit" not in md  # no audit.csv: omitted
    assert "Cost per patch vs exposure window" not in md  # no wx_audit rows: omitted
    rows = md_table(md, "## Headline numbers")
    assert close(parse_ns(cell(rows, "pkey", "flip round trip")),
                 median(ok_values(RUN_X86, scenario="toggle_latency", strategy="pkey", variant="flip")))


@pytest.mark.parametrize("name", ["report.md", "report.html"])
def test_outputs_not_empty(report_a, name):
    out, _ = report_a
    assert (out / name).stat().st_size > 3000


def test_run_with_no_ok_row_still_reports_why(tmp_path):
    path = write_csv(tmp_path / "run" / "results.csv", [
        row(strategy="mapjit", variant=v, status="unsupported", ns="", reason="needs macOS on Apple silicon")
        for v in ("flip", "patch")])
    done = run_script("report.py", path, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| toggle_latency | mapjit (flip, patch) | unsupported | 2 rows | needs macOS on Apple silicon |" in md
    assert "## Figures" not in md and not list((tmp_path / "out").glob("*.png"))
