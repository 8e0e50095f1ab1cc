"""Result runs on disk: one row per cell, written as soon as the cell finishes.

``results/runs/<run-id>/``: ``results.csv`` (and ``results.parquet`` when pyarrow is present),
``samples/<cell>.json`` (every timed sample), ``fingerprint.json``. Every write goes to a
temporary file, is fsynced and renamed, so a killed sweep loses no finished cell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

COLUMNS = [
    "run_id", "cell_id", "depth", "variant", "backend", "precision", "device", "mode", "batch_size",
    "input_size", "iterations", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
    "latency_ms_mean", "latency_ms_std", "latency_ms_min", "latency_ms_max", "cv", "images_per_s",
    "gmacs", "paper_gmacs", "achieved_gflops", "peak_gflops", "roofline_fraction", "parity_status",
    "rel_l2_err", "top1_agreement", "threads", "in_flight", "threads_per_request", "streams",
    "compile_graphs", "graph_breaks", "recompiles", "compute_precision", "provider",
    "export_s", "export_cached", "load_s", "valid", "invalid_reasons", "status", "error",
    "fingerprint_id", "cuda_graphs", "host_peak_rss_mb", "gpu_sm_clock_mhz", "gpu_mem_clock_mhz", "gpu_power_w",
    "gpu_temp_c", "gpu_mem_used_mb", "energy_per_image_j", "gpu_throttle", "telemetry_note",
]
KEY = ("depth", "variant", "backend", "precision", "device", "mode", "batch_size", "input_size")


def cell_id(row: dict) -> str:
    return "-".join(str(row[k]) for k in KEY).replace("/", "_")


def write_atomic(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
        self.rows.append({column: row.get(column) for column in COLUMNS})
        write_atomic(self.csv, pd.DataFrame(self.rows, columns=COLUMNS).to_csv(index=False))

    def finish(self) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return
        load(self.dir).to_parquet(self.dir / "results.parquet", index=False)


def load(path: str | os.PathLike) -> pd.DataFrame:
    """A run directory (or its results.csv) as a DataFrame, one row per cell."""
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.is_file():
        raise ValueError(f"no results.csv in {path}")
    return pd.read_csv(csv, keep_default_na=True).astype({"valid": "boolean"}, errors="ignore")


def load_samples(run_dir: str | os.PathLike, cell: str) -> list[float]:
    return json.loads((Path(run_dir) / "samples" / f"{cell}.json").read_text())["samples_ms"]
