"""Load, validate and summarise wxbench results for the plotting scripts.

Every script under scripts/ reads data through this module, so the CSV contract
(docs: DESIGN.md, "results.csv") is enforced in one place:

- results.csv is parsed with RFC 4180 quoting; columns are found by name, unknown
  extra columns are kept in Row.extra and otherwise ignored;
- an `ok` row must carry numbers in every numeric column it fills; a bad value is a
  DataError naming the file and the line the record starts on (exit status 2);
- non-ok rows are never turned into numbers: their ns_per_op etc. are ignored even
  if present, and they are summarised as issues with their reasons;
- rows of one configuration (CONFIG_FIELDS) are grouped; statistics use only the
  ok repetitions: median (numpy's: mean of the two middle values for an even count),
  min, max, and spread = max(|x - median|) / median.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

HEADER = (
    "machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,"
    "size_bytes,batch,core_class,repetition,iterations,ns_per_op,cycles_per_op,"
    "tlb_shootdowns_per_op,status,reason"
).split(",")
INT_COLUMNS = ("page_size", "threads", "victims", "size_bytes", "batch", "repetition", "iterations")
FLOAT_COLUMNS = ("ns_per_op", "cycles_per_op", "tlb_shootdowns_per_op")
STATUSES = ("ok", "unsupported", "failed", "crashed", "timeout", "interfered")
CONFIG_FIELDS = ("scenario", "strategy", "variant", "threads", "victims", "size_bytes", "batch", "core_class")
# Parameters a scenario may sweep, in the order used to break ties ("smallest first").
PARAM_FIELDS = ("threads", "victims", "batch", "size_bytes")
PARAM_DEFAULTS = {"threads": 1, "victims": 0, "batch": 1, "size_bytes": 0}

# The display order of strategies: the strategy table's order as meta.json
# lists it ("strategies"), learned from the runs loaded; strategies no
# meta.json listed come after them by name, and "none" (the strategy-free
# scenarios) last.
_STRATEGY_ORDER: list[str] = []
CORE_CLASS_ORDER = ("P", "E", "any")
NOISE_THRESHOLD = 0.05
SPREAD_DEFINITION = (
    "noise = the coefficient of variation between processes (sample standard deviation / mean of ns_per_op "
    "over the ok repetitions, each a fresh process); a configuration is flagged noisy when it exceeds 5%"
)
MEDIAN_DEFINITION = ("median over ok repetitions, each a fresh process (for an even count, the mean of the two "
                     "middle values)")
INTERVAL_DEFINITION = ("95% interval of the median: the sorted process values x_(j) .. x_(n+1-j) with j the "
                       "largest rank such that 2 P(Binomial(n, 1/2) <= j-1) <= 5% (distribution-free; needs n >= 6, "
                       "below that min..max is shown and marked)")

AUDIT_COLUMNS = ("strategy", "property", "result", "evidence")
AUDIT_RESULTS = ("yes", "no", "n/a")


class DataError(Exception):
    """Bad input: the message names the file and, where it applies, the line."""


class NoData(Exception):
    """Nothing to draw or report; the scripts print the message and exit 0."""


def where(path: Path | str, line: int | None = None) -> str:
    """`file:line` prefix for messages, compiler style."""
    return f"{path}:{line}" if line else f"{path}"


def order_key(value: str, order: Iterable[str]) -> tuple:
    """Sort key putting known names in their canonical order, then the rest by name."""
    order = list(order)
    return (order.index(value), "") if value in order else (len(order), value)


def learn_strategy_order(names: Iterable[str]) -> None:
    """Add strategy names to the display order, keeping the ones known already."""
    for n in names:
        if n not in _STRATEGY_ORDER and n != "none":
            _STRATEGY_ORDER.append(n)


def strategy_order() -> tuple[str, ...]:
    """Every strategy name seen so far, in display order, "none" last."""
    return tuple(_STRATEGY_ORDER) + ("none",)


def strategy_key(name: str) -> tuple:
    if name == "none":
        return (len(_STRATEGY_ORDER) + 1, "")
    return order_key(name, _STRATEGY_ORDER)


def core_class_key(name: str) -> tuple:
    return order_key(name, CORE_CLASS_ORDER)


# ---------------------------------------------------------------------------
# Rows


@dataclass
class Row:
    """One record of results.csv, numeric columns converted (None where empty)."""

    line: int  # line of the file where the record starts (1 = header)
    machine: str
    chip: str
    os: str
    arch: str
    page_size: int | None
    scenario: str
    strategy: str
    variant: str
    threads: int | None
    victims: int | None
    size_bytes: int | None
    batch: int | None
    core_class: str
    repetition: int | None
    iterations: int | None
    ns_per_op: float | None
    cycles_per_op: float | None
    tlb_shootdowns_per_op: float | None
    status: str
    reason: str
    extra: dict = field(default_factory=dict)  # unknown columns, kept verbatim

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def config(self) -> tuple:
        return tuple(getattr(self, f) for f in CONFIG_FIELDS)


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_float(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError("not finite")
    if value < 0:
        raise ValueError("negative")
    return value


def _convert(record: dict, path: Path, line: int) -> Row:
    status = record["status"].strip()
    if status not in STATUSES:
        raise DataError(
            f"{where(path, line)}: status is {record['status']!r}; expected one of {', '.join(STATUSES)}"
        )
    ok = status == "ok"
    values = {}
    for col in INT_COLUMNS:
        text = record[col]
        try:
            values[col] = _parse_int(text) if text.strip() else None
        except ValueError:
            if ok:
                raise DataError(f"{where(path, line)}: column {col} is {text!r}, not an integer (status ok)") from None
            values[col] = None  # a non-ok row is never measured; keep it listable
        if ok and values[col] is None:
            raise DataError(f"{where(path, line)}: column {col} is empty in an ok row")
    for col in FLOAT_COLUMNS:
        text = record[col]
        values[col] = None
        if not ok or not text.strip():
            continue  # non-ok rows are never drawn as numbers, whatever they hold
        try:
            values[col] = _parse_float(text)
        except ValueError as exc:
            raise DataError(
                f"{where(path, line)}: column {col} is {text!r}, not a usable number ({exc}; status ok)"
            ) from None
    if ok and values["ns_per_op"] is None:
        raise DataError(f"{where(path, line)}: column ns_per_op is empty in an ok row")
    strings = {c: record[c].strip()
               for c in ("machine", "chip", "os", "arch", "scenario", "strategy", "variant", "core_class")}
    extra = {k: v for k, v in record.items() if k not in HEADER}
    return Row(line=line, status=status, reason=record["reason"], extra=extra, **strings, **values)


def _read_text(path: Path) -> str:
    """The file as text; DataError when it is missing, unreadable or not UTF-8."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{where(path, line)}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def _csv_records(path: Path, text: str, required, warnings: list):
    """Yield (line where the record starts, {column: field}) from RFC 4180 text.

    The header must hold the `required` columns (others are kept). A record cut short
    at the very end of the file (an interrupted writer) is skipped with a warning;
    any other malformed record is a DataError naming its line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = None
    prev = 0
    try:
        for fields in reader:
            start, prev = prev + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in fields]
                missing = [c for c in required if c not in header]
                if missing:
                    raise DataError(f"{where(path, start)}: missing columns: {', '.join(missing)}")
                continue
            if len(fields) != len(header):
                unterminated = not text.endswith(("\n", "\r"))
                if len(fields) < len(header) and unterminated and _is_last(reader):
                    warnings.append(
                        f"{where(path, start)}: last record has {len(fields)} of {len(header)} fields "
                        "(run interrupted while writing?); skipped"
                    )
                    return
                raise DataError(f"{where(path, start)}: {len(fields)} fields, header has {len(header)}")
            yield start, dict(zip(header, fields))
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            raise DataError(f"{where(path, prev + 1)}: malformed CSV: {exc}") from None
        # a quoted field still open at the end of the file
        warnings.append(f"{where(path, prev + 1)}: last record ends inside a quoted field "
                        "(run interrupted while writing?); skipped")


def _is_last(reader) -> bool:
    for _ in reader:
        return False
    return True


def read_results(path: Path | str) -> tuple[list[Row], list[str]]:
    """Parse results.csv; returns (rows, warnings). Raises DataError on bad input."""
    path = Path(path)
    text = _read_text(path)
    warnings: list[str] = []
    if not text.strip():
        return [], warnings  # empty file: no header and no rows
    rows = [_convert(rec, path, line) for line, rec in _csv_records(path, text, HEADER, warnings)]
    return rows, warnings


# ---------------------------------------------------------------------------
# Configurations and statistics


@dataclass
class Config:
    """All repetitions of one configuration (same CONFIG_FIELDS)."""

    scenario: str
    strategy: str
    variant: str
    threads: int | None
    victims: int | None
    size_bytes: int | None
    batch: int | None
    core_class: str
    rows: list = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, f) for f in CONFIG_FIELDS)

    @property
    def ok_rows(self) -> list:
        return [r for r in self.rows if r.ok]

    @property
    def not_ok_rows(self) -> list:
        return [r for r in self.rows if not r.ok]

    @property
    def page_size(self) -> int | None:
        return next((r.page_size for r in self.rows if r.page_size), None)

    @property
    def pages(self) -> float | None:
        if self.size_bytes is None or not self.page_size:
            return None
        return self.size_bytes / self.page_size

    def values(self, column: str = "ns_per_op") -> np.ndarray:
        """The ok repetitions' values of a numeric column (empty cells left out)."""
        return np.array([getattr(r, column) for r in self.ok_rows if getattr(r, column) is not None], dtype=float)

    def stats(self, column: str = "ns_per_op") -> "Stats | None":
        return Stats.of(self.values(column))

    @property
    def n(self) -> int:
        return len(self.ok_rows)

    @property
    def status(self) -> str:
        """ok, partial (some repetitions not ok) or the non-ok status of all rows."""
        if all(r.ok for r in self.rows):
            return "ok"
        if any(r.ok for r in self.rows):
            return "partial"
        statuses = sorted({r.status for r in self.rows})
        return statuses[0] if len(statuses) == 1 else "/".join(statuses)

    def params_text(self, fields: Iterable[str] = PARAM_FIELDS, all_values: bool = False) -> str:
        """Short text of the parameters, e.g. '4 threads, 64 B'; defaults (1 thread,
        0 victims, batch 1, size 0) are left out unless all_values."""
        parts = []
        for f in fields:
            v = getattr(self, f)
            if v is None or (not all_values and v == PARAM_DEFAULTS.get(f)):
                continue
            parts.append(fmt_param(f, v))
        return ", ".join(parts)

    def label(self) -> str:
        """Full name of the configuration for lists and tables."""
        text = f"{self.scenario}/{self.strategy}/{self.variant}"
        bits = [self.params_text(), "" if self.core_class in ("any", "") else f"{self.core_class} cores"]
        bits = [b for b in bits if b]
        return f"{text} ({', '.join(bits)})" if bits else text


