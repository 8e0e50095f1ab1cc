"""Single-stream latency per depth x batch x CPU backend, as pytest-benchmark measures it.

The target is the same synchronised call the harness times (``run`` then ``sync``); warm-up
rounds come first, untimed. Parity is not judged here: that is ``resnet-bench parity``.
"""

import numpy as np
import pytest

from benchmarks.conftest import DEPTHS, INPUT_SIZE
from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions, BackendUnavailable
from resnet_bench.backends.open import open_backend
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.spec import ModelSpec

_EXPORTERS: dict[int, Exporter] = {}


def exporter_for(depth: int, artifacts) -> Exporter:
    if depth not in _EXPORTERS:
        _EXPORTERS[depth] = Exporter(ModelSpec(depth, input_size=INPUT_SIZE), ExportOptions(out=artifacts))
    return _EXPORTERS[depth]


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("backend_name", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_latency(benchmark, artifacts_dir, depth, backend_name, batch):
    try:
        opened = open_backend(backend_name, BackendOptions("cpu"), exporter_for(depth, artifacts_dir))
    except BackendUnavailable as exc:
        pytest.skip(f"{backend_name}: {exc}")
    with opened.backend as backend:
        prepared = backend.prepare(synthetic_images(batch, INPUT_SIZE, seed=5).numpy())

        def target():
            output = backend.run(prepared)
            backend.sync()
            return output

        benchmark.group = f"resnet{depth} batch {batch}"
        benchmark.extra_info.update(depth=depth, batch_size=batch, backend=backend_name,
                                    input_size=INPUT_SIZE, **backend.describe())
        logits = backend.fetch(benchmark.pedantic(target, rounds=30, warmup_rounds=20, iterations=1))
    # the timed call is the whole inference: a class score per image, all finite
    assert logits.shape == (batch, 1000) and np.isfinite(logits).all()
