"""The one results table (rich on a terminal, plain text otherwise, or Markdown) and JSON."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.scenarios import Metric, RunResult, Scenario
from bench.stats import median

HEADERS = ("scenario", "metric", "median", "all runs", "target", "pass/fail")


@dataclass(slots=True)
class ScenarioResults:
    """Every run of one scenario: results, errors that stopped runs, or why it was skipped."""

    scenario: Scenario
    runs: list[RunResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None

    def values(self, metric: Metric) -> list[float]:
        return [run.metrics.get(metric.name, math.nan) for run in self.runs]

    def median(self, metric: Metric) -> float:
        return median(self.values(metric))


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _target(metric: Metric) -> str:
    if metric.target is None:
        return ""
    sign = ">=" if metric.higher_is_better else "<="
    return f"{sign} {_num(metric.target)}"


def _label(metric: Metric) -> str:
    return metric.name if metric.unit in metric.name else f"{metric.name} ({metric.unit})"


def rows(results: list[ScenarioResults]) -> list[tuple[str, ...]]:
    """The table's rows, one per metric (a skipped or failed scenario gets one row saying so)."""
    out: list[tuple[str, ...]] = []
    for res in results:
        name = res.scenario.name
        if res.skipped is not None:
            out.append((name, "skipped", "", "", "", res.skipped.splitlines()[0]))
            continue
        if not res.runs:
            out.append((name, "error", "", "", "", "FAIL (no run completed)"))
            continue
        for metric in res.scenario.metrics:
            mid = res.median(metric)
            verdict = metric.passes(mid)
            runs = ", ".join(_num(v) for v in res.values(metric))
            status = "" if verdict is None else ("pass" if verdict else "FAIL")
            out.append((name, _label(metric), _num(mid), runs, _target(metric), status))
        if res.errors:
            out.append((name, "errors", "", "", "", f"FAIL ({len(res.errors)} run(s) failed)"))
    return out


OTHER_CPU_WARN = 10.0
"""Above this share of one core used by other processes during a run, the table warns."""


def notes(results: list[ScenarioResults]) -> list[str]:
    out = [f"{r.scenario.name}: {r.scenario.note}" for r in results if r.skipped is None]
    for res in results:
        other = [float(r.info.get("other_cpu_percent", 0.0)) for r in res.runs]
        if any(v > OTHER_CPU_WARN for v in other):
            shown = ", ".join(f"{v:.0f}%" for v in other)
            out.append(
                f"WARNING {res.scenario.name}: other processes used {shown} of a core during "
                "the runs; those figures are pessimistic (rates low, latencies high)"
            )
    return out


def print_table(results: list[ScenarioResults], title: str, console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 132)
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="right" if 2 <= i <= 4 else "left", no_wrap=i < 3)
    previous = ""
    for row in rows(results):
        if previous and row[0] != previous:
            table.add_section()
        previous = row[0]
        table.add_row(*row)
    console.print(table)
    for note in notes(results):
        console.print(f"  {note}", highlight=False)


def markdown(results: list[ScenarioResults], title: str) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(HEADERS) + " |"]
    lines.append("|" + "|".join(["---", "---", "---:", "---:", "---:", "---"]) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows(results)]
    lines.append("")
    lines += [f"- {note}" for note in notes(results)]
    return "\n".join(lines) + "\n"


def to_json(
    results: list[ScenarioResults], machine: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    def metric_json(res: ScenarioResults, m: Metric) -> dict[str, Any]:
        mid = res.median(m)
        return {
            "unit": m.unit,
            "median": None if math.isnan(mid) else mid,
            "runs": res.values(m),
            "target": m.target,
            "higher_is_better": m.higher_is_better,
            "pass": m.passes(mid),
        }

    return {
        "machine": machine,
        "options": options,
        "scenarios": {
            res.scenario.name: {
                "note": res.scenario.note,
                "skipped": res.skipped,
                "errors": res.errors,
                "metrics": {m.name: metric_json(res, m) for m in res.scenario.metrics}
                if res.runs
                else {},
                "runs": [{"metrics": r.metrics, "info": r.info} for r in res.runs],
            }
            for res in results
        },
    }


def _finite(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(data), indent=2, default=str, allow_nan=False) + "\n")