def median_ci_rank(n: int, alpha: float = 0.05) -> int:
    """The largest j >= 1 with 2 P(B <= j-1) <= alpha, B ~ Binomial(n, 1/2), or 0
    when there is none (n < 6 for 95%): sorted values x_(j) .. x_(n+1-j) (1-based)
    then hold the median with probability at least 1 - alpha, whatever the
    distribution (bench/app/stats.c computes the same)."""
    j = 0
    while j + 1 <= (n + 1) // 2 and 2 * _binom_half_cdf(n, j) <= alpha:
        j += 1
    return j


def _binom_half_cdf(n: int, k: int) -> float:
    return sum(math.comb(n, i) for i in range(0, min(k, n) + 1)) / 2.0 ** n


@dataclass
class Stats:
    """Summary of the ok repetitions of one configuration. Each repetition is a
    process of its own (since process-level replication), so low..high is a
    95% interval of the median over processes."""

    median: float
    min: float
    max: float
    n: int
    spread: float | None  # max(|x - median|) / median; None when median is 0 or n < 2
    low: float = 0.0       # the 95% interval of the median: x_(j) .. x_(n+1-j) (min..max when n < 6)
    high: float = 0.0
    coverage: float = 0.0  # its confidence (>= 0.95 when exact95)
    exact95: bool = False  # n >= 6: a distribution-free 95% interval exists
    cv: float | None = None  # sample standard deviation / mean between processes; None for n < 2

    @classmethod
    def of(cls, values) -> "Stats | None":
        values = np.sort(np.asarray(values, dtype=float))
        if values.size == 0:
            return None
        n = int(values.size)
        med = float(np.median(values))
        spread = None
        if n >= 2 and med > 0:
            spread = float(np.max(np.abs(values - med)) / med)
        j = median_ci_rank(n)
        exact = j >= 1
        j = max(j, 1)
        coverage = 1 - 2 * _binom_half_cdf(n, j - 1)
        mean = float(values.mean())
        cv = float(values.std(ddof=1) / mean) if n >= 2 and mean > 0 else None
        return cls(med, float(values[0]), float(values[-1]), n, spread, float(values[j - 1]), float(values[n - j]),
                   coverage, exact, cv)

    @property
    def noisy(self) -> bool:
        """Processes scatter more than NOISE_THRESHOLD (coefficient of variation)."""
        return self.cv is not None and self.cv > NOISE_THRESHOLD

    @property
    def half_width(self) -> float | None:
        """The interval's larger half, relative to the median."""
        if self.median <= 0:
            return None
        return max(self.high - self.median, self.median - self.low) / self.median


