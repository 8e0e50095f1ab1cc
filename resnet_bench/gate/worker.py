"""One side of one gate round: a fresh process that opens one cell at a time and times blocks.

The gate runs this file (its own copy, so both sides speak the same protocol) with one
source tree first on the path: everything it imports (model, exporters, backends, timing)
is that tree's. That tree may be a base from before the sub-packages (the flat layout up to
commit 512fa07): ``_project`` finds each piece where the tree keeps it, so a base never reads
``unavailable`` only because its modules sit elsewhere. Commands are JSON lines on stdin;
answers JSON lines on the original stdout (anything a library prints goes to stderr, which the
gate keeps for its error messages):

    {"op": "open", "cell": {...}, "warmup_iters": w, "warmup_s": s}
        -> {"ok": true, "probe_ms": m, "open_s": s}  (loaded; warmed up by at least w calls and
           s seconds; m: the median of the next 3 calls)
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
from types import SimpleNamespace

import numpy as np

PROBE_CALLS = 3  # timed after the warm-up; their median sizes the blocks
NO_LIMIT_S = 1e9


def _project() -> SimpleNamespace:
    """The pieces the worker needs, from this layout or from the flat one before it."""
    from exporters.pipeline import Exporter, ExportOptions
    from resnet_bench.backends import BackendOptions, BackendUnavailable

    try:
        from resnet_bench.backends.open import open_backend
        from resnet_bench.measure.timing import StopRule, measure
        from resnet_bench.model.images import synthetic_images
        from resnet_bench.model.spec import ModelSpec
    except ImportError:  # a base tree from before the sub-packages
        from resnet_bench.model import synthetic_images
        from resnet_bench.runner import open_backend
        from resnet_bench.spec import ModelSpec
        from resnet_bench.timing import StopRule, measure
    return SimpleNamespace(Exporter=Exporter, ExportOptions=ExportOptions, BackendOptions=BackendOptions,
                           BackendUnavailable=BackendUnavailable, open_backend=open_backend, StopRule=StopRule,
                           measure=measure, synthetic_images=synthetic_images, ModelSpec=ModelSpec)


class Cell:
    """One opened backend with its prepared input."""

    def __init__(self, cell: dict, artifacts: Path, exporters: dict) -> None:
        p = self.p = _project()
        model = (cell["depth"], cell["input_size"])
        if model not in exporters:  # one exporter per model: the torch cells build it once per process
            exporters[model] = p.Exporter(p.ModelSpec(cell["depth"], input_size=cell["input_size"]),
                                          p.ExportOptions(out=artifacts))
        options = p.BackendOptions(cell["device"], cell["precision"])
        self.backend = p.open_backend(cell["backend"], options, exporters[model]).backend
        images = p.synthetic_images(cell["batch_size"], cell["input_size"], seed=5).numpy()
        self.x = self.backend.prepare(images)

    def time(self, calls: int, warmup_iters: int = 0, warmup_s: float = 0.0) -> np.ndarray:
        """Exactly ``calls`` timed calls after the given warm-up (the one timing function's
        fixed-count rule: no precision target, no time limit)."""
        rule = self.p.StopRule(warmup_iters=warmup_iters, warmup_s=warmup_s, min_iters=calls, min_s=0.0,
                               max_s=NO_LIMIT_S)
        return self.p.measure(lambda: self.backend.run(self.x), rule, self.backend.sync).samples_ms


def answer(command: dict, artifacts: Path, state: dict) -> dict:
    op = command["op"]
    if op == "open":
        start = time.perf_counter()
        state["cell"] = Cell(command["cell"], artifacts, state.setdefault("exporters", {}))
        probe = state["cell"].time(PROBE_CALLS, command["warmup_iters"], command["warmup_s"])
        return {"ok": True, "probe_ms": float(np.median(probe)), "open_s": time.perf_counter() - start}
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
            unavailable = type(exc).__name__ == "BackendUnavailable"  # either layout's class
            reply = {"ok": False, "status": "unavailable" if unavailable else "error",
                     "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            traceback.print_exc()  # the gate shows the tail of stderr with the error
            state.pop("cell", None)
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
