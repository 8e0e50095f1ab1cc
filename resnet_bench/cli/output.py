"""The CLI's output, in one place: rows as a table, JSON, CSV or markdown verdicts, the sweep's
progress bar, and stdout kept for the result.

stdout carries only the result: work runs inside ``stdout_to_stderr()``, so a runtime that
prints (from Python or from C++) cannot break ``--format json | jq``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
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
