import time

import numpy as np
import pytest

from resnet_bench.timing import StopRule, Timing, measure, measure_concurrent

FAST = StopRule(warmup_iters=3, warmup_s=0.0, min_iters=10, min_s=0.05, max_s=5.0)


def test_stop_rule_minimums_and_warmup():
    calls = []
    timing = measure(lambda: calls.append(time.sleep(0.002)), FAST)
    assert timing.warmup_iters >= 3
    assert timing.iterations >= 10 and timing.samples_ms.sum() >= 50 * 0.9
    assert len(calls) == timing.warmup_iters + timing.iterations  # every timed call is a sample
    assert timing.samples_ms.min() >= 2.0


def test_max_time_caps_and_marks_too_few_iterations():
    rule = StopRule(warmup_iters=0, warmup_s=0, min_iters=1000, min_s=0, max_s=0.05)
    timing = measure(lambda: time.sleep(0.01), rule)
    assert timing.iterations < 1000
    assert any("iterations < 1000" in r for r in timing.invalid_reasons())


def test_sync_runs_inside_each_sample():
    pending = []
    timing = measure(lambda: pending.append(1), FAST, sync=lambda: (time.sleep(0.003), pending.clear()))
    assert timing.samples_ms.min() >= 3.0 and not pending


def test_stats_and_cv():
    timing = Timing(np.array([10.0, 10.0, 10.0, 10.0, 20.0]), 0, 5)
    stats = timing.stats()
    assert stats["latency_ms_p50"] == 10.0 and stats["latency_ms_max"] == 20.0
    assert stats["cv"] == pytest.approx(np.std([10, 10, 10, 10, 20], ddof=1) / 12)
    assert timing.invalid_reasons() == ["cv 37.3% > 5%"]
    steady = Timing(np.full(30, 5.0), 0, 30)
    assert steady.invalid_reasons() == [] and steady.stats()["cv"] == 0


def test_concurrent_requests_overlap_and_littles_law():
    timing = measure_concurrent([lambda: time.sleep(0.01)] * 3, FAST)
    assert timing.in_flight == 3 and timing.iterations >= 10
    assert timing.samples_ms.min() >= 10.0
    assert timing.requests_per_s == pytest.approx(3 / (timing.samples_ms.mean() / 1e3))


def test_concurrent_worker_error_is_raised():
    def broken():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        measure_concurrent([broken, broken], FAST)


@pytest.mark.parametrize("bad", [dict(min_iters=-1), dict(min_s=3, max_s=1), dict(warmup_s=-1)])
def test_bad_rules(bad):
    with pytest.raises(ValueError):
        StopRule(**bad)
