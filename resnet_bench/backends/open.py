"""Open a backend on a model spec: get its artifact from the store, load it, time both."""

from __future__ import annotations

import time
from dataclasses import dataclass

from exporters.pipeline import Exporter
from resnet_bench.backends import Backend, BackendOptions, BackendUnavailable, backend_class
from resnet_bench.numerics import precision as precision_table


def artifact_precision(backend: str, device: str, precision: str) -> str | None:
    """Which artifact precision a backend precision runs from (the precision table's column):
    bf16 and tf32 are compute precisions chosen at load / build time from fp32 weights."""
    return precision_table.require(backend, device, precision).artifact


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
    spec = precision_table.require(name, options.device, options.precision)
    backend = cls(options)
    if cls.target is None:
        source, export_s, cached, path = exporter.model(), 0.0, True, None
    else:
        if cls.target == "tensorrt":  # an engine per TF32 setting, with one profile set per context
            artifact = exporter.tensorrt(spec.artifact, tf32=bool(spec.tf32), contexts=backend.contexts())
        else:
            artifact = getattr(exporter, cls.target)(spec.artifact)
        source, export_s, cached, path = artifact.path, artifact.export_s, artifact.cached, str(artifact.path)
    start = time.perf_counter()
    backend.load(source)
    return Opened(backend, export_s, cached, time.perf_counter() - start, path)
