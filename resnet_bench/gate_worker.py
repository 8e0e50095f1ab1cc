"""One side of the PR gate: a long-lived process that times blocks when asked.

The gate starts one of these per source tree (base and head, each on its own PYTHONPATH) and
sends JSON lines on stdin; answers come back as JSON lines on stdout:

    {"op": "open", "cell": {...}}          -> {"ok": true, "seconds_per_call": s}
    {"op": "block", "cell": {...}, "k": k} -> {"ok": true, "median_ms": m}
    {"op": "quit"}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _key(cell: dict) -> str:
    return json.dumps(cell, sort_keys=True)


def main() -> None:
    from exporters.pipeline import Exporter, ExportOptions
    from resnet_bench.backends import BackendOptions
    from resnet_bench.model import synthetic_images
    from resnet_bench.runner import open_backend
    from resnet_bench.spec import ModelSpec

    artifacts = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("artifacts")
    opened: dict[str, tuple] = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "quit":
                break
            cell = command["cell"]
            key = _key(cell)
            if command["op"] == "open" and key not in opened:
                spec = ModelSpec(cell["depth"], input_size=cell["input_size"])
                exporter = Exporter(spec, ExportOptions(out=artifacts))
                backend = open_backend(cell["backend"], BackendOptions(cell["device"], cell["precision"]),
                                       exporter).backend
                x = backend.prepare(synthetic_images(cell["batch_size"], cell["input_size"], seed=5).numpy())
                for _ in range(10):  # warm-up, untimed
                    backend.run(x)
                    backend.sync()
                opened[key] = (backend, x)
            backend, x = opened[key]
            k = command.get("k", 5)
            samples = []
            for _ in range(k):
                t0 = time.perf_counter_ns()
                backend.run(x)
                backend.sync()
                samples.append((time.perf_counter_ns() - t0) / 1e6)
            answer = {"ok": True, "median_ms": float(np.median(samples))}
        except Exception as exc:  # answered, so the gate can make it a row
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
