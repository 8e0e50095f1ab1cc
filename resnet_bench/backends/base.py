"""The one lifecycle every backend shares (Polygraphy's runner shape).

    with backend:                      # load(): artifact -> session / compiled model
        x = backend.prepare(images)    # host -> device, untimed
        y = backend.run(x)             # the timed call
        backend.sync()                 # wait for the device (no-op on CPU)
        logits = backend.fetch(y)      # device -> host numpy

``infer(images)`` does all three. ``describe()`` says what actually ran.

Several requests in flight (throughput mode, parity of every stream, LoadGen's lanes) are made
one way: ``request_streams`` (``Backend.streams`` for one input shared by every stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from resnet_bench.machine.cpus import available_cpus
from resnet_bench.util.errors import BackendUnavailable

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class BackendOptions:
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None  # threads in total, in every mode; None: the CPUs this process may use
    mode: str = "latency"  # latency: one request at a time; throughput: several in flight
    streams: int | None = None  # requests in flight for throughput mode; None: chosen from the threads
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
        if self.streams is not None and self.streams < 1:
            raise ValueError(f"streams must be at least 1, got {self.streams}")
        if self.device == "cpu" and self.threads and self.streams:
            check_streams(self.threads, self.streams)


def check_streams(total: int, streams: int) -> None:
    if streams > total or total % streams:
        raise ValueError(f"streams ({streams}) must divide threads ({total}) on a CPU: "
                         "each request in flight gets an equal share of the threads")


def split_threads(total: int, cpus: int, streams: int | None = None) -> tuple[int, int]:
    """(requests in flight, threads per request) for throughput mode on a CPU, their product
    exactly ``total``: every request needs a thread of its own, so never more requests than
    threads; by default as many as the CPUs allow (the largest divisor of ``total`` <= cpus)."""
    if streams is not None:
        check_streams(total, streams)
        return streams, total // streams
    in_flight = max(d for d in range(1, min(total, cpus) + 1) if total % d == 0)
    return in_flight, total // in_flight


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

    def stage(self, images: np.ndarray) -> Any:
        """A sample set held where a request reads its input from (LoadGen's samples, loaded
        before a run as MLPerf's QSL does): host memory here; device memory on a GPU backend
        that can take it, so a run times no host-to-device copy (as throughput mode does not)."""
        return images

    def run(self, prepared: Any) -> Any:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work; CPU runtimes return finished results already."""

    def fetch(self, output: Any) -> np.ndarray:
        return np.asarray(output)

    def close(self) -> None:
        """Release sessions and device memory."""

    def total_threads(self) -> int:
        """``--threads``: the threads of the whole cell, in every mode."""
        return self.options.threads or available_cpus()

    def in_flight(self) -> int:
        """Requests in flight: one in latency mode; in throughput mode on a CPU the threads
        split over the requests (``split_threads``); on a GPU ``streams`` or two CUDA streams."""
        if self.options.mode == "latency":
            return 1
        if self.options.device == "cpu":
            return split_threads(self.total_threads(), available_cpus(), self.options.streams)[0]
        return self.options.streams or 2

    def threads_per_request(self) -> int:
        if self.options.mode == "latency":
            return self.total_threads()
        if self.options.device == "cpu":
            return split_threads(self.total_threads(), available_cpus(), self.options.streams)[1]
        return max(1, self.total_threads() // self.in_flight())

    def worker(self, prepared: Any) -> Callable[[], object]:
        """One closed-loop request stream for throughput mode: a call runs one request to the
        end and returns what fetch() turns into logits (parity checks every worker).
        Backends whose handles are not thread-safe give each worker its own."""
        def work() -> object:
            output = self.run(prepared)
            self.sync()
            return output
        return work

    def streams(self, prepared: Any) -> list[Callable[[], object]]:
        """``in_flight()`` request streams on one prepared input (throughput mode, parity)."""
        return request_streams(self, [prepared] * self.in_flight())

    def infer(self, images: np.ndarray) -> np.ndarray:
        output = self.run(self.prepare(images))
        self.sync()
        return self.fetch(output)

    def describe(self) -> dict:
        """What actually ran, as the runtime reports it: device, provider, precision, threads
        (in total), in_flight (requests), threads_per_request, streams."""
        raise NotImplementedError

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_streams(backend: Backend, inputs: list[Any]) -> list[Callable[[], object]]:
    """One closed-loop request stream per prepared input, on the backend's lanes 0, 1, ... in
    turn. Every input must be prepared before the first stream is made: ``prepare`` resets the
    backends' lane counter, and each ``worker`` call takes the next lane."""
    return [backend.worker(prepared) for prepared in inputs]


__all__ = ["DEVICES", "Backend", "BackendOptions", "BackendUnavailable", "check_streams", "request_streams",
           "split_threads"]
