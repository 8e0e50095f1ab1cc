"""A backend of known service time: no inference, each request sleeps a known time.

It is how the measuring machinery is tested against arithmetic (the standards' "backend of known
service time"): throughput mode, LoadGen's scenarios, the peak search and the gate all have a
known answer on it. It is not in the registry: no sweep or command runs it by name.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

import numpy as np

from resnet_bench.backends.base import Backend, BackendOptions


class ServiceTimeBackend(Backend):
    """A backend that does no inference: each request sleeps a known time (a real sleep, which
    releases the GIL) and returns the first ``classes`` values of each input image as its
    'logits'. With ``service_s=0`` it returns at once: what LoadGen then measures is its own
    per-query overhead and our SUT's. ``serial=True`` lets one request run at a time however
    many lanes there are (one compute unit: capacity 1 / service_s). ``first_call_s`` is added
    to the first call in each thread (as PyTorch's per-thread cuDNN autotuning costs on a GPU).
    ``per_image_s`` adds that much per image of a batch (a batch of b takes service_s + b x
    per_image_s: what batching buys is known); every ``slow_every``-th request (counted over all
    lanes) takes ``slow_s`` instead (a known share of slow answers)."""

    name: ClassVar[str] = "service-time"
    target: ClassVar[str | None] = None
    precisions: ClassVar[dict[str, tuple[str, ...]]] = {"cpu": ("fp32",)}

    def __init__(self, service_s: float = 0.0, in_flight: int = 1, serial: bool = False, classes: int = 4,
                 first_call_s: float = 0.0, per_image_s: float = 0.0, slow_every: int = 0,
                 slow_s: float = 0.0) -> None:
        super().__init__(BackendOptions("cpu", mode="throughput" if in_flight > 1 else "latency"))
        self.service_s, self.requests, self.classes = service_s, in_flight, classes
        self.lock = threading.Lock() if serial else None
        self.first_call_s, self.warm = first_call_s, threading.local()
        self.per_image_s, self.slow_every, self.slow_s = per_image_s, slow_every, slow_s
        self.calls, self.counting = 0, threading.Lock()
        self.batches: list[int] = []  # the batch of every request, in order

    def load(self, source: object) -> None:
        pass

    def service(self, batch: int) -> float:
        """Seconds a request of ``batch`` images takes (not counting slow ones)."""
        return self.service_s + self.per_image_s * batch

    def run(self, prepared: np.ndarray) -> np.ndarray:
        if self.first_call_s > 0 and not getattr(self.warm, "done", False):  # thread ids are reused
            self.warm.done = True
            time.sleep(self.first_call_s)
        with self.counting:
            self.calls += 1
            slow = self.slow_every > 0 and self.calls % self.slow_every == 0
            self.batches.append(len(prepared))
        seconds = self.slow_s if slow else self.service(len(prepared))
        if seconds > 0:
            if self.lock is not None:
                with self.lock:
                    time.sleep(seconds)
            else:
                time.sleep(seconds)
        return prepared.reshape(len(prepared), -1)[:, :self.classes].copy()

    def in_flight(self) -> int:
        return self.requests

    def describe(self) -> dict:
        return {"provider": f"sleep {self.service_s * 1e3:g} ms", "threads": 1, "in_flight": self.requests,
                "threads_per_request": 1, "streams": self.requests, "compute_precision": "fp32"}
