"""The one timing function every measurement goes through (see shared MEASURING.md).

Untimed warm-up (iterations and seconds), then timed calls until a stop rule holds:
at least ``min_iters`` and ``min_s``, at most ``max_s``. Every sample is kept.
On a GPU the caller passes ``sync`` (e.g. ``torch.cuda.synchronize``) so each sample
covers the finished work, not the launch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MAX_CV = 0.05  # above this a cell is marked invalid (trtexec warns at 2.5%)


@dataclass(frozen=True)
class StopRule:
    warmup_iters: int = 20
    warmup_s: float = 1.0
    min_iters: int = 30
    min_s: float = 2.0
    max_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("warmup_iters", "min_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("warmup_s", "min_s", "max_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= min_s ({self.min_s})")


@dataclass(frozen=True)
class Timing:
    samples_ms: np.ndarray = field(repr=False)
    warmup_iters: int
    min_iters: int

    @property
    def iterations(self) -> int:
        return len(self.samples_ms)

    def stats(self) -> dict[str, float]:
        s = self.samples_ms
        mean = float(s.mean())
        std = float(s.std(ddof=1)) if len(s) > 1 else 0.0
        return {
            "iterations": self.iterations,
            "latency_ms_p50": float(np.percentile(s, 50)),
            "latency_ms_p90": float(np.percentile(s, 90)),
            "latency_ms_p99": float(np.percentile(s, 99)),
            "latency_ms_mean": mean,
            "latency_ms_std": std,
            "latency_ms_min": float(s.min()),
            "latency_ms_max": float(s.max()),
            "cv": std / mean if mean > 0 else 0.0,
        }

    def invalid_reasons(self) -> list[str]:
        reasons = []
        cv = self.stats()["cv"]
        if cv > MAX_CV:
            reasons.append(f"cv {cv:.1%} > {MAX_CV:.0%}")
        if self.iterations < self.min_iters:
            reasons.append(f"{self.iterations} iterations < {self.min_iters} (max time reached)")
        return reasons


def measure(fn: Callable[[], object], rule: StopRule = StopRule(),
            sync: Callable[[], None] | None = None) -> Timing:
    """Time ``fn`` by the stop rule; ``sync`` runs inside each sample, after ``fn``."""
    sync = sync or (lambda: None)
    clock = time.perf_counter_ns
    start, warm = clock(), 0
    while warm < rule.warmup_iters or clock() - start < rule.warmup_s * 1e9:
        fn()
        sync()
        warm += 1
    samples: list[int] = []
    begin = clock()
    while True:
        t0 = clock()
        fn()
        sync()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - begin
        if elapsed >= rule.max_s * 1e9:
            break
        if len(samples) >= rule.min_iters and elapsed >= rule.min_s * 1e9:
            break
    return Timing(np.asarray(samples, dtype=np.float64) / 1e6, warm, rule.min_iters)


@dataclass(frozen=True)
class ThroughputTiming(Timing):
    """Several requests in flight: per-request latencies over a shared window."""

    in_flight: int = 1

    @property
    def requests_per_s(self) -> float:
        # Little's law for a closed loop (each worker sends its next request as soon as the
        # last returns): throughput = requests in flight / mean time in the system. Counting
        # completions in the window instead undercounts the requests still in flight at its end.
        mean_s = float(self.samples_ms.mean()) / 1e3
        return self.in_flight / mean_s if mean_s > 0 else 0.0


def measure_concurrent(workers: list[Callable[[], object]], rule: StopRule = StopRule()) -> ThroughputTiming:
    """Run each worker (one synchronous request per call) in its own thread, all at once.

    All threads warm up together (the warm-up iterations shared among them, the warm-up time
    each), then a shared window opens; it closes
    once ``min_s`` has passed and ``min_iters`` requests have finished (or at ``max_s``).
    Requests that finish after the window are not counted.
    """
    import threading

    clock = time.perf_counter_ns
    per_worker_warmup = -(-rule.warmup_iters // len(workers))  # the shape's warm-up, shared out
    ready = threading.Barrier(len(workers) + 1)
    start_window = threading.Event()
    stop = threading.Event()
    samples: list[list[int]] = [[] for _ in workers]
    window: dict[str, int] = {}
    errors: list[BaseException] = []

    def loop(index: int, work: Callable[[], object]) -> None:
        try:
            begin, warm = clock(), 0
            while warm < per_worker_warmup or clock() - begin < rule.warmup_s * 1e9:
                work()
                warm += 1
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        ready.wait()
        start_window.wait()
        while not stop.is_set() and not errors:
            t0 = clock()
            try:
                work()
            except BaseException as exc:
                errors.append(exc)
                break
            t1 = clock()
            if t1 <= window.get("end", t1):
                samples[index].append(t1 - t0)

    threads = [threading.Thread(target=loop, args=(i, w), daemon=True) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    ready.wait()
    window["start"] = clock()
    start_window.set()
    while True:
        time.sleep(0.01)
        elapsed = clock() - window["start"]
        done = sum(len(s) for s in samples)
        if errors or elapsed >= rule.max_s * 1e9 or (done >= rule.min_iters and elapsed >= rule.min_s * 1e9):
            break
    window["end"] = clock()
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    # Only the requests that started inside the window and finished before it closed.
    kept = [s for per_worker in samples for s in per_worker]
    return ThroughputTiming(np.asarray(kept, dtype=np.float64) / 1e6, rule.warmup_iters, rule.min_iters,
                            in_flight=len(workers))
