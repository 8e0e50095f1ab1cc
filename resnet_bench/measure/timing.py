"""The one timing function every measurement goes through (see shared MEASURING.md).

Untimed warm-up (iterations and seconds), then timed calls until a stop rule holds: at least
``min_iters`` and ``min_s``, and, when the rule has a ``target_precision``, until the median's
95% interval is within ± that fraction of the median; at most ``max_s``. Every sample is kept.
On a GPU the caller passes ``sync`` (e.g. ``torch.cuda.synchronize``) so each sample covers
the finished work, not the launch.

Intervals are distribution-free: for the q-quantile x_q of n independent samples, the number
B of samples below x_q is Binomial(n, q), so X_(l) <= x_q <= X_(u) (order statistics, ranks
from 1) holds with probability P(l <= B <= u - 1). The ranks are the tightest with at most
2.5% in each tail (a 95% interval; each bound alone holds with at least 97.5%). The upper
bound exists only when q**n <= 0.025 (all n samples below x_q is rare enough): p50 needs 6
samples, p90 36 (0.9**35 = 0.02503), p99 368 (0.99**367 = 0.02501). With fewer the
percentile is reported as unbounded (NaN) with the reason, never as the largest sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from resnet_bench.measure.validity import reason

CONFIDENCE = 0.95
PERCENTILES = (50, 90, 99)
DEFAULT_PRECISION = 0.01  # the sweep's target: median known within ±1%
# The drift limit: 3x the median's precision (the target, or the achieved one when worse).
# When the median is known within ±1%, the median of a third of the samples is known within
# about ±1.7% (sqrt(3) x) and the difference of two thirds within about ±2.5% (sqrt(2) x
# more), 95% of the time, on a steady machine. 3x (3%) is past that noise (simulated: 0.3% of
# steady heavy-tailed cells flagged at the stop point), and a move that large means the figure
# is an average of two speeds: quoting it to ±1% would claim what was not measured. Scaling
# with the achieved precision keeps an imprecise cell from being blamed on drift it cannot see.
DRIFT_FACTOR = 3.0
MEAN_BATCHES, MIN_PER_BATCH = 10, 3  # the batch means behind a mean's interval (images/s)


def samples_needed(q: float, side: str = "upper", confidence: float = CONFIDENCE) -> int:
    """Fewest samples whose order statistics bound the q-quantile on ``side`` (upper/lower)
    within a two-sided ``confidence`` interval: the smallest n with p**n <= (1 - confidence) / 2,
    p = q for the upper bound, 1 - q for the lower. p90 upper: 36; p99 upper: 368."""
    p, tail, n = (q if side == "upper" else 1 - q), (1 - confidence) / 2, 1
    while p**n > tail:
        n += 1
    return n


@lru_cache(maxsize=4096)
def order_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int | None, int | None]:
    """1-based ranks (l, u): X_(l) <= x_q <= X_(u) with at least ``confidence``, at most half
    the rest in each tail. None for a side n samples cannot bound."""
    from scipy.stats import binom

    tail = (1 - confidence) / 2

    def largest_k(p: float) -> int:  # the largest k with P(Binomial(n, p) <= k) <= tail, or -1
        k = int(binom.ppf(tail, n, p))
        while k >= 0 and binom.cdf(k, n, p) > tail:
            k -= 1
        while k + 1 < n and binom.cdf(k + 1, n, p) <= tail:
            k += 1
        return k

    below, above = largest_k(q), largest_k(1 - q)
    return (below + 1 if below >= 0 else None), (n - above if above >= 0 else None)


@dataclass(frozen=True)
class Percentile:
    q: int
    value: float  # NaN when unbounded
    low: float  # 95% interval; NaN for a side the samples cannot bound
    high: float
    unbounded: str = ""  # why, when a side is missing

    @classmethod
    def of(cls, samples: np.ndarray, q: int, confidence: float = CONFIDENCE) -> Percentile:
        n = len(samples)
        ordered = np.sort(samples)
        low_rank, high_rank = order_ranks(n, q / 100, confidence) if n else (None, None)
        low = float(ordered[low_rank - 1]) if low_rank else math.nan
        high = float(ordered[high_rank - 1]) if high_rank else math.nan
        missing = [side for side, rank in (("upper", high_rank), ("lower", low_rank)) if rank is None]
        if missing:
            side = missing[0]
            reason = (f"p{q}: a {confidence:.0%} {side} bound needs >= "
                      f"{samples_needed(q / 100, side, confidence)} samples, have {n}")
            return cls(q, math.nan, low, high, reason)
        return cls(q, float(np.percentile(ordered, q)), low, high)


def median_precision(samples: np.ndarray) -> float:
    """How far the median's 95% interval reaches from it, relative, on its wider side (latency
    intervals are lopsided: the average half-width let one side sit at -2.9% under a ±2% target);
    NaN with fewer than 6 samples."""
    p50 = Percentile.of(samples, 50)
    if p50.unbounded or p50.value <= 0:
        return math.nan
    return max(p50.value - p50.low, p50.high - p50.value) / p50.value


def drift(samples: np.ndarray) -> float:
    """Median of the last third over the median of the first third, minus 1 (time order)."""
    third = len(samples) // 3
    if third < 1:
        return math.nan
    first = float(np.median(samples[:third]))
    return float(np.median(samples[-third:])) / first - 1 if first > 0 else math.nan


@dataclass(frozen=True)
class StopRule:
    """Warm-up, then sample until min_iters and min_s hold and the median is known within
    ±target_precision (relative half-width of its 95% interval), or until max_s.

    ``target_precision=None`` stops at the minimums: with ``min_s=0`` that is exactly
    ``min_iters`` samples (a fixed count, ``fixed``). Every rule the suite uses is in ``RULES``.
    ``min_iters`` defaults to 36, the fewest samples with a bounded p90 (``samples_needed``):
    the quick profile's batch-1 cells (at most ~170 ms a request on a 2-core CPU) reach it
    well inside max_s."""

    warmup_iters: int = 20
    warmup_s: float = 1.0
    min_iters: int = 36
    min_s: float = 2.0
    max_s: float = 20.0
    target_precision: float | None = None

    def __post_init__(self) -> None:
        for name in ("warmup_iters", "min_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("warmup_s", "min_s", "max_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= min_s ({self.min_s})")
        if self.target_precision is not None and not 0 < self.target_precision < 1:
            raise ValueError(f"target_precision must be between 0 and 1 (0.01 = ±1%), got {self.target_precision}")

    @property
    def precision(self) -> float:
        """The precision validity asks for (the target, or DEFAULT_PRECISION without one)."""
        return self.target_precision or DEFAULT_PRECISION

    def capped(self, max_s: float) -> StopRule:
        """This rule stopped at ``max_s`` timed seconds (``--max-time``), its minimum time cut to fit."""
        if not max_s > 0:
            raise ValueError(f"--max-time must be more than 0 seconds, got {max_s:g}")
        return replace(self, max_s=max_s, min_s=min(self.min_s, max_s))

    @classmethod
    def fixed(cls, calls: int, min_s: float = 0.0, warmup_iters: int = 0, warmup_s: float = 0.0) -> StopRule:
        """At least ``calls`` timed calls and ``min_s`` seconds, no other stop (with min_s = 0:
        exactly ``calls``), after the given warm-up: the gate's blocks and probes."""
        return cls(warmup_iters=warmup_iters, warmup_s=warmup_s, min_iters=calls, min_s=min_s, max_s=NO_LIMIT_S)


