"""Open a backend on a model spec: get its artifact from the store, load it, time both."""

from __future__ import annotations

import time
from dataclasses import dataclass

from exporters.pipeline import Exporter
from resnet_bench.backends import Backend, BackendOptions, BackendUnavailable, backend_class

# Which artifact precision a backend precision runs from. bf16 is a compute precision
# chosen at load time from fp32 weights; int8 runs a quantized artifact (QDQ ONNX, NNCF IR).
ARTIFACT_PRECISION = {"fp32": "fp32", "fp16": "fp16", "bf16": "fp32", "int8": "int8"}


@dataclass
class Opened:
    backend: Backend
    export_s: float  # the artifact's export time (from its manifest when cached)
    export_cached: bool
    load_s: float  # session creation / compilation, never inside a timed region
    artifact: str | None


def open_backend(name: str, options: BackendOptions, exporter: Exporter) -> Opened:
    """Raise BackendUnavailable (with the reason) when the backend cannot run here."""
    cls = backend_class(name)
    reason = cls.unavailable_reason(options)
    if reason:
        raise BackendUnavailable(reason)
    if cls.target is None:
        source, export_s, cached, path = exporter.model(), 0.0, True, None
    else:
        artifact = getattr(exporter, cls.target)(ARTIFACT_PRECISION[options.precision])
        source, export_s, cached, path = artifact.path, artifact.export_s, artifact.cached, str(artifact.path)
    backend = cls(options)
    start = time.perf_counter()
    backend.load(source)
    return Opened(backend, export_s, cached, time.perf_counter() - start, path)