def group_configs(rows: Iterable[Row]) -> list[Config]:
    """Group rows by configuration, keeping first-appearance order."""
    groups: dict[tuple, Config] = {}
    for r in rows:
        cfg = groups.get(r.config)
        if cfg is None:
            cfg = groups[r.config] = Config(**{f: getattr(r, f) for f in CONFIG_FIELDS})
        cfg.rows.append(r)
    return list(groups.values())


def param_sort_key(cfg: Config) -> tuple:
    """Smallest parameters first (None last)."""
    return tuple((getattr(cfg, f) is None, getattr(cfg, f) or 0) for f in PARAM_FIELDS)


def varying(configs: Iterable[Config], fields: Iterable[str]) -> list[str]:
    """The fields among `fields` that take more than one value across configs."""
    configs = list(configs)
    return [f for f in fields if len({getattr(c, f) for c in configs}) > 1]


# ---------------------------------------------------------------------------
# Issues: non-ok rows, summarised with their reasons


@dataclass
class Issue:
    """Non-ok rows sharing scenario, strategy, status and reason (over any variants)."""

    scenario: str
    strategy: str
    status: str
    reason: str
    configs: list = field(default_factory=list)  # Config objects concerned
    rows: int = 0
    partial: int = 0  # configs that also have ok repetitions

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(c.variant for c in self.configs))

    @property
    def what(self) -> str:
        """'strategy/variant', or 'strategy (variant, variant, ...)'."""
        vs = self.variants
        return f"{self.strategy}/{vs[0]}" if len(vs) == 1 else f"{self.strategy} ({', '.join(vs)})"

    def where_text(self) -> str:
        """Which configurations: their parameters, core classes, partial repetitions."""
        params = sorted({c.params_text() for c in self.configs})
        cores = sorted({c.core_class for c in self.configs if c.core_class not in ("", "any")}, key=core_class_key)
        bits = []
        if len(params) == 1 and params[0]:
            bits.append(params[0])
        elif len(params) > 1:
            bits.append(f"{len(self.configs)} configurations")
        if cores:
            bits.append(f"{'/'.join(cores)} cores")
        if self.partial:
            bits.append("other repetitions ok" if self.partial == len(self.configs)
                        else f"{self.partial} with other repetitions ok")
        bits.append(f"{self.rows} row{'s' if self.rows != 1 else ''}")
        return ", ".join(bits)

    def line(self, width: int | None = None) -> str:
        """One line: 'strategy/variant (where): status: reason', the reason cut to fit width."""
        reason = " ".join(self.reason.split()) or "(no reason given)"
        head = f"{self.what} ({self.where_text()}): {self.status}: "
        if width is not None and len(head) + len(reason) > width:
            reason = reason[: max(12, width - len(head)) - 1] + "…"
        return head + reason