NO_LIMIT_S = 1e9
SWEEP_RULE = StopRule(target_precision=DEFAULT_PRECISION)
# Every stop rule the suite uses, by name (the gate's blocks are StopRule.fixed counts).
RULES: dict[str, StopRule] = {
    # the full profile: the median within ±1%, 20 s at most a cell
    "sweep": SWEEP_RULE,
    # The quick profile asks for the median within ±2% and gives a cell up to 30 s: on a shared 2-core
    # machine ±1% takes ResNet-50 batch 8 (~0.5 s a call) well past that (measured: ±2.3-4.1% after
    # 20 s, 6 of 24 cells short of ±1%).
    # Its warm-up is 5 calls and 1 s, not 20 calls: at ResNet-50 batch 8 (~0.2 s a call) 20 calls
    # were 4 s a cell, half the quick sweep's warm-up (52 of 225 s); ONNX Runtime and OpenVINO are
    # at their steady speed after the first call or two, and the drift check (validity) says so if not.
    "quick": replace(SWEEP_RULE, target_precision=0.02, max_s=30.0, warmup_iters=5),
    # a CPU roof: the fastest of at least 10 calls and 0.5 s of one GEMM (noise only slows a call
    # down; a 2048 fp32 GEMM is ~50 ms a call on 2 cores; 1 s gave the same roofs, 321-327 GFLOP/s)
    "roof": StopRule(warmup_iters=3, warmup_s=0.3, min_iters=10, min_s=0.5, max_s=10.0),
    # a GPU roof keeps its 1 s (8192 GEMMs, clocks ramping up: not re-measured since the CPU change)
    "roof_gpu": StopRule(warmup_iters=3, warmup_s=0.5, min_iters=10, min_s=1.0, max_s=10.0),
    # LoadGen's closed-loop reference: short (it sizes the LoadGen run and is the comparison), p90-bounded
    "loadgen_reference": StopRule(warmup_iters=10, warmup_s=0.5, min_iters=36, min_s=2.0, max_s=8.0,
                                  target_precision=0.01),
    # the service time of each batch size the Server's batcher may form: a quick median
    "batch_probe": StopRule(warmup_iters=3, warmup_s=0.2, min_iters=6, min_s=0.3, max_s=3.0),
}


