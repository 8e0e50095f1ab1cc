import numpy as np
import pytest

from resnet_bench.compare import decide_pairs, decide_samples, parse_threshold


def blocks(n, scale=1.0, noise=0.02, seed=0, drift=0.0):
    rng = np.random.default_rng(seed)
    trend = np.linspace(0, drift, n)
    return list(100 * scale * np.exp(rng.normal(0, noise, n) + trend))


def test_clear_regression():
    decision = decide_pairs(blocks(21), blocks(21, 1.2, seed=1))
    assert decision.verdict == "regressed" and 1.15 < decision.ratio < 1.25 and decision.p_value < 0.002


def test_clear_improvement():
    assert decide_pairs(blocks(21), blocks(21, 0.8, seed=1)).verdict == "improved"


def test_pure_noise_is_never_red():
    verdicts = [decide_pairs(blocks(21, seed=s), blocks(21, seed=s + 100)).verdict for s in range(200)]
    assert "regressed" not in verdicts and "improved" not in verdicts
    assert verdicts.count("unchanged") >= 190


def test_small_change_is_unchanged():
    assert decide_pairs(blocks(21), blocks(21, 1.05, seed=1)).verdict == "unchanged"


def test_big_but_noisy_is_inconclusive():
    decision = decide_pairs(blocks(21, noise=0.4), blocks(21, 1.2, noise=0.4, seed=1))
    assert decision.verdict == "inconclusive" and "too noisy" in decision.reason


def test_drifting_noise_is_inconclusive():
    decision = decide_pairs(blocks(21, noise=0.01), blocks(21, noise=0.01, seed=1, drift=0.3))
    assert decision.verdict == "inconclusive" and "drift" in decision.reason


def test_too_few_pairs():
    decision = decide_pairs(blocks(5), blocks(5, 2.0))
    assert decision.verdict == "inconclusive" and "too few pairs" in decision.reason
    with pytest.raises(ValueError, match="as many"):
        decide_pairs(blocks(12), blocks(11))


def test_regression_beyond_threshold_but_inconsistent_is_inconclusive():
    base = blocks(21, noise=0.001)
    head = [b * (1.3 if i % 3 else 0.95) for i, b in enumerate(base)]  # 1 in 3 pairs faster
    decision = decide_pairs(base, head)
    assert decision.verdict == "inconclusive" and "not significant" in decision.reason


def test_samples_from_two_runs():
    rng = np.random.default_rng(3)
    base = list(rng.normal(100, 3, 60))
    assert decide_samples(base, list(rng.normal(125, 3, 60))).verdict == "regressed"
    assert decide_samples(base, list(rng.normal(101, 3, 60))).verdict == "unchanged"
    assert decide_samples(base[:5], base[:5]).verdict == "inconclusive"


@pytest.mark.parametrize("text, value", [("10%", 0.1), ("0.05", 0.05), ("2.5%", 0.025)])
def test_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)
    with pytest.raises(ValueError):
        parse_threshold("ten")


def test_a_regression_at_the_threshold_is_caught():
    # A true 10% slowdown measures just under or over 1.10; the interval reaches past it.
    verdicts = []
    for seed in range(50):
        base = blocks(21, seed=seed)
        jitter = np.exp(np.random.default_rng(seed + 1000).normal(0, 0.01, 21))
        verdicts.append(decide_pairs(base, list(np.array(base) * 1.10 * jitter)).verdict)
    assert verdicts.count("regressed") >= 45


def test_a_small_significant_change_is_unchanged():
    decision = decide_pairs(blocks(21, noise=0.005), blocks(21, 1.03, noise=0.005, seed=1))
    assert decision.verdict == "unchanged" and "CI" in decision.reason


def test_median_interval():
    from resnet_bench.compare import median_interval
    r = np.arange(21, dtype=float)
    low, high = median_interval(r)
    assert (low, high) == (5.0, 15.0)  # 6th and 16th order statistics for n = 21
