"""Figures that must agree with each other within one run: the same op measured
by two scenarios, a part never costing more than its whole, and every row's
op count times its time per op being the time the row was timed for (which a
wrong op count per batch breaks, whatever the other rows say)."""
import statistics

from conftest import QUICK_REPETITIONS, run_wxbench


def medians(run, **kw):
    """{strategy: median ns_per_op} of the ok rows matching kw, single-thread, any or P cores."""
    out = {}
    for r in run.select(**kw):
        if r["status"] == "ok" and r["core_class"] in ("any", "P"):
            out.setdefault(r["strategy"], []).append(float(r["ns_per_op"]))
    return {s: statistics.median(v) for s, v in out.items()}


def agree(quick_run, wxbench, tmp_path, a_where, b_where, low, high):
    """Assert low <= median(b) / median(a) <= high for every strategy that
    measured both. A strategy outside the window is measured once more in a
    run of its own (the two scenarios only, 5 processes each, interleaved), and
    that run stands: on a busy machine a quick run's 3 processes can land 2x
    apart, while the errors this catches (an op counted per batch, a unit) are
    10x and more and survive any re-run. Returns the strategies checked."""
    a, b = medians(quick_run, **a_where), medians(quick_run, **b_where)
    both = [s for s in a if s in b]
    for s in both:
        ratio = b[s] / a[s]
        if low <= ratio <= high:
            continue
        print(f"note: {s}: {b_where} / {a_where} = {ratio:.2f} in the quick run; measuring once more")
        scen = ",".join(dict.fromkeys((a_where["scenario"], b_where["scenario"])))
        again = run_wxbench(wxbench, tmp_path / f"again-{s}", "--quick", "--repetitions", "5",
                            "--scenario", scen, "--strategy", s)
        a2, b2 = medians(again, **a_where).get(s), medians(again, **b_where).get(s)
        assert a2 and b2, (s, again.rc, again.stderr)
        assert low <= b2 / a2 <= high, (s, "quick run", a[s], b[s], "again", a2, b2)
    return both


def test_one_page_round_trip_is_the_same_in_two_scenarios(quick_run, wxbench, tmp_path):
    """toggle_latency/flip and mprotect_tlb/flip at one page and no victim are the same op."""
    page = quick_run.meta["page_size"]
    both = agree(quick_run, wxbench, tmp_path, dict(scenario="toggle_latency", variant="flip"),
                 dict(scenario="mprotect_tlb", variant="flip", victims=0, size_bytes=page), 0.5, 2.0)
    assert "mprotect" in both, both


def test_patch_is_the_same_in_two_scenarios(quick_run, wxbench, tmp_path):
    """toggle_latency/patch and dualmap_overhead/steady are one verified patch of a one-page region.
    Patches scatter up to 2x between processes (layout), hence the wider window."""
    both = agree(quick_run, wxbench, tmp_path, dict(scenario="toggle_latency", variant="patch"),
                 dict(scenario="dualmap_overhead", variant="steady"), 0.4, 2.5)
    assert "mprotect" in both, both


def test_the_exposure_window_is_part_of_the_patch(quick_run, platform):
    """wx_audit times the writable window of the patch cycle toggle_latency times whole."""
    window = medians(quick_run, scenario="wx_audit", variant="exposure_window")
    patch = medians(quick_run, scenario="toggle_latency", variant="patch")
    base_window = medians(quick_run, scenario="wx_audit", variant="exposure_baseline")
    base_patch = medians(quick_run, scenario="toggle_latency", variant="baseline")
    checked = 0
    for s in window:
        if s in patch:
            assert window[s] < patch[s] * 1.2, (s, window[s], patch[s])
            checked += 1
    for s in base_window:
        if s in base_patch:
            assert base_window[s] < base_patch[s] * 1.2, (s, base_window[s], base_patch[s])
            checked += 1
    assert checked, "no exposure row to compare here"


def test_op_count_times_time_per_op_is_the_time_timed(quick_run):
    """For every ok row Google Benchmark timed for at least the case's minimum time
    (all but fixed-count cases): iterations x ns_per_op (per thread: divided by the
    threads) is that time, give or take what Google Benchmark's last estimate
    overshoots. Under --quick the minimum is 0.01 s, a quarter of it (at least 2 ms,
    10 ms with victims) for short cases; Google Benchmark runs until the minimum is
    reached and aims about 40% beyond it."""
    min_time = quick_run.meta["settings"]["min_time_s"]
    assert quick_run.meta["settings"]["quick"] and min_time == 0.01
    fixed = {("jit_workload", v) for v in ("compile", "compile_baseline", "cross_thread", "cross_thread_nosync")}
    fixed |= {("wx_audit", "exposure_window"), ("wx_audit", "exposure_baseline"), ("dualmap_overhead", "exec_span")}
    checked = 0
    for r in quick_run.rows:
        if r["status"] != "ok" or (r["scenario"], r["variant"]) in fixed or code_heap_fixed(quick_run, r):
            continue
        seconds = int(r["iterations"]) * float(r["ns_per_op"]) / int(r["threads"]) / 1e9
        assert 0.001 <= seconds <= 0.2, (r["scenario"], r["strategy"], r["variant"], r["iterations"],
                                         r["ns_per_op"], seconds)
        checked += 1
    assert checked > 100


def code_heap_fixed(run, r):
    """code_heap's cases with a long set-up (heaps of 16 MiB and more, 1,000
    mappings and more) run a fixed 2,048 ops (docs/scenarios/code_heap.md)."""
    if r["scenario"] != "code_heap":
        return False
    size = int(r["size_bytes"])
    if r["variant"] == "mappings":
        return size // run.meta["page_size"] >= 1000
    return r["variant"] not in ("isolated", "neighbour") and size >= 16 << 20


def test_fixed_counts_are_the_documented_counts(quick_run):
    """Cases with a fixed op count report exactly that count."""
    counts = {("jit_workload", "compile"): 256, ("jit_workload", "cross_thread"): 5000,
              ("jit_workload", "cross_thread_nosync"): 5000, ("wx_audit", "exposure_window"): 2000,
              ("wx_audit", "exposure_baseline"): 2000}
    seen = 0
    for r in quick_run.rows:
        want = counts.get((r["scenario"], r["variant"]))
        if want and r["status"] == "ok":
            assert int(r["iterations"]) == want, r
            seen += 1
        if code_heap_fixed(quick_run, r) and r["status"] == "ok":
            assert int(r["iterations"]) == 2048, r
    assert seen >= QUICK_REPETITIONS
