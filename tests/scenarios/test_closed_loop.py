"""The scenario layer against a backend of known service time and known concurrency.

``SleepBackend.run`` sleeps a fixed time (a real sleep: it releases the GIL, so requests in
flight truly overlap); with ``serial=True`` requests take a lock first, so only one runs at a
time however many are in flight. The layer must recover the latency and images/s these imply.
A sleep is never shorter than asked, and on a shared machine the scheduler only ever adds to
it: so the rates are checked one-sided tight (never above the service rate) and a few percent
below it (noise).
"""

import threading
import time

import numpy as np
import pytest

from resnet_bench import scenarios
from resnet_bench.backends.base import Backend, BackendOptions
from resnet_bench.measure.timing import StopRule

SERVICE_S = 0.020


def near_rate(measured: float, expected: float) -> bool:
    return 0.92 * expected <= measured <= 1.005 * expected


RULE = StopRule(warmup_iters=2, warmup_s=0, min_iters=30, min_s=0.3, max_s=2, target_precision=0.01)


class SleepBackend(Backend):
    name = "sleep"
    target = None
    precisions = {"cpu": ("fp32",)}

    def __init__(self, in_flight: int = 1, serial: bool = False) -> None:
        super().__init__(BackendOptions("cpu", mode="throughput" if in_flight > 1 else "latency"))
        self.requests, self.serial, self.lock = in_flight, serial, threading.Lock()

    def load(self, source) -> None:
        """Nothing to load: the service time is the sleep in run()."""

    def run(self, prepared):
        if self.serial:
            with self.lock:
                time.sleep(SERVICE_S)
        else:
            time.sleep(SERVICE_S)
        return prepared

    def in_flight(self) -> int:
        return self.requests

    def describe(self) -> dict:
        return {"threads": 1, "streams": self.requests}


def test_latency_mode_recovers_the_service_time():
    backend = SleepBackend()
    measured = scenarios.run("latency", backend, backend.prepare(np.zeros((4, 3, 8, 8))), 4, RULE)
    stats = measured.stats
    assert stats["latency_ms_p50"] == pytest.approx(20.0, rel=0.03)
    assert 20.0 <= stats["latency_ms_p50_low"] <= stats["latency_ms_p50"] <= stats["latency_ms_p50_high"]
    assert near_rate(measured.images_per_s, 4 / SERVICE_S)  # 200 images/s
    assert measured.in_flight == 1 and len(measured.samples_ms) == stats["iterations"]


def test_throughput_mode_overlapping_requests_multiply_images_per_s():
    backend = SleepBackend(in_flight=4)
    measured = scenarios.run("throughput", backend, backend.prepare(np.zeros((2, 3, 8, 8))), 2, RULE)
    assert measured.stats["latency_ms_p50"] == pytest.approx(20.0, rel=0.05)
    assert near_rate(measured.images_per_s, 4 * 2 / SERVICE_S)  # 400 images/s
    assert measured.in_flight == 4


def test_throughput_mode_serialised_requests_do_not():
    """Four in flight, one at a time: requests wait for each other (80 ms on average; the
    lock is not fair, so not each), and the rate stays one request per 20 ms, not four."""
    backend = SleepBackend(in_flight=4, serial=True)
    measured = scenarios.run("throughput", backend, backend.prepare(np.zeros((2, 3, 8, 8))), 2, RULE)
    assert measured.stats["latency_ms_mean"] == pytest.approx(80.0, rel=0.08)
    # 100 images/s, not 400; up to +1.5%: a request queued behind the lock at the window's end
    # counts its waiting time as work done (timing.ThroughputTiming.requests_per_s: +0.8% measured)
    assert 0.92 * 2 / SERVICE_S <= measured.images_per_s <= 1.015 * 2 / SERVICE_S


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode must be one of latency, throughput"):
        scenarios.run("offline", SleepBackend(), None, 1, RULE)
