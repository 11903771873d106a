"""The hosted CI workflow (.github/workflows/ci.yml) runs on Apple silicon
(macos-15, macos-26), an Intel Mac (macos-15-intel), Linux x86_64 and Linux
arm64, and every one of those jobs checks out, installs deps, runs the tests, a
quick benchmark and the probe, and uploads data/; the macOS jobs also take a
quick run signed with the hardened runtime (make bench HARDENED=1). These
tests fail when a job or a step is removed, and when a job asks for a runner
label GitHub no longer offers (macos-13 was retired in December 2025,
macos-14 on 2 November 2026).

The workflow is read with a small parser for the block-style YAML subset it
uses (PyYAML is not always installed); where PyYAML is there, both parsers
must agree, which keeps the small one honest."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"

NATIVE_RUNNERS = {"macos-15": "arm64", "macos-26": "arm64", "macos-15-intel": "x86_64",
                  "ubuntu-latest": "x86_64", "ubuntu-24.04-arm": "arm64"}
# Hosted runner labels that exist in December 2026 (the Intel images carry
# "-intel"; the plain macos-15 and macos-26 labels are arm64).
EXISTING_LABELS = {"ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
                   "macos-latest", "macos-15", "macos-26", "macos-15-intel", "macos-26-intel"}
RETIRED_LABELS = {"macos-12", "macos-13", "macos-14", "macos-13-xlarge", "macos-14-large", "macos-14-xlarge"}


# --------------------------------------------------------------------------
# A block-style YAML subset: mappings, lists, plain/quoted scalars, "|"
# block scalars, comments. Enough for GitHub workflow files written plainly.

def _strip_comment(line):
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def parse_yaml_subset(source):
    raw = source.splitlines()
    lines = []  # (indent, text, raw index)
    for idx, line in enumerate(raw):
        text = _strip_comment(line)
        if text.strip():
            lines.append((len(text) - len(text.lstrip(" ")), text.strip(), idx))
    pos = 0

    def block_scalar(parent_indent, raw_idx):
        # lines after raw_idx indented deeper than parent_indent, verbatim
        nonlocal pos
        body = []
        i = raw_idx + 1
        indent = None
        while i < len(raw):
            line = raw[i]
            if line.strip():
                ind = len(line) - len(line.lstrip(" "))
                if ind <= parent_indent:
                    break
                indent = ind if indent is None else indent
                body.append(line[indent:])
            else:
                body.append("")
            i += 1
        while pos < len(lines) and lines[pos][2] < i:
            pos += 1
        return "\n".join(body).rstrip("\n") + "\n"

    def value(indent, rest, raw_idx):
        if rest in ("|", "|-", ">", ">-"):
            return block_scalar(indent, raw_idx)
        if rest == "":
            if pos < len(lines) and lines[pos][0] > indent:
                return node(lines[pos][0])
            if pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                return node(indent)
            return None
        return _scalar(rest)

    def mapping_entry(indent, text, raw_idx, into):
        key, sep, rest = text.partition(":")
        assert sep, f"line {raw_idx + 1}: expected 'key: value', got {text!r}"
        into[_scalar(key)] = value(indent, rest.strip(), raw_idx)

    def node(indent):
        nonlocal pos
        if lines[pos][1].startswith("- "):
            items = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1].startswith("- "):
                _, text, raw_idx = lines[pos]
                pos += 1
                item = text[2:].strip()
                inner = indent + 2
                if re.match(r"^[^'\"\s][^:]*:(\s|$)", item):
                    m = {}
                    mapping_entry(inner, item, raw_idx, m)
                    while pos < len(lines) and lines[pos][0] == inner and not lines[pos][1].startswith("- "):
                        _, t, ri = lines[pos]
                        pos += 1
                        mapping_entry(inner, t, ri, m)
                    items.append(m)
                else:
                    items.append(_scalar(item))
            return items
        m = {}
        while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
            _, text, raw_idx = lines[pos]
            pos += 1
            mapping_entry(indent, text, raw_idx, m)
        return m

    doc = node(lines[0][0]) if lines else {}
    assert pos == len(lines), f"unparsed from line {lines[pos][2] + 1}: {lines[pos][1]!r}"
    return doc


# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workflow():
    assert WORKFLOW.exists(), f"{WORKFLOW} is missing"
    return parse_yaml_subset(WORKFLOW.read_text())


def _norm(obj):
    """PyYAML reads the key `on` as True; compare with that undone."""
    if isinstance(obj, dict):
        return {("on" if k is True else k): _norm(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


def test_small_parser_agrees_with_pyyaml(workflow):
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed: the small parser alone is used")
    assert _norm(yaml.safe_load(WORKFLOW.read_text())) == workflow


def _native_job(workflow):
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict) and jobs, "no jobs"
    for name, job in jobs.items():
        include = (job.get("strategy") or {}).get("matrix", {}).get("include")
        if include and "matrix.os" in str(job.get("runs-on")):
            return name, job, include
    pytest.fail("no job runs on a matrix of operating systems (runs-on: ${{ matrix.os }})")


def test_native_runners(workflow):
    _, job, include = _native_job(workflow)
    got = {entry.get("os"): entry.get("arch") for entry in include}
    for os_name, arch in NATIVE_RUNNERS.items():
        assert os_name in got, f"no job runs on {os_name}"
        assert got[os_name] == arch, f"{os_name} is {arch}, the workflow says {got[os_name]}"
    assert job["strategy"].get("fail-fast") is False, "one platform failing must not cancel the others"


def test_only_existing_runner_labels(workflow):
    """Every runs-on, literal or from the matrix, names a label that exists."""
    labels = []
    for name, job in workflow["jobs"].items():
        runs_on = str(job.get("runs-on"))
        if "matrix.os" in runs_on:
            labels += [entry.get("os") for entry in job["strategy"]["matrix"]["include"]]
        else:
            labels.append(runs_on)
    assert labels
    for label in labels:
        assert label not in RETIRED_LABELS, f"{label} is a retired runner label"
        assert label in EXISTING_LABELS, f"{label} is not a hosted runner label known to exist"


def _step_index(steps, pred, what):
    for i, step in enumerate(steps):
        if pred(step):
            return i
    pytest.fail(f"no step {what}")


def test_native_steps_in_order(workflow):
    _, job, _ = _native_job(workflow)
    steps = job.get("steps")
    assert isinstance(steps, list) and steps, "the job has no steps"

    def runs(cmd):
        return lambda s: any(line.strip() == cmd or line.strip().startswith(cmd + " ")
                             for line in str(s.get("run", "")).splitlines())

    order = [
        _step_index(steps, lambda s: str(s.get("uses", "")).startswith("actions/checkout@"), "checking out"),
        _step_index(steps, runs("make deps"), "running make deps"),
        _step_index(steps, runs("make test"), "running make test"),
        _step_index(steps, runs("make bench QUICK=1"), "running make bench QUICK=1"),
        _step_index(steps, lambda s: "./build/wxbench --probe" in str(s.get("run", "")), "running the probe"),
        _step_index(steps, lambda s: str(s.get("uses", "")).startswith("actions/upload-artifact@"),
                    "uploading an artifact"),
    ]
    assert order == sorted(order), f"steps out of order: {order}"
    upload = steps[order[-1]]
    assert str(upload.get("with", {}).get("path", "")).rstrip("/") == "data", "the artifact must be data/"
    assert upload.get("if") == "always()", "data/ must be uploaded even when a step failed"
    probe = steps[order[4]]
    assert "data/" in str(probe.get("run")), "the probe's output should land in data/ for the artifact"


def test_macos_jobs_run_the_hardened_bench(workflow):
    """`make bench QUICK=1 HARDENED=1` on the macOS jobs only (elsewhere it
    refuses), after the tests and before data/ is uploaded."""
    _, job, _ = _native_job(workflow)
    steps = job["steps"]
    hardened = [i for i, s in enumerate(steps)
                if any(line.strip().startswith("make bench") and "HARDENED=1" in line.split()
                       for line in str(s.get("run", "")).splitlines())]
    assert len(hardened) == 1, "one step runs make bench HARDENED=1"
    step = steps[hardened[0]]
    assert "runner.os == 'macOS'" in str(step.get("if", "")), "HARDENED=1 runs on the macOS jobs only"
    upload = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    tests = next(i for i, s in enumerate(steps) if "make test" in str(s.get("run", "")))
    assert tests < hardened[0] < upload, "after make test, before data/ is uploaded"


def test_cross_job(workflow):
    jobs = workflow["jobs"]
    cross = [job for job in jobs.values()
             if any("make test-cross" in str(s.get("run", "")) for s in job.get("steps", []))]
    assert cross, "no job runs make test-cross"
    assert cross[0].get("runs-on") == "ubuntu-latest"
    run = " ".join(str(s.get("run", "")) for s in cross[0]["steps"])
    assert "tools/install_cross.sh" in run, "the cross tools are installed by tools/install_cross.sh"
    assert (ROOT / "tools" / "install_cross.sh").exists()
    assert "GBENCH_NEW_INCLUDE=" in run, "the shim is also compiled against the newest Google Benchmark headers"


def test_parser_on_a_known_document():
    doc = parse_yaml_subset(
        "a: 1\n"
        "b:\n"
        "  - x\n"
        "  - name: y  # comment\n"
        "    run: |\n"
        "      one\n"
        "      two\n"
        "  - 'q: z'\n"
        "c:\n"
        "  d: \"#not a comment\"\n"
        "  e: false\n")
    assert doc == {"a": 1, "b": ["x", {"name": "y", "run": "one\ntwo\n"}, "q: z"],
                   "c": {"d": "#not a comment", "e": False}}
