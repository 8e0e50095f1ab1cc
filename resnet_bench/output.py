"""Print a list of row dicts as a table, JSON or CSV: the one place the CLI formats output.

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
