"""What runs on a fleet node: one group of cells (a depth x backend x precision) as a sweep, in a
fresh process, its rows streamed back to the driver as each cell finishes.

The node builds its own artifacts (a content-addressed store per node, ``artifacts``: TensorRT
engines are per GPU anyway) and runs parity there. Its thread count is set explicitly from the
CPUs Ray assigned the task (all of the node's: nothing else runs beside a timed cell).
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
from pathlib import Path


def run_group(config_json: dict, group: dict, cells: list[str], artifacts: str):
    """A generator (Ray streams what it yields): first ``{"node": ...}`` (id, fingerprint, CPUs), then
    ``{"row": ..., "samples": [...]}`` per cell as it finishes, last ``{"phases": ...}``."""
    import ray

    from resnet_bench.machine import fingerprint as fp
    from resnet_bench.sweep.config import SweepConfig
    from resnet_bench.sweep.sweep import Sweep

    context = ray.get_runtime_context()
    cpus = max(1, int(context.get_assigned_resources().get("CPU", 1)))
    yield {"node": {"node_id": context.get_node_id(), "fingerprint": fp.collect(), "cpus": cpus}}
    config = SweepConfig.from_json({**config_json, "depths": [group["depth"]], "backends": [group["backend"]],
                                    "precisions": [group["precision"]], "threads": cpus, "artifacts": artifacts,
                                    "loadgen": []})
    run_dir = Path(tempfile.mkdtemp(prefix="resnet-bench-fleet-")) / "run"
    finished: queue.Queue = queue.Queue()
    sweep = Sweep(config, run_dir, on_cell=finished.put, only=set(cells))
    failure: list[BaseException] = []

    def work() -> None:
        try:
            sweep.run()
        except BaseException as exc:  # handed to the driver as this group's error
            failure.append(exc)
        finally:
            finished.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while (row := finished.get()) is not None:
        path = run_dir / "samples" / f"{row['cell_id']}.json"
        samples = json.loads(path.read_text())["samples_ms"] if path.is_file() else None
        yield {"row": row, "samples": samples}
    thread.join()
    if failure:
        from resnet_bench.util.errors import first_line

        yield {"error": first_line(failure[0])}
    yield {"final": [{**r} for r in sweep.writer.rows], "phases": sweep.phases}  # the rows against the run's best roof
