"""The CLI's output, in one place: rows as a table, JSON, CSV or markdown verdicts, the sweep's
progress bar, and stdout kept for the result.

stdout carries only the result: work runs inside ``stdout_to_stderr()``, so a runtime that
prints (from Python or from C++) cannot break ``--format json | jq``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import sys
from collections.abc import Iterator

import pandas as pd
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile, by Python or by native code, to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        ctypes.CDLL(None).fflush(None)  # C stdio buffers still hold text for fd 1
        os.dup2(saved, 1)
        os.close(saved)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def emit(rows: list[dict], fmt: str, title: str | None = None, columns: list[str] | None = None) -> None:
    if fmt == "json":
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif fmt == "csv":
        pd.DataFrame(rows).to_csv(sys.stdout, index=False)
    elif len(rows) == 1 and columns is None:  # one record reads best as field / value
        table = Table(title=title)
        table.add_column("field")
        table.add_column("value", justify="right")
        for key, value in rows[0].items():
            table.add_row(key, _cell(value))
        Console(width=200).print(table)
    else:
        columns = columns or (list(rows[0]) if rows else [])
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="left" if column in ("variant", "path", "reason",
                                                                  "error", "status") else "right")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        Console(width=200).print(table)


def emit_verdicts(rows: list[dict], fmt: str, title: str, columns: list[str]) -> None:
    """Gate and compare verdicts: as ``emit``, or ``markdown`` (a CI job summary: counts, table)."""
    if fmt == "markdown":
        frame = pd.DataFrame(rows, columns=columns)
        counts = frame.verdict.value_counts().to_dict() if len(frame) else {}
        print(f"### {title}\n\n" + ", ".join(f"{v}: {n}" for v, n in counts.items()) + "\n")
        print(frame.to_markdown(index=False, floatfmt=".4g"))
    else:
        emit(rows, fmt, title=title, columns=columns)


@contextlib.contextmanager
def sweep_progress(total: int) -> Iterator:
    """A live progress bar on stderr; yields ``on_cell(row)``, which advances it by one cell."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("peak GEMM, exports, parity...", total=total)

        def on_cell(row: dict) -> None:
            label = (f"resnet{row['depth']} {row['backend']} {row['precision']} {row['mode']} "
                     f"b{row['batch_size']}: {row['status']}")
            progress.update(task, advance=1, description=label)

        yield on_cell


WIDTH = 100  # the terminal summary fits a 100-column terminal; the full table is results.csv


def _estimate(value, low, high, unit: str, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = f"{value:.{digits}g} {unit}"
    if low is not None and high is not None and low == low and high == high and high != float("inf"):
        text += f" ({low:.{digits}g}-{high:.{digits}g})"
    return text


def run_summary(rows: list[dict], run_dir, sentences: list[str] = ()) -> None:
    """The end of a bench or select run: per depth the fastest configuration (p50 latency) and the
    one of most images/s, each with its interval; how many cells are valid and why the others are
    not; the pick in words; the run folder. Fits in ``WIDTH`` columns."""
    from resnet_bench.measure.validity import codes
    from resnet_bench.select.rules import short_label

    console = Console(width=WIDTH)
    timed = [r for r in rows if r.get("mode") in ("latency", "throughput") and r.get("status") == "ok"]
    valid = [r for r in timed if r.get("valid") in (True, "True")]
    why: dict[str, int] = {}
    for row in timed:
        if row not in valid:
            for code in codes(row.get("invalid_reasons")):
                why[code] = why.get(code, 0) + 1
    failed = [r for r in rows if r.get("status") not in ("ok", None) and r.get("mode") in ("latency", "throughput")]
    states = "; ".join(f"{code} {n}" for code, n in sorted(why.items(), key=lambda kv: -kv[1]))
    title = (f"{len(valid)} of {len(timed)} timed cells valid" + (f" (not valid: {states})" if states else "")
             + (f", {len(failed)} did not run" if failed else ""))
    table = Table(title=title, width=WIDTH, title_justify="left")
    for column in ("depth", "", "configuration", "figure (95% interval)"):
        table.add_column(column, overflow="fold")
    for depth in sorted({r["depth"] for r in timed}):
        mine = [r for r in timed if r["depth"] == depth]
        fastest = min(mine, key=lambda r: r.get("latency_ms_p50") or float("inf"))
        busiest = max(mine, key=lambda r: r.get("images_per_s") or 0)
        for label, row, figure in (
                ("fastest", fastest, _estimate(fastest.get("latency_ms_p50"), fastest.get("latency_ms_p50_low"),
                                               fastest.get("latency_ms_p50_high"), "ms p50")),
                ("most images/s", busiest, _estimate(busiest.get("images_per_s"), busiest.get("images_per_s_low"),
                                                     busiest.get("images_per_s_high"), "images/s"))):
            valid_mark = "" if row.get("valid") in (True, "True") else " (not valid)"
            table.add_row(f"ResNet-{depth}" if label == "fastest" else "", label,
                          f"{short_label(row)}{valid_mark}",
                          figure)
    console.print(table)
    for sentence in sentences:
        console.print(sentence, soft_wrap=False)
    console.print(f"run folder: {run_dir}")


def _finite(value) -> float | None:
    """A number read back from results.csv, None where it is empty (NaN) or not a number."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def race_summary(console: Console, rows: list[dict], rounds: int, percentile: int) -> None:
    """The last round of a ``select`` race: one row per raced candidate (its state, the round it
    left in, its figures and why), then one line per reason for the candidates never raced."""
    table = Table(title=f"the race, round {rounds}", width=WIDTH, title_justify="left")
    for column in ("candidate", "state", "images/s (95%)", f"p{percentile} ms", "why"):
        table.add_column(column, overflow="fold")
    raced = [r for r in rows if r.get("status") != "not_raced"]
    for row in sorted(raced, key=lambda r: -(_finite(r.get("images_per_s")) or 0)):
        rate, low, high = (_finite(row.get(k)) for k in ("images_per_s", "images_per_s_low", "images_per_s_high"))
        interval = f" ({low:.3g}-{high:.3g})" if low is not None and high is not None else ""
        shown = f"{rate:.3g}{interval}" if rate else ""
        latency = _finite(row.get(f"latency_ms_p{percentile}"))
        ended_in = _finite(row.get("race_round"))
        state = (row.get("race_state") or row["status"]) + (f" r{int(ended_in)}" if ended_in else "")
        table.add_row(f"{row['backend']} {row['precision']} {row['mode'][:3]} b{row['batch_size']}", state, shown,
                      f"{latency:.3g}" if latency else "",
                      "" if row.get("race_state") == "picked" else (row.get("race_reason") or ""))
    console.print(table)
    left_out: dict[str, list[str]] = {}  # one line per reason, not a row each
    for row in rows:
        if row.get("status") == "not_raced":
            left_out.setdefault(row.get("race_reason") or "left out", []).append(f"{row['backend']} {row['precision']}")
    for reason, names in left_out.items():
        console.print(f"not raced ({len(names)} candidates: {', '.join(sorted(set(names)))}): {reason}")
