"""SingleStream against our loop, on the main thread and on another: which thread does LoadGen call?

    python benchmarks/loadgen_thread_check.py [openvino,onnxruntime]

ResNet-18, 224 px, CPU fp32, 3 repetitions per backend: our closed loop over what SingleStream
calls per query (4 s) on the main thread, the same loop on a new thread, then LoadGen's
SingleStream (quick rules), which also records the threads its queries arrived on. One line per
repetition on stdout.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions
from resnet_bench.backends.open import open_backend
from resnet_bench.measure.timing import StopRule, measure
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.scenarios.loadgen.settings import QUICK, Load
from resnet_bench.scenarios.loadgen.sut import SystemUnderTest, direct_runner, run_loadgen


def closed_loop(run, images: np.ndarray, seconds: float = 4.0) -> np.ndarray:
    """p50 and p90 (ms) of back-to-back calls for ``seconds``, after 5 warm-up calls."""
    rule = StopRule(warmup_iters=5, warmup_s=0.0, min_iters=1, min_s=seconds, max_s=seconds, target_precision=None)
    return np.percentile(measure(lambda: run(images[:1]), rule).samples_ms, [50, 90])


def on_new_thread(run, images: np.ndarray) -> np.ndarray:
    result = {}
    thread = threading.Thread(target=lambda: result.update(p=closed_loop(run, images)))
    thread.start()
    thread.join()
    return result["p"]


def main() -> None:
    names = (sys.argv[1] if len(sys.argv) > 1 else "openvino,onnxruntime").split(",")
    images = synthetic_images(64, 224, seed=5).numpy()
    exporter = Exporter(ModelSpec(18, input_size=224), ExportOptions(batches=(1,), out=Path("artifacts")))
    logs = Path(tempfile.mkdtemp(prefix="loadgen-thread-check-"))
    for name in names:
        with open_backend(name, BackendOptions("cpu", "fp32"), exporter).backend as backend:
            run = direct_runner(backend)
            for rep in range(3):
                main_p = closed_loop(run, images)
                thread_p = on_new_thread(run, images)
                callers: set[int] = set()

                def probe(batch: np.ndarray, run=run, callers=callers) -> np.ndarray:
                    callers.add(threading.get_ident())
                    return run(batch)

                result = run_loadgen(SystemUnderTest(images, inline=probe),
                                     Load("singlestream", expected_s=main_p[0] / 1e3), QUICK,
                                     logs / f"{name}-{rep}").result
                others = len(callers - {threading.get_ident()})
                print(f"{name} rep {rep}: main p50/p90 {main_p[0]:.2f}/{main_p[1]:.2f}  "
                      f"new thread {thread_p[0]:.2f}/{thread_p[1]:.2f}  LoadGen p50/p90 "
                      f"{result.latency_ms['p50']:.2f}/{result.latency_ms['p90']:.2f} "
                      f"(queries on {others} thread(s) other than the caller's)", flush=True)


if __name__ == "__main__":
    main()
