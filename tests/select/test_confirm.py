"""A pick beyond noise: finalists re-measured in fresh processes. Identical code on two trees is
tied within noise; a copy made 20% slower (a busy-wait after each call) is ranked below."""

from pathlib import Path

import pytest

from benchmarks.gate_proof import copy_tree, slow_down
from resnet_bench.gate.processes import ProcessPlan
from resnet_bench.select.confirm import ConfirmPlan, Finalist, confirm, sentence

REPO = Path(__file__).resolve().parents[2]
CELL = dict(depth=18, variant="v1.5", backend="onnxruntime", precision="fp32", device="cpu", mode="latency",
            batch_size=1, input_size=64)
# 99.9% over the looks, so that neither test can pass by chance more than once in a thousand runs
PLAN = ConfirmPlan(looks=(4, 8, 12), confidence=0.999, budget_s=240,
                   process=ProcessPlan(blocks=3, block_s=0.1, warmup_iters=3, warmup_s=0.2))


def test_identical_code_is_tied_within_noise(tmp_path, store_dir, small_artifacts):
    twin = copy_tree(REPO, tmp_path / "twin")
    confirmation = confirm([Finalist("a", CELL, REPO), Finalist("b", CELL, twin)], PLAN, store_dir)
    assert confirmation.verdict == "tied" and confirmation.rounds == 12, confirmation
    (margin,) = confirmation.margins
    assert margin.low < 1 < margin.high and margin.ratio == pytest.approx(1, abs=0.05)
    assert confirmation.spread["a"] > 0 and confirmation.rates["a"] > 0
    text = sentence(confirmation, {"a": "onnxruntime", "b": "its twin"})
    assert text.startswith("onnxruntime and its twin are tied within the noise of this machine")


def test_a_configuration_made_20_percent_slower_is_ranked_below(tmp_path, store_dir, small_artifacts):
    slow = copy_tree(REPO, tmp_path / "slow")
    slow_down(slow, "onnxruntime", 20)
    confirmation = confirm([Finalist("fast", CELL, REPO), Finalist("slow", CELL, slow)], PLAN, store_dir)
    assert confirmation.verdict == "ahead", confirmation
    (margin,) = confirmation.margins
    assert margin.low > 1.05 and margin.ratio == pytest.approx(1.2, abs=0.08)
    assert sentence(confirmation).startswith("fast leads slow by ")
    # and the other way round: the slow one named first is behind
    other = confirm([Finalist("slow", CELL, slow), Finalist("fast", CELL, REPO)], PLAN, store_dir)
    assert other.verdict == "behind" and "fast is ahead of slow" in sentence(other)