def issues(configs: Iterable[Config]) -> list[Issue]:
    out: dict[tuple, Issue] = {}
    for cfg in configs:
        partial = cfg.status == "partial"
        for r in cfg.not_ok_rows:
            k = (cfg.scenario, cfg.strategy, r.status, r.reason)
            iss = out.get(k)
            if iss is None:
                iss = out[k] = Issue(*k)
            if cfg not in iss.configs:
                iss.configs.append(cfg)
                iss.partial += partial
            iss.rows += 1
    return sorted(out.values(), key=lambda i: (i.scenario, strategy_key(i.strategy), i.status, i.reason))


# ---------------------------------------------------------------------------
# Runs: a results.csv with its meta.json and audit.csv


@dataclass
class AuditRow:
    line: int
    strategy: str
    property: str
    result: str
    evidence: str


@dataclass
class Run:
    """One run directory: data/<machine>/<run>/."""

    dir: Path
    csv_path: Path
    rows: list
    warnings: list
    meta: dict | None
    meta_note: str | None  # why meta is None (missing, unreadable)
    audit: list | None
    audit_path: Path | None
    _configs: list | None = None

    @property
    def configs(self) -> list[Config]:
        if self._configs is None:
            self._configs = group_configs(self.rows)
        return self._configs

    def scenario_configs(self, scenario: str) -> list[Config]:
        return [c for c in self.configs if c.scenario == scenario]

    @property
    def scenarios(self) -> list[str]:
        """Scenarios with rows, in the scenario table's order (meta.json), else in the
        order they first appear (children run in a shuffled order)."""
        seen = []
        for c in self.configs:
            if c.scenario not in seen:
                seen.append(c.scenario)
        table = self.meta.get("scenarios") if self.meta else None
        order = [t.get("name") for t in table if isinstance(t, dict)] if isinstance(table, list) else []
        return sorted(seen, key=lambda name: order_key(name, order))

    def _first(self, column: str) -> str:
        for r in self.rows:
            if getattr(r, column):
                return str(getattr(r, column))
        if self.meta and isinstance(self.meta.get(column), (str, int)):
            return str(self.meta[column])
        return ""

    @property
    def machine(self) -> str:
        return self._first("machine") or self.dir.parent.name or "unknown machine"

    @property
    def chip(self) -> str:
        return self._first("chip")

    @property
    def name(self) -> str:
        """The run's directory name (a UTC timestamp for `make bench` runs)."""
        return self.dir.name

    @property
    def has_ok_rows(self) -> bool:
        return any(r.ok for r in self.rows)

    def stamp(self) -> str:
        """'wxbench <version> · run <date>' from meta.json, or the run name when it is missing."""
        if self.meta is None:
            return f"run {self.name} (meta.json missing: version and date unknown)"
        version = self.meta_value("wxbench_version", "version unknown")
        return f"wxbench {version} · run {self.meta_value('date_utc', self.name)}"

    def process_starts(self) -> dict | None:
        """{(scenario, strategy, repetition): seconds from the run's start} from
        processes.csv (every repetition a child process); None where the file is
        missing or unreadable (then nothing depends on when a process ran)."""
        path = self.dir / "processes.csv"
        try:
            with open(path, newline="", encoding="utf-8") as f:
                out = {}
                for rec in csv.DictReader(f):
                    out[(rec["scenario"], rec["strategy"], int(rec["repetition"]))] = float(rec["start_s"])
                return out
        except (OSError, KeyError, ValueError, TypeError):
            return None

    def drift(self):
        """wxstats.within_run_drift over this run's configurations: (ratio of the
        second half of the run's processes to the first, configurations), or None."""
        import wxstats  # noqa: PLC0415  (wxstats does not import wxdata)
        starts = self.process_starts()
        if not starts:
            return None
        configs = []
        for c in self.configs:
            ts, vs = [], []
            for r in c.ok_rows:
                t = starts.get((r.scenario, r.strategy, r.repetition))
                if t is not None and r.ns_per_op is not None:
                    ts.append(t)
                    vs.append(r.ns_per_op)
            if ts:
                configs.append((ts, vs))
        return wxstats.within_run_drift(configs)

    def meta_value(self, key: str, default: str = "") -> str:
        if self.meta and key in self.meta and self.meta[key] not in (None, ""):
            return str(self.meta[key])
        return default


