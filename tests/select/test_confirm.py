"""A pick beyond noise: finalists re-measured in fresh processes, on a backend of known service
time (each call sleeps a known time, so the true ratio is known). Identical cells are tied within
noise; a cell whose calls take 20% longer is ranked below, whichever is named first."""

from pathlib import Path

import pytest

from resnet_bench.gate.processes import ProcessPlan
from resnet_bench.select.confirm import ConfirmPlan, Finalist, confirm, sentence

REPO = Path(__file__).resolve().parents[2]
CELL = dict(depth=18, variant="v1.5", backend="service-time", precision="fp32", device="cpu", mode="latency",
            batch_size=1, input_size=8, service_ms=3.0)
SLOW = {**CELL, "service_ms": 3.6}  # every call 20% longer
# 99.9% over the looks, so that neither test can pass by chance more than once in a thousand runs
PLAN = ConfirmPlan(looks=(4, 8, 12), confidence=0.999, budget_s=120,
                   process=ProcessPlan(blocks=3, block_s=0.05, warmup_iters=3, warmup_s=0.0))


def test_identical_cells_are_tied_within_noise(store_dir):
    confirmation = confirm([Finalist("a", CELL, REPO), Finalist("b", CELL, REPO)], PLAN, store_dir)
    assert confirmation.verdict == "tied" and confirmation.rounds == 12, confirmation
    (margin,) = confirmation.margins
    assert margin.low < 1 < margin.high and margin.ratio == pytest.approx(1, abs=0.05)
    assert confirmation.spread["a"] > 0 and confirmation.rates["a"] == pytest.approx(1e3 / 3.0, rel=0.15)
    text = sentence(confirmation, {"a": "onnxruntime", "b": "its twin"})
    # "tied" only when the interval is inside ±5% (test_a_wide_interval_is_not_called_a_tie pins both
    # wordings); a loaded CI host gave -4.8% to +7.3% on these identical cells: said as not told apart
    inside = 0.95 <= margin.low and margin.high <= 1.05
    assert text.startswith("onnxruntime and its twin are tied within the noise of this machine" if inside else
                           "onnxruntime and its twin are not told apart in 12 fresh processes each"), text
    # 99.9% over 3 looks is 99.967% a look: said as such, never rounded up to "100.0%"
    assert "12 fresh processes each, 99.96% interval" in text, text


def test_a_cell_20_percent_slower_is_ranked_below(store_dir):
    confirmation = confirm([Finalist("fast", CELL, REPO), Finalist("slow", SLOW, REPO)], PLAN, store_dir)
    assert confirmation.verdict == "ahead", confirmation
    (margin,) = confirmation.margins
    assert margin.low > 1.05 and margin.ratio == pytest.approx(1.2, abs=0.05)
    assert sentence(confirmation).startswith("fast leads slow by ")
    # and the other way round: the slow one named first is behind
    other = confirm([Finalist("slow", SLOW, REPO), Finalist("fast", CELL, REPO)], PLAN, store_dir)
    assert other.verdict == "behind" and "fast is ahead of slow" in sentence(other)


def test_a_wide_interval_is_not_called_a_tie():
    """Three processes each give a wide interval: the sentence says what could not be seen, not
    'tied within the noise'; inside ±5% it is a tie."""
    from resnet_bench.select.confirm import Confirmation, Margin

    def said(low, high):
        margin = Margin("runner", 1.008, low, high, 3)
        return sentence(Confirmation("pick", (margin,), {}, {}, 3, 30.0, {}, 0.9833))

    wide = said(0.845, 1.201)
    assert "not told apart in 3 fresh processes each" in wide and "-15.5% to +20.1%" in wide, wide
    assert "tied within the noise" not in wide
    assert "tied within the noise of this machine" in said(0.97, 1.04)