@dataclass(frozen=True)
class Timing:
    samples_ms: np.ndarray = field(repr=False)  # in the order they finished
    warmup_iters: int
    min_iters: int
    target_precision: float = DEFAULT_PRECISION

    @property
    def iterations(self) -> int:
        return len(self.samples_ms)

    def percentiles(self) -> dict[int, Percentile]:
        return {q: Percentile.of(self.samples_ms, q) for q in PERCENTILES}

    def stats(self) -> dict[str, float | int | str]:
        s = self.samples_ms
        mean = float(s.mean())
        std = float(s.std(ddof=1)) if len(s) > 1 else 0.0
        out: dict[str, float | int | str] = {"iterations": self.iterations}
        for q, p in self.percentiles().items():
            out.update({f"latency_ms_p{q}": p.value, f"latency_ms_p{q}_low": p.low, f"latency_ms_p{q}_high": p.high})
        out.update({
            "latency_ms_mean": mean,
            "latency_ms_std": std,
            "latency_ms_min": float(s.min()),
            "latency_ms_max": float(s.max()),
            "cv": std / mean if mean > 0 else 0.0,
            "median_precision": median_precision(s),
            "drift": drift(s),
            "unbounded": "; ".join(p.unbounded for p in self.percentiles().values() if p.unbounded),
        })
        return out

    def mean_interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The mean latency's interval by batch means: the samples (in time order) cut into
        ``MEAN_BATCHES`` runs, a t-interval over the runs' means (consecutive samples are not
        independent on a shared machine; the means of long runs nearly are). NaN below 2 runs."""
        s = self.samples_ms
        batches = min(MEAN_BATCHES, len(s) // MIN_PER_BATCH)
        if batches < 2:
            return math.nan, math.nan
        means = np.array([part.mean() for part in np.array_split(s, batches)])
        from scipy.stats import t

        half = float(t.ppf(0.5 + confidence / 2, batches - 1)) * float(means.std(ddof=1)) / math.sqrt(batches)
        centre = float(s.mean())
        return centre - half, centre + half

    def invalid_reasons(self) -> list[str]:
        """Why the median is not a figure to quote: not known within the target precision,
        drifting, or fewer iterations than the rule asked for."""
        reasons = []
        precision, moved = median_precision(self.samples_ms), drift(self.samples_ms)
        if math.isnan(precision):
            reasons.append(reason("no_interval", f"median has no 95% interval ({self.iterations} samples < 6)"))
        elif precision > self.target_precision:
            reasons.append(reason("imprecise", f"median known within ±{precision:.1%}, "
                                               f"target ±{self.target_precision:.1%}"))
        limit = DRIFT_FACTOR * max(self.target_precision, 0 if math.isnan(precision) else precision)
        if abs(moved) > limit:  # NaN compares False: too few samples is said above
            reasons.append(reason("drift", f"median moved {moved:+.1%} from the first to the last third "
                                           f"(limit ±{limit:.1%})"))
        if self.iterations < self.min_iters:
            reasons.append(reason("few_iterations", f"{self.iterations} < {self.min_iters} (max time reached)"))
        return reasons


def _precise(samples_ns: list[int], rule: StopRule) -> bool:
    """Known well enough to stop: the median within the target, and steady (no drift past the
    validity limit). A slow stretch of a few seconds on a shared machine (measured: ONNX Runtime
    at 29-32 ms for 3 s, then 19 ms) is then outlasted, up to max_s, rather than stopped on."""
    if rule.target_precision is None:
        return True
    values = np.asarray(samples_ns, dtype=np.float64)
    precision = median_precision(values)
    if not precision <= rule.target_precision:  # NaN (too few samples) is False
        return False
    return not abs(drift(values)) > DRIFT_FACTOR * rule.target_precision


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
    next_check = 0  # the interval is recomputed every ~5% more samples, not every call
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
        if len(samples) >= max(rule.min_iters, next_check) and elapsed >= rule.min_s * 1e9:
            if _precise(samples, rule):
                break
            next_check = len(samples) + max(1, len(samples) // 20)
    return Timing(np.asarray(samples, dtype=np.float64) / 1e6, warm, rule.min_iters, rule.precision)


@dataclass(frozen=True)
class ThroughputTiming(Timing):
    """Several requests in flight: per-request latencies over a shared window."""

    in_flight: int = 1
    span_s: float = 0.0  # the window: every stream sends its first request at its start
    done: float = 0.0  # requests finished in the window, plus the share of those in flight at its end

    @property
    def requests_per_s(self) -> float:
        """Work done in the window over its length. Nothing is part-done at its start (every stream
        sends its first request then); a request in flight at its end counts by the share of its
        time inside the window (it is waited for, so its length is known). Finished requests over
        the time to the last finish read low by about (streams - 1) / (2 n) (-1.3% for 4 serialised
        20 ms requests); pooling latencies by Little's law (in flight / mean latency) read 1-2% high
        behind an unfair lock (fast streams weigh more); summed per-stream rates read up to 2% high.
        Measured with a known service time: 4 overlapping 20 ms requests 396 of 398 images/s;
        4 serialised ones 100.3 of 99.5 (a request queued at the end counts its waiting time as
        work done: the residual bias, +0.8%, is for streams that wait on each other)."""
        return self.done / self.span_s if self.span_s > 0 else 0.0


def measure_concurrent(workers: list[Callable[[], object]], rule: StopRule = StopRule()) -> ThroughputTiming:
    """Run each worker (one synchronous request per call) in its own thread, all at once.

    All threads warm up together (the warm-up iterations shared among them, the warm-up time
    each), then a shared window opens; it closes once ``min_s`` has passed, ``min_iters``
    requests have finished and the median request latency is known within the target
    precision (or at ``max_s``). The latency samples are the requests that finished inside the
    window; a request still in flight when it closes adds to the throughput count only the share
    of its time that lay inside the window (docs/methodology.md, the throughput formula).
    Samples are kept in the order they finished, across workers (for the drift check).
    """
    import threading

    clock = time.perf_counter_ns
    per_worker_warmup = -(-rule.warmup_iters // len(workers))  # the shape's warm-up, shared out
    ready = threading.Barrier(len(workers) + 1)
    start_window = threading.Event()
    stop = threading.Event()
    samples: list[list[tuple[int, int]]] = [[] for _ in workers]  # (finished at, duration)
    straddling: list[tuple[int, int]] = []  # (started, finished) of requests in flight at the window's end
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
                samples[index].append((t1, t1 - t0))
            else:
                straddling.append((t0, t1))

    def durations() -> list[int]:
        return [d for _, d in sorted(s for per_worker in samples for s in list(per_worker))]

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
        if errors or elapsed >= rule.max_s * 1e9:
            break
        if done >= rule.min_iters and elapsed >= rule.min_s * 1e9 and _precise(durations(), rule):
            break
    window["end"] = clock()
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    # Latency: the requests that finished inside the window; count: those plus the in-window share
    # of each request that was still in flight when the window closed.
    kept = durations()
    start, end = window["start"], window["end"]
    partial = sum((end - max(t0, start)) / (t1 - t0) for t0, t1 in straddling if t0 < end and t1 > t0)
    return ThroughputTiming(np.asarray(kept, dtype=np.float64) / 1e6, rule.warmup_iters, rule.min_iters,
                            rule.precision, in_flight=len(workers), span_s=(end - start) / 1e9,
                            done=len(kept) + partial)