def resolve_run(arg: Path | str) -> tuple[Path, Path]:
    """RUN_DIR or RUN_DIR/results.csv (or any .csv) -> (run_dir, csv_path)."""
    p = Path(arg)
    if p.suffix.lower() == ".csv" or p.is_file():
        return p.parent, p
    return p, p / "results.csv"


def load_meta(run_dir: Path) -> tuple[dict | None, str | None]:
    path = run_dir / "meta.json"
    if not path.exists():
        return None, f"{path}: not found; machine details are unknown for this run"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return None, f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); machine details omitted"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot read ({exc}); machine details omitted"
    if not isinstance(meta, dict):
        return None, f"{path}: expected a JSON object, found {type(meta).__name__}; machine details omitted"
    return meta, None


def load_audit(run_dir: Path, warnings: list) -> tuple[list[AuditRow] | None, Path | None]:
    """audit.csv beside results.csv, if there is one: (rows, path) or (None, None)."""
    path = run_dir / "audit.csv"
    if not path.exists():
        return None, None
    out = []
    for line, rec in _csv_records(path, _read_text(path), AUDIT_COLUMNS, warnings):
        result = rec["result"].strip()
        if result not in AUDIT_RESULTS:
            raise DataError(f"{where(path, line)}: result is {rec['result']!r}; expected yes, no or n/a")
        out.append(AuditRow(line, rec["strategy"].strip(), rec["property"].strip(), result, rec["evidence"]))
    return out, path


