"""The closed-loop scenarios: how one cell is driven and what it yields.

Each scenario takes a loaded backend, the prepared input, its batch size and a stop rule,
times it through ``timing.measure`` / ``timing.measure_concurrent`` and returns the latency
statistics (with their intervals), images/s and the validity reasons. The sweep walks its
cells and calls these; ``resnet-bench time`` and LoadGen's closed-loop reference call them too.

* ``latency`` (MLPerf SingleStream): one request at a time. Images/s is the delivered rate,
  batch / mean latency (the loop is closed: the next request starts when the last returns).
* ``throughput`` (Offline-like): ``backend.in_flight()`` closed-loop request streams at once
  (``Backend.streams``). Images/s = batch x (requests finished inside the window + the share
  of their time inside it of those still in flight when it closes) / the window's length; every
  stream sends its first request when the window opens (see
  ``timing.ThroughputTiming.requests_per_s`` for why not Little's law on pooled latencies).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resnet_bench.backends.base import Backend
from resnet_bench.measure.timing import StopRule, Timing, measure, measure_concurrent


@dataclass(frozen=True)
class Measurement:
    timing: Timing = field(repr=False)
    images_per_s: float
    in_flight: int

    @property
    def stats(self) -> dict:
        return self.timing.stats()

    @property
    def reasons(self) -> list[str]:
        return self.timing.invalid_reasons()

    @property
    def images_per_s_interval(self) -> tuple[float, float]:
        """95% interval of images/s, from the mean latency's (batch means): in latency mode
        images/s is batch / mean latency; in throughput mode, with every stream always busy, it
        moves inversely with the mean request latency too (Little's law), so the same relative
        interval applies."""
        low, high = self.timing.mean_interval()
        mean = float(self.timing.samples_ms.mean())
        if not low > 0:
            return (math.nan, math.nan) if math.isnan(low) else (self.images_per_s * mean / high, math.inf)
        return self.images_per_s * mean / high, self.images_per_s * mean / low

    @property
    def samples_ms(self) -> list[float]:
        return [round(float(s), 6) for s in self.timing.samples_ms]


def latency(backend: Backend, prepared: Any, batch: int, rule: StopRule) -> Measurement:
    timing = measure(lambda: backend.run(prepared), rule, backend.sync)
    return Measurement(timing, batch * 1e3 / float(timing.samples_ms.mean()), 1)


def throughput(backend: Backend, prepared: Any, batch: int, rule: StopRule) -> Measurement:
    timing = measure_concurrent(backend.streams(prepared), rule)
    return Measurement(timing, batch * timing.requests_per_s, timing.in_flight)


SCENARIOS: dict[str, Callable[[Backend, Any, int, StopRule], Measurement]] = {
    "latency": latency,
    "throughput": throughput,
}


def run(mode: str, backend: Backend, prepared: Any, batch: int, rule: StopRule) -> Measurement:
    if mode not in SCENARIOS:
        raise ValueError(f"mode must be one of {', '.join(SCENARIOS)}, got {mode!r}")
    return SCENARIOS[mode](backend, prepared, batch, rule)
