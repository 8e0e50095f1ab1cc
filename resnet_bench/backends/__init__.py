"""The backends: one module per runtime behind one lifecycle (``base``: load, prepare, run,
sync, fetch, close; request streams), one registry (here), and opening a backend on a model
spec: its artifact from the store, loaded, both timed (``open``). ``service_time`` is a backend
of known service time that does no inference, to test the measuring machinery against
arithmetic. Runtimes are imported only when their backend is used, so a missing one makes its
cells unavailable and never breaks the others.

Adding a backend: one module with a ``Backend`` subclass, one ``_register`` line.
"""

from __future__ import annotations

import importlib

from resnet_bench.backends.base import Backend, BackendOptions, BackendUnavailable, request_streams

_REGISTRY: dict[str, str] = {}


def _register(name: str, where: str) -> None:
    if name in _REGISTRY:
        raise ValueError(f"backend {name!r} is registered twice")
    _REGISTRY[name] = where


_register("torch", "resnet_bench.backends.torch_backend:TorchBackend")
_register("torch-compile", "resnet_bench.backends.torch_backend:TorchCompileBackend")
_register("onnxruntime", "resnet_bench.backends.onnxruntime_backend:OnnxRuntimeBackend")
_register("openvino", "resnet_bench.backends.openvino_backend:OpenVinoBackend")
_register("tensorrt", "resnet_bench.backends.tensorrt_backend:TensorRtBackend")

BACKENDS = tuple(_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["BACKENDS", "Backend", "BackendOptions", "BackendUnavailable", "backend_class", "request_streams"]