def load_run(arg: Path | str) -> Run:
    run_dir, csv_path = resolve_run(arg)
    if not csv_path.exists() and not run_dir.exists():
        raise DataError(f"{arg}: no such run directory or file")
    rows, warnings = read_results(csv_path)
    meta, note = load_meta(run_dir)
    audit, audit_path = load_audit(run_dir, warnings)
    table = meta.get("strategies") if meta else None
    if isinstance(table, list):
        learn_strategy_order(t["name"] for t in table if isinstance(t, dict) and isinstance(t.get("name"), str))
    return Run(run_dir, csv_path, rows, warnings, meta, note, audit, audit_path)


# ---------------------------------------------------------------------------
# Where outputs go, and which run is the latest


def mirror_dir(run_dir: Path) -> Path | None:
    """data/<machine>/<run> -> plots/<machine>/<run>; None when not under data/."""
    parts = Path(os.path.normpath(run_dir)).parts
    if len(parts) >= 3 and parts[-3] == "data":
        return Path(*parts[:-3], "plots", *parts[-2:])
    return None


def output_dir(run: Run, out: str | None) -> Path:
    if out:
        return Path(out)
    mirrored = mirror_dir(run.dir)
    if mirrored is None:
        raise DataError(
            f"{run.dir}: not of the form data/<machine>/<run>, so the plots/ mirror is unknown; pass --out DIR"
        )
    return mirrored


def find_runs(data_dir: Path | str) -> list[Path]:
    """Every data/<machine>/<run> holding a results.csv."""
    data_dir = Path(data_dir)
    return sorted(p.parent for p in data_dir.glob("*/*/results.csv"))


def latest_runs(data_dir: Path | str) -> list[Path]:
    """The latest run of each machine: the lexicographically greatest run dir name."""
    best: dict[str, Path] = {}
    for run in find_runs(data_dir):
        machine = run.parent.name
        if machine not in best or run.name > best[machine].name:
            best[machine] = run
    return [best[m] for m in sorted(best)]


def latest_run(data_dir: Path | str) -> Path | None:
    """The latest run across machines, by run dir name (a UTC timestamp), then machine."""
    runs = find_runs(data_dir)
    return max(runs, key=lambda p: (p.name, p.parent.name)) if runs else None


# ---------------------------------------------------------------------------
# Headline metrics (shared by report.py and compare.py)


@dataclass
class Metric:
    """One headline number per strategy."""

    key: str
    title: str
    unit: str  # "ns" or "x" (a ratio)
    definition: str
    pick: Callable  # (configs of one strategy and core class) -> list of Config (1 or 2), or []
    combine: Callable = None  # medians of the picked samples -> value (default: the one median)
    samples: Callable = None  # picked configs -> one numpy array per config (default: ns_per_op)
    note: Callable = None  # picked configs -> a few words shown beside the value (default: none)

    def __post_init__(self):
        self.combine = self.combine or (lambda meds: meds[0])
        self.samples = self.samples or (lambda cfgs: [c.values() for c in cfgs])
        self.note = self.note or (lambda cfgs: "")


