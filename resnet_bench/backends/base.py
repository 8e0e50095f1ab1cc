"""The one lifecycle every backend shares (Polygraphy's runner shape).

    with backend:                      # load(): artifact -> session / compiled model
        x = backend.prepare(images)    # host -> device, untimed
        y = backend.run(x)             # the timed call
        backend.sync()                 # wait for the device (no-op on CPU)
        logits = backend.fetch(y)      # device -> host numpy

``infer(images)`` does all three. ``describe()`` says what actually ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from resnet_bench.cpus import available_cpus

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class BackendOptions:
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None  # None: the CPUs this process may use
    mode: str = "latency"  # latency: one request at a time; throughput: several in flight
    streams: int | None = None  # requests in flight for throughput mode; None: runtime's choice
    cuda_graphs: bool = False  # torch on CUDA: replay a captured CUDA graph per input shape

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.mode not in ("latency", "throughput"):
            raise ValueError(f"mode must be latency or throughput, got {self.mode!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.cuda_graphs and self.device != "cuda":
            raise ValueError(f"CUDA graphs need device cuda, got {self.device!r}")


class BackendUnavailable(Exception):
    """This backend cannot run this cell here; the message is the reason."""


class Backend:
    name: ClassVar[str]
    target: ClassVar[str | None]  # the artifact it runs ("onnx", "openvino", "tensorrt"); None: a model
    precisions: ClassVar[dict[str, tuple[str, ...]]]  # device -> precisions it can run

    def __init__(self, options: BackendOptions) -> None:
        self.options = options

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        """Why this backend cannot run with these options here, or None."""
        allowed = cls.precisions.get(options.device, ())
        if not allowed:
            return f"{cls.name} does not run on {options.device}"
        if options.precision not in allowed:
            return f"{cls.name} on {options.device} runs {', '.join(allowed)}, not {options.precision}"
        return None

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, source: Path | Any) -> None:
        raise NotImplementedError

    def prepare(self, images: np.ndarray) -> Any:
        return np.ascontiguousarray(images, dtype=np.float32)

    def run(self, prepared: Any) -> Any:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work; CPU runtimes return finished results already."""

    def fetch(self, output: Any) -> np.ndarray:
        return np.asarray(output)

    def close(self) -> None:
        """Release sessions and device memory."""

    def in_flight(self) -> int:
        """Requests in flight in throughput mode: ``streams`` if given, else one per CPU
        (each with an equal share of the threads) or two CUDA streams."""
        if self.options.streams:
            return self.options.streams
        return available_cpus() if self.options.device == "cpu" else 2

    def threads_per_request(self) -> int:
        threads = self.options.threads or available_cpus()
        if self.options.mode == "throughput":
            return max(1, threads // self.in_flight())
        return threads

    def worker(self, prepared: Any) -> Callable[[], object]:
        """One closed-loop request stream for throughput mode: a call runs one request to the
        end and returns what fetch() turns into logits (parity checks every worker).
        Backends whose handles are not thread-safe give each worker its own."""
        def work() -> object:
            output = self.run(prepared)
            self.sync()
            return output
        return work

    def infer(self, images: np.ndarray) -> np.ndarray:
        output = self.run(self.prepare(images))
        self.sync()
        return self.fetch(output)

    def describe(self) -> dict:
        """What actually ran: device, provider, precisions, threads, streams."""
        raise NotImplementedError

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
