"""The one row builder: every row of every command (sweep cells, LoadGen scenarios, ``time``,
failures) is made here, so a row's identity, its MACs and GFLOP/s, its roof fraction and what
the runtime reported are computed one way.

    row = measured_row(cell, run, stats=..., images_per_s=..., reasons=..., runtime=backend.describe())
    row = failure_row(cell, run, exc)          # status and one-line reason from the exception
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from resnet_bench.model.architecture import PAPER_GMACS, count_macs
from resnet_bench.util.errors import status_of

# What identifies a cell; its id is these joined by "-".
KEY = ("depth", "variant", "backend", "precision", "device", "mode", "batch_size", "input_size")
# What the backend reports it ran with (``Backend.describe()``), copied into the row as is.
RUNTIME_REPORTED = ("executed_precision", "threads", "in_flight", "threads_per_request", "streams",
                    "compile_graphs", "graph_breaks", "recompiles")


@dataclass(frozen=True)
class Run:
    """What every row of one run shares."""

    run_id: str
    fingerprint_id: str = ""
    git_commit: str | None = None  # the code that produced the rows (machine.fingerprint.provenance)
    git_dirty: bool | None = None

    @classmethod
    def of(cls, run_id: str, fingerprint: dict) -> Run:
        """A run's context from its fingerprint (``machine.fingerprint.collect()``)."""
        return cls(run_id, fingerprint.get("fingerprint_id", ""), fingerprint.get("git_commit"),
                   fingerprint.get("git_dirty"))


def cell_id(row: dict) -> str:
    return "-".join(str(row[k]) for k in KEY).replace("/", "_")


def gmacs(cell: dict) -> float:
    """Analytic multiply-adds per image of the cell's model, in 1e9."""
    return count_macs(cell["depth"], cell["variant"], cell["input_size"]) / 1e9


def base_row(cell: dict, run: Run, **values) -> dict:
    """The cell's key and id, the run, the model's MACs and the paper's figure, then ``values``."""
    return {**cell, "run_id": run.run_id, "cell_id": cell_id(cell), "gmacs": gmacs(cell),
            "paper_gmacs": PAPER_GMACS[cell["depth"]], "fingerprint_id": run.fingerprint_id,
            "git_commit": run.git_commit, "git_dirty": run.git_dirty, **values}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def measured_row(cell: dict, run: Run, *, images_per_s: float | None, reasons: list[str], status: str = "ok",
                 error: str = "", stats: dict | None = None, runtime: dict | None = None,
                 peak_gflops: float | None = None, **values) -> dict:
    """A cell that ran. achieved GFLOP/s = 2 x GMACs x images/s (when images/s is a number), its
    fraction of the same-run roof when one is given; valid when no reason says otherwise."""
    row = base_row(cell, run, **(stats or {}), **values, images_per_s=images_per_s, status=status, error=error,
                   valid=not reasons, invalid_reasons="; ".join(reasons), peak_gflops=peak_gflops)
    if _finite(images_per_s):
        row["achieved_gflops"] = 2 * row["gmacs"] * images_per_s
        if peak_gflops:
            row["roofline_fraction"] = row["achieved_gflops"] / peak_gflops
    if runtime is not None:
        row.update({key: runtime.get(key) for key in RUNTIME_REPORTED},
                   compute_precision=runtime.get("compute_precision"), provider=runtime.get("provider"))
        compiled = runtime.get("compile_s")
        if isinstance(compiled, dict) and compiled:  # a compiling backend: what this batch's compile cost
            row.update(compile_s=compiled.get(cell["batch_size"]), compile_mode=runtime.get("compile_mode"))
    return row


def failure_row(cell: dict, run: Run, exc: BaseException | None = None, *, status: str | None = None,
                error: str | None = None, **values) -> dict:
    """A cell that did not run: its status and one-line reason from ``exc`` (``status_of``), or
    as given; never valid."""
    if exc is not None:
        status, error = status_of(exc)
    return base_row(cell, run, **values, status=status, error=error, valid=False)