def select(configs, scenario, variant, **fixed):
    """Configs of that scenario and variant matching fixed (values, or predicates on the
    config), smallest other parameters first."""
    out = [c for c in configs if c.scenario == scenario and c.variant == variant]
    for k, v in fixed.items():
        out = [c for c in out if (v(c) if callable(v) else getattr(c, k) == v)]
    return sorted(out, key=param_sort_key)


def _first_with_data(cands):
    ok = [c for c in cands if c.n]
    return [ok[0]] if ok else cands[:1]


def _pick_simple(scenario, variant, **fixed):
    return lambda cfgs: _first_with_data(select(cfgs, scenario, variant, **fixed))


def _pick_mprotect_most_victims(cfgs):
    cands = [c for c in select(cfgs, "mprotect_tlb", "flip", size_bytes=lambda c: c.pages == 1) if c.n]
    if not cands:
        return []
    most = max(c.victims or 0 for c in cands)
    if most == 0:
        return []
    return [next(c for c in cands if (c.victims or 0) == most)]


def _pick_scaling(cfgs):
    cands = [c for c in select(cfgs, "thread_contention", "private") if c.n and c.threads]
    one = [c for c in cands if c.threads == 1]
    if not one or len({c.threads for c in cands}) < 2:
        return []
    most = max(c.threads for c in cands)
    return [next(c for c in cands if c.threads == most), one[0]]


def throughput(cfg: Config) -> np.ndarray:
    """Aggregate ops per second of each ok repetition: threads / ns_per_op * 1e9."""
    return (cfg.threads or 1) / cfg.values() * 1e9


HEADLINE = [
    Metric("flip", "flip round trip", "ns", "toggle_latency/flip: one W->X->W round trip",
           _pick_simple("toggle_latency", "flip")),
    Metric("patch", "verified patch", "ns", "toggle_latency/patch: one patch, executed and checked",
           _pick_simple("toggle_latency", "patch")),
    Metric("mprotect_1p_0v", "mprotect 1 page, 0 victims", "ns", "mprotect_tlb/flip at 1 page, 0 victim threads",
           _pick_simple("mprotect_tlb", "flip", size_bytes=lambda c: c.pages == 1, victims=0)),
    Metric("mprotect_1p_most", "mprotect 1 page, most victims", "ns",
           "mprotect_tlb/flip at 1 page with the most victim threads measured",
           _pick_mprotect_most_victims, note=lambda cfgs: f"{cfgs[0].victims} victim{'' if cfgs[0].victims == 1 else 's'}"),
    Metric("icache_64", "icache flush 64 B", "ns", "icache_flush/builtin over 64 bytes",
           _pick_simple("icache_flush", "builtin", size_bytes=64)),
    Metric("icache_4k", "icache flush 4 KiB", "ns", "icache_flush/builtin over 4096 bytes",
           _pick_simple("icache_flush", "builtin", size_bytes=4096)),
    Metric("scaling", "contention scaling", "x",
           "thread_contention/private: aggregate ops/s at the most threads divided by ops/s at 1 thread",
           _pick_scaling, combine=lambda meds: meds[0] / meds[1], samples=lambda cfgs: [throughput(c) for c in cfgs],
           note=lambda cfgs: f"at {cfgs[0].threads} threads"),
]
HEADLINE_RULE = (
    "Each value is a " + MEDIAN_DEFINITION + ". Where a scenario also swept other parameters, "
    "the configuration with the smallest of them is used (1 thread, 0 victims, batch 1, smallest size)."
)


def metric(key: str) -> Metric:
    """The headline metric of that key."""
    return next(m for m in HEADLINE if m.key == key)


@dataclass
class MetricValue:
    """A headline number (or why there is none) for one strategy."""

    metric: Metric
    configs: list
    value: float | None
    samples: list  # numpy arrays, one per picked config
    status: str  # ok, partial, or the non-ok status
    note: str

    @property
    def n(self) -> int:
        return min((len(s) for s in self.samples), default=0)


