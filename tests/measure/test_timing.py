import itertools
import math
import threading
import time

import numpy as np
import pytest

from resnet_bench.measure.timing import (
    SWEEP_RULE,
    Percentile,
    StopRule,
    Timing,
    measure,
    measure_concurrent,
    samples_needed,
)

FAST = StopRule(warmup_iters=3, warmup_s=0.0, min_iters=10, min_s=0.05, max_s=5.0)


def test_stop_rule_minimums_and_warmup():
    calls = []
    timing = measure(lambda: calls.append(time.sleep(0.002)), FAST)
    assert timing.warmup_iters >= 3
    assert timing.iterations >= 10 and timing.samples_ms.sum() >= 50 * 0.9
    assert len(calls) == timing.warmup_iters + timing.iterations  # every timed call is a sample
    assert timing.samples_ms.min() >= 2.0


def test_fixed_count_gives_exactly_k_samples():
    """The contract the gate worker relies on: no precision target, no minimum time."""
    calls = []
    timing = measure(lambda: calls.append(1), StopRule(warmup_iters=0, warmup_s=0, min_iters=17, min_s=0,
                                                       max_s=1e9))
    assert timing.iterations == 17 == len(calls)


def test_max_time_caps_and_marks_too_few_iterations():
    rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=1000, min_s=0, max_s=0.05)
    timing = measure(lambda: time.sleep(0.01), rule)
    assert timing.iterations < 1000
    assert any(r.startswith("few_iterations: ") and r.endswith(" < 1000 (max time reached)")
               for r in timing.invalid_reasons())


def test_sync_runs_inside_each_sample():
    pending = []
    timing = measure(lambda: pending.append(1), FAST, sync=lambda: (time.sleep(0.003), pending.clear()))
    assert timing.samples_ms.min() >= 3.0 and not pending


# -- intervals ---------------------------------------------------------------------------------

def test_median_interval_of_100_samples_is_the_textbook_ranks():
    # Order statistics 40 and 61 of 100 bound the median with >= 95% (e.g. Conover, Practical
    # Nonparametric Statistics, table A3): the samples 1..100 make the ranks the values.
    stats = Timing(np.random.default_rng(0).permutation(np.arange(1.0, 101.0)), 0, 100).stats()
    assert (stats["latency_ms_p50_low"], stats["latency_ms_p50"], stats["latency_ms_p50_high"]) == (40, 50.5, 61)
    assert stats["median_precision"] == pytest.approx((61 - 40) / 2 / 50.5)


def test_p99_of_60_samples_is_unbounded_not_the_max():
    samples = np.random.default_rng(1).lognormal(3, 0.2, 60)
    stats = Timing(samples, 0, 60).stats()
    assert math.isnan(stats["latency_ms_p99"]) and math.isnan(stats["latency_ms_p99_high"])
    assert stats["latency_ms_p99_low"] <= samples.max()  # a lower bound it can give
    assert stats["unbounded"] == "p99: a 95% upper bound needs >= 368 samples, have 60"
    assert not math.isnan(stats["latency_ms_p90_high"])  # 60 >= 36: p90 is bounded


@pytest.mark.parametrize("q, needed", [(50, 6), (90, 36), (99, 368)])
def test_samples_needed_for_an_upper_bound(q, needed):
    # n samples all fall below the q-quantile with probability q**n; a two-sided 95% interval
    # allows 2.5% for that: 0.9**35 = 0.02503 > 0.025 >= 0.9**36 = 0.02253, and so on.
    assert samples_needed(q / 100) == needed
    assert (q / 100) ** needed <= 0.025 < (q / 100) ** (needed - 1)
    assert Percentile.of(np.arange(float(needed)), q).unbounded == ""
    assert Percentile.of(np.arange(float(needed - 1)), q).unbounded.startswith(f"p{q}: a 95% upper bound")


@pytest.mark.parametrize("q, n", [(50, 50), (90, 100)])
def test_interval_covers_the_true_percentile_about_95_percent_of_the_time(q, n):
    true = math.exp(0.3 * {50: 0.0, 90: 1.2815515655446004}[q])  # lognormal(0, 0.3) quantile
    hits = 0
    for seed in range(2000):
        p = Percentile.of(np.random.default_rng(seed).lognormal(0, 0.3, n), q)
        hits += p.low <= true <= p.high
    assert 0.935 <= hits / 2000 <= 0.985  # conservative ranks: at least 95% in expectation


