"""One side of one gate round: a fresh process that opens one cell at a time and times blocks.

The gate runs this file (its own copy, so both sides speak the same protocol) with one
source tree first on the path: everything it imports (model, exporters, backends, timing)
is that tree's. That tree may be a base from before the sub-packages (the flat layout up to
commit 512fa07): ``_project`` finds each piece where the tree keeps it, so a base never reads
``unavailable`` only because its modules sit elsewhere. Commands are JSON lines on stdin;
answers JSON lines on the original stdout (anything a library prints goes to stderr, which the
gate keeps for its error messages):

    {"op": "open", "cell": {...}, "warmup_iters": w, "warmup_s": s}  (a cell of backend
                                  "service-time" and "service_ms": t opens the backend of known
                                  service time: no model, no export)
        -> {"ok": true, "probe_ms": m, "open_s": s}  (loaded; warmed up by at least w calls and
           s seconds; m: the median of the next 3 calls)
        -> {"ok": false, "status": "unavailable" | "error", "error": "one line"}
    {"op": "block", "k": k}    -> {"ok": true, "median_ms": m, "images_per_s": r}  (exactly k timed
                                  calls; a throughput-mode cell: k calls on each of its request
                                  streams at once, r its images per second over the block; with
                                  "samples": true, also "samples_ms", every latency)
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
        if cell["backend"] == "service-time":  # no model: a known service time (the gate's own tests)
            self._service_time(cell)
            return
        p = self.p = _project()
        model = (cell["depth"], cell["input_size"])
        if model not in exporters:  # one exporter per model: the torch cells build it once per process
            exporters[model] = p.Exporter(p.ModelSpec(cell["depth"], input_size=cell["input_size"]),
                                          p.ExportOptions(out=artifacts))
        self.batch, self.mode = cell["batch_size"], cell.get("mode", "latency")
        options = p.BackendOptions(cell["device"], cell["precision"], mode=self.mode)
        self.backend = p.open_backend(cell["backend"], options, exporters[model]).backend
        images = p.synthetic_images(cell["batch_size"], cell["input_size"], seed=5).numpy()
        self.x = self.backend.prepare(images)
        if self.mode == "throughput":  # the request streams, made once (this layout's Backend.streams)
            self.streams = self.backend.streams(self.x)

    def _service_time(self, cell: dict) -> None:
        from resnet_bench.backends.service_time import ServiceTimeBackend
        from resnet_bench.measure.timing import StopRule, measure

        self.p = SimpleNamespace(StopRule=StopRule, measure=measure)
        self.batch, self.mode = cell["batch_size"], "latency"
        self.backend = ServiceTimeBackend(service_s=cell["service_ms"] / 1e3)
        self.x = self.backend.prepare(np.zeros((self.batch, 3, 2, 2)))

    def time(self, calls: int, warmup_iters: int = 0, warmup_s: float = 0.0) -> tuple[np.ndarray, float]:
        """Exactly ``calls`` timed calls after the given warm-up (the one timing function's
        fixed-count rule: no precision target, no time limit): the latencies (ms) and images/s."""
        if self.mode == "throughput":
            return self._concurrent(calls, warmup_iters, warmup_s)
        rule = self.p.StopRule(warmup_iters=warmup_iters, warmup_s=warmup_s, min_iters=calls, min_s=0.0,
                               max_s=NO_LIMIT_S)
        samples = self.p.measure(lambda: self.backend.run(self.x), rule, self.backend.sync).samples_ms
        return samples, self.batch * 1e3 * len(samples) / float(np.sum(samples))

    def _concurrent(self, calls: int, warmup_iters: int, warmup_s: float) -> tuple[np.ndarray, float]:
        """``calls`` requests on every stream at once, after the warm-up done the same way."""
        begin = time.perf_counter()
        while warmup_iters > 0 or time.perf_counter() - begin < warmup_s:
            self._streams_run(max(1, warmup_iters))
            warmup_iters = 0
        return self._streams_run(calls)

    def _streams_run(self, calls: int) -> tuple[np.ndarray, float]:
        import threading

        latencies: list[list[float]] = [[] for _ in self.streams]

        def loop(index: int) -> None:
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                self.streams[index]()
                latencies[index].append((time.perf_counter_ns() - t0) / 1e6)

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(self.streams))]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        return np.concatenate(latencies), self.batch * calls * len(self.streams) / wall


def answer(command: dict, artifacts: Path, state: dict) -> dict:
    op = command["op"]
    if op == "open":
        start = time.perf_counter()
        state["cell"] = Cell(command["cell"], artifacts, state.setdefault("exporters", {}))
        probe, _ = state["cell"].time(PROBE_CALLS, command["warmup_iters"], command["warmup_s"])
        return {"ok": True, "probe_ms": float(np.median(probe)), "open_s": time.perf_counter() - start}
    if op == "block":
        samples, rate = state["cell"].time(command["k"])
        reply = {"ok": True, "median_ms": float(np.median(samples)), "images_per_s": rate}
        if command.get("samples"):  # every latency of the block (a race's rows are made of them)
            reply["samples_ms"] = [round(float(x), 5) for x in samples]
        return reply
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