def headline_value(metric: Metric, configs: list[Config]) -> MetricValue | None:
    picked = metric.pick(configs)
    if not picked:
        return None
    if any(c.n == 0 for c in picked):
        bad = next(c for c in picked if c.n == 0)
        return MetricValue(metric, picked, None, [], bad.status, "")
    samples = metric.samples(picked)
    value = metric.combine([float(np.median(s)) for s in samples])
    status = "partial" if any(c.status == "partial" for c in picked) else "ok"
    return MetricValue(metric, picked, value, samples, status, metric.note(picked))


def core_text(core: str) -> str:
    """'P cores', 'E cores', or 'core class <name>'."""
    return f"{core} cores" if core in ("P", "E") else f"core class {core}"


def core_classes(configs: Iterable[Config]) -> list[str]:
    return sorted({c.core_class for c in configs}, key=core_class_key)


def headline_table(run: Run, core_class: str) -> dict[str, dict[str, MetricValue]]:
    """strategy -> metric key -> value, for one core class (strategies with no metric left out)."""
    table: dict[str, dict[str, MetricValue]] = {}
    configs = [c for c in run.configs if c.core_class == core_class]
    for strategy in sorted({c.strategy for c in configs}, key=strategy_key):
        mine = [c for c in configs if c.strategy == strategy]
        vals = {m.key: v for m in HEADLINE if (v := headline_value(m, mine)) is not None}
        if vals:
            table[strategy] = vals
    return table


def preferred_core_class(run: Run) -> str | None:
    """P cores where the run has them, else 'any', else whatever there is."""
    classes = core_classes(run.configs)
    return classes[0] if classes else None


# ---------------------------------------------------------------------------
# Formatting


def fmt_bytes(n: int | float) -> str:
    n = int(n)
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def fmt_param(name: str, value) -> str:
    """One parameter as text: '4 threads', '1 victim', 'batch 8', '64 KiB'."""
    if name == "size_bytes":
        return fmt_bytes(value)
    if name == "threads":
        return f"{value} thread{'s' if value != 1 else ''}"
    if name == "victims":
        return f"{value} victim{'s' if value != 1 else ''}"
    if name == "batch":
        return f"batch {value}"
    return f"{name} {value}"


def fmt_sig(x: float, digits: int = 3) -> str:
    """x with `digits` significant digits, no exponent for ordinary magnitudes."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def ns_unit(ns: float) -> tuple[str, float]:
    """The unit that keeps 1-999 before the point for a duration in nanoseconds, and its scale."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            return unit, scale
    return "ns", 1.0


def fmt_ns(ns: float) -> str:
    """A duration in nanoseconds, in the unit that keeps 1-999 before the point."""
    unit, scale = ns_unit(ns)
    return f"{fmt_sig(ns / scale)} {unit}"


def fmt_ns_range(low: float, high: float, like: float) -> str:
    """low–high in the unit fmt_ns gives `like` (so that an interval reads in its median's unit)."""
    unit, scale = ns_unit(like)
    return f"{fmt_sig(low / scale)}–{fmt_sig(high / scale)} {unit}"


def fmt_value(value: float, unit: str) -> str:
    return fmt_ns(value) if unit == "ns" else f"{fmt_sig(value)}×"


# ---------------------------------------------------------------------------
# Command-line plumbing


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def run_main(main: Callable[[], int | None]) -> None:
    """Run a script's main: DataError -> message, exit 2; NoData -> message, exit 0."""
    try:
        status = main()
    except DataError as exc:
        fail(str(exc))
        sys.exit(2)
    except NoData as exc:
        print(str(exc))
        sys.exit(0)
    sys.exit(status or 0)


def run_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser for a script taking one run: RUN_DIR or its results.csv."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("run", metavar="RUN_DIR", help="data/<machine>/<run> or a results.csv path")
    return ap


def open_run(arg: Path | str) -> Run:
    """load_run, then print its warnings and what is missing (meta.json) to stderr."""
    run = load_run(arg)
    print_warnings(run)
    return run


def print_warnings(run: Run) -> None:
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if run.meta_note:
        print(f"note: {run.meta_note}", file=sys.stderr)
