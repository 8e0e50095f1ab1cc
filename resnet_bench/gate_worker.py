"""One side of one gate round: a fresh process that opens one cell at a time and times blocks.

The gate runs this file (its own copy, so both sides speak the same protocol) with one
source tree first on the path: everything it imports (model, exporters, backends, timing)
is that tree's. Commands are JSON lines on stdin; answers JSON lines on the original stdout
(anything a library prints goes to stderr, which the gate keeps for its error messages):

    {"op": "open", "cell": {...}, "warmup_iters": w, "warmup_s": s}
        -> {"ok": true, "probe_ms": m, "open_s": s}  (loaded; warmed up by at least w calls and
           s seconds; m: the median of the last 3 warm-up calls)
        -> {"ok": false, "status": "unavailable" | "error", "error": "one line"}
    {"op": "block", "k": k}    -> {"ok": true, "median_ms": m}  (exactly k timed calls)
    {"op": "close"}            -> {"ok": true}
    {"op": "quit"}
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

PROBE_CALLS = 3  # the last warm-up calls, whose median sizes the blocks
NO_LIMIT_S = 1e9


class Cell:
    """One opened backend with its prepared input."""

    def __init__(self, cell: dict, artifacts: Path, exporters: dict) -> None:
        from exporters.pipeline import Exporter, ExportOptions
        from resnet_bench.backends import BackendOptions
        from resnet_bench.model import synthetic_images
        from resnet_bench.runner import open_backend
        from resnet_bench.spec import ModelSpec

        model = (cell["depth"], cell["input_size"])
        if model not in exporters:  # one exporter per model: the torch cells build it once per process
            exporters[model] = Exporter(ModelSpec(cell["depth"], input_size=cell["input_size"]),
                                        ExportOptions(out=artifacts))
        options = BackendOptions(cell["device"], cell["precision"])
        self.backend = open_backend(cell["backend"], options, exporters[model]).backend
        images = synthetic_images(cell["batch_size"], cell["input_size"], seed=5).numpy()
        self.x = self.backend.prepare(images)

    def time(self, calls: int, min_s: float = 0.0) -> np.ndarray:
        """At least ``calls`` calls and ``min_s`` seconds; with min_s = 0 exactly ``calls`` (the
        fixed-count rule of resnet_bench.timing.measure)."""
        from resnet_bench.timing import StopRule, measure

        rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=calls, min_s=min_s, max_s=NO_LIMIT_S)
        return measure(lambda: self.backend.run(self.x), rule, self.backend.sync).samples_ms


def answer(command: dict, artifacts: Path, state: dict) -> dict:
    op = command["op"]
    if op == "open":
        start = time.perf_counter()
        state["cell"] = Cell(command["cell"], artifacts, state.setdefault("exporters", {}))
        warmup = state["cell"].time(max(command["warmup_iters"], PROBE_CALLS), command["warmup_s"])
        return {"ok": True, "probe_ms": float(np.median(warmup[-PROBE_CALLS:])), "open_s": time.perf_counter() - start}
    if op == "block":
        return {"ok": True, "median_ms": float(np.median(state["cell"].time(command["k"])))}
    if op == "close":
        cell = state.pop("cell", None)
        if cell is not None:
            cell.backend.close()
        return {"ok": True}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")  # answers only; stray prints from libraries go to stderr
    os.dup2(2, 1)
    artifacts = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts")
    state: dict = {}
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        try:
            reply = answer(command, artifacts, state)
        except Exception as exc:  # answered, so the gate can make it a row
            from resnet_bench.backends import BackendUnavailable

            status = "unavailable" if isinstance(exc, BackendUnavailable) else "error"
            reply = {"ok": False, "status": status, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            traceback.print_exc()  # the gate shows the tail of stderr with the error
            state.pop("cell", None)
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
