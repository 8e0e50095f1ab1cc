"""Run folders on disk: one row per cell, written as soon as the cell finishes.

``results/runs/<run-id>/``: ``results.csv`` (and ``results.parquet`` when pyarrow is present),
``samples/<cell>.json`` (every timed sample), ``fingerprint.json``. Every write goes to a
temporary file, is fsynced and renamed, so a killed sweep loses no finished cell.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd

from resnet_bench.machine import fingerprint as fp
from resnet_bench.results.schema import SCHEMA_VERSION, column_names
from resnet_bench.util.files import write_atomic

COLUMNS = column_names()


class RunWriter:
    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        (self.dir / "samples").mkdir(parents=True, exist_ok=True)
        self.csv = self.dir / "results.csv"
        self.rows: list[dict] = load(self.dir).to_dict("records") if self.csv.exists() else []

    def done(self) -> set[str]:
        return {row["cell_id"] for row in self.rows}

    def add(self, row: dict, samples_ms: list[float] | None = None) -> None:
        if samples_ms is not None:
            write_atomic(self.dir / "samples" / f"{row['cell_id']}.json",
                         json.dumps({"cell_id": row["cell_id"], "samples_ms": samples_ms}))
        row = {**row, "schema_version": SCHEMA_VERSION}
        self.rows.append({column: row.get(column) for column in COLUMNS})
        write_atomic(self.csv, pd.DataFrame(self.rows, columns=COLUMNS).to_csv(index=False))

    def rewrite(self) -> None:
        """Write every row again (after a column was corrected for the whole run)."""
        write_atomic(self.csv, pd.DataFrame(self.rows, columns=COLUMNS).to_csv(index=False))

    def finish(self) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return
        load(self.dir).to_parquet(self.dir / "results.parquet", index=False)


def load(path: str | os.PathLike) -> pd.DataFrame:
    """A run directory (or its results.csv) as a DataFrame, one row per cell.

    Rows without ``schema_version`` (written before it existed) are version 1; a file with
    rows newer than this code's schema is refused (its columns may mean something else)."""
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.is_file():
        raise ValueError(f"no results.csv in {path}")
    frame = pd.read_csv(csv, keep_default_na=True).astype({"valid": "boolean"}, errors="ignore")
    versions = frame.get("schema_version", pd.Series(dtype=float)).reindex(frame.index).fillna(1).astype(int)
    newest = int(versions.max()) if len(versions) else 1
    if newest > SCHEMA_VERSION:
        raise ValueError(f"{csv} has results schema version {newest}; this resnet-bench reads up to "
                         f"{SCHEMA_VERSION}: update it")
    return frame.assign(schema_version=versions)


def is_true(values: pd.Series) -> pd.Series:
    """A boolean column as read back from CSV: bool, 1.0 (beside empty cells of other rows) or text."""
    return values.map(lambda v: str(v) in ("True", "true", "1", "1.0")).astype(bool)


def load_samples(run_dir: str | os.PathLike, cell: str) -> list[float]:
    return json.loads((Path(run_dir) / "samples" / f"{cell}.json").read_text())["samples_ms"]


def new_run_dir(root: Path, device: str) -> Path:
    """``<root>/<date-time>-<device>-<fingerprint>``: a run folder's name says when and where."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{device}-{fp.collect()['fingerprint_id'][:6]}"


def start(config, run_dir: Path) -> None:
    """Create the run folder with the command's config (``config.to_json()``) and the fingerprint."""
    run_dir.mkdir(parents=True, exist_ok=False)
    write_atomic(run_dir / "config.json", json.dumps(config.to_json(), indent=2))
    write_atomic(run_dir / "fingerprint.json", json.dumps(fp.collect(), indent=2))