# -- stop rule and validity ---------------------------------------------------------------------

def test_stops_early_when_the_median_is_tight():
    rule = StopRule(warmup_iters=2, warmup_s=0, min_iters=10, min_s=0, max_s=10, target_precision=0.01)
    start = time.perf_counter()
    timing = measure(lambda: time.sleep(0.005), rule)
    assert time.perf_counter() - start < 3  # far from max_s
    assert timing.stats()["median_precision"] <= 0.01
    assert timing.invalid_reasons() == []


def test_runs_to_max_time_when_noisy():
    durations = itertools.cycle(np.random.default_rng(2).uniform(0.001, 0.008, 1000))
    rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=10, min_s=0, max_s=0.8, target_precision=0.01)
    start = time.perf_counter()
    timing = measure(lambda: time.sleep(next(durations)), rule)
    assert time.perf_counter() - start >= 0.8
    (reason,) = timing.invalid_reasons()  # ±1% of a 1-8 ms spread needs ~20,000 samples
    assert reason.startswith("imprecise: median known within ±") and reason.endswith("target ±1.0%")


def _busy(seconds: float) -> None:
    """Spin on the CPU for ``seconds`` (sleep's wake-up jitter would blur the test)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        continue


def test_a_slow_stretch_at_the_start_is_outlasted_not_stopped_on():
    """4 ms calls for the first 0.4 s, then 2 ms: the median is within ±2% long before the slow
    stretch is a minority of the first third; the rule samples on until the cell is steady."""
    start = time.perf_counter()
    rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=10, min_s=0.6, max_s=8, target_precision=0.02)
    timing = measure(lambda: _busy(0.004 if time.perf_counter() - start < 0.4 else 0.002), rule)
    assert timing.invalid_reasons() == []
    assert timing.stats()["latency_ms_p50"] == pytest.approx(2.0, rel=0.05)  # the steady speed
    assert timing.iterations > 300  # 100 slow calls had to become less than half of the first third


def test_drift_of_a_steadily_slowing_function_is_detected():
    calls = itertools.count()
    timing = measure(lambda: time.sleep(0.002 + 0.0001 * next(calls)), StopRule(0, 0, 60, 0, 100))
    assert timing.stats()["drift"] > 0.5  # medians ~3 ms in the first third, ~7 ms in the last
    assert any(r.startswith("drift: median moved +") for r in timing.invalid_reasons())


def test_steady_samples_have_no_drift_and_cv_is_not_a_rule():
    rng = np.random.default_rng(3)
    # tight core, heavy tail: CV ~37%, yet the median is known within ±1%
    samples = np.where(rng.random(3000) < 0.1, rng.uniform(20, 60, 3000), rng.normal(10, 0.1, 3000))
    timing = Timing(samples, 0, 30)
    assert timing.stats()["cv"] > 0.3 and timing.invalid_reasons() == []


def test_concurrent_stop_rule_and_drift_in_finish_order():
    started = itertools.count()
    lock = threading.Lock()

    def slowing():  # every request, whichever worker sends it, is slower than the last
        with lock:
            k = next(started)
        time.sleep(0.002 + 0.0002 * k)

    rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=60, min_s=0, max_s=5)
    timing = measure_concurrent([slowing] * 3, rule)
    assert timing.in_flight == 3 and timing.iterations >= 60
    assert timing.stats()["drift"] > 0.3
    assert any(r.startswith("drift") for r in timing.invalid_reasons())


def test_concurrent_worker_error_is_raised():
    def broken():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        measure_concurrent([broken, broken], FAST)


def test_sweep_rule_asks_for_one_percent_and_a_bounded_p90():
    assert SWEEP_RULE.target_precision == 0.01
    assert SWEEP_RULE.min_iters >= samples_needed(0.9)


@pytest.mark.parametrize("bad", [dict(min_iters=-1), dict(min_s=3, max_s=1), dict(warmup_s=-1),
                                 dict(target_precision=0), dict(target_precision=1.5)])
def test_bad_rules(bad):
    with pytest.raises(ValueError):
        StopRule(**bad)
