import math
import re
from statistics import NormalDist

import numpy as np
import pytest

from resnet_bench.gate import noise
from resnet_bench.gate.run import GatePlan
from resnet_bench.gate.statistics import (
    SequentialPlan,
    block_mad,
    decide_sequential,
    difference_of_samples,
    parse_threshold,
    trimmed_estimate,
)

PLAN = GatePlan().sequential(12)  # the gate's shipped plan, for the default 12 cells


def sides(d: list[float] | np.ndarray, blocks: int = 3) -> tuple[list, list]:
    """Base and head block medians whose per-round log ratios are exactly ``d``."""
    base = [[20.0] * blocks for _ in d]
    return base, [[20.0 * math.exp(x)] * blocks for x in d]


def test_trimmed_mean_and_yuen_error_of_known_values():
    # 10 values, 20% trim: the 2 lowest and 2 highest go; the mean of 3..8 is 5.5; the winsorised
    # values are 3,3,3..8,8,8 (variance 4.1667 with ddof 1) -> se = sqrt(4.1667 * 9 / (6 * 5)).
    mean, se, df = trimmed_estimate(np.arange(1.0, 11.0)[None, :], 0.2)
    assert mean[0] == pytest.approx(5.5) and df == 5
    assert se[0] == pytest.approx(math.sqrt(np.var([3, 3, 3, 4, 5, 6, 7, 8, 8, 8], ddof=1) * 9 / 30))


def test_one_slow_process_moves_the_estimate_by_little():
    # 12 rounds at +1%, one where the head process ran 60% slow for its whole life (measured on
    # this machine: rounds of +44% to +61% on identical code): the trimmed mean stays at +1%.
    d = np.full(12, 0.01) + np.random.default_rng(0).normal(0, 0.01, 12)
    d[5] = 0.6
    decision = decide_sequential(*sides(d), 0.10, PLAN)
    assert decision.verdict == "unchanged" and abs(decision.ratio - 1.01) < 0.01, decision


def test_clear_regression_and_improvement_at_the_first_look_that_may_turn_red():
    rng = np.random.default_rng(1)
    slower = decide_sequential(*sides(np.log(1.3) + rng.normal(0, 0.01, PLAN.looks[2])), 0.10, PLAN)
    assert slower.verdict == "regressed" and 1.27 < slower.ratio < 1.33 and slower.low > 1.25
    faster = decide_sequential(*sides(np.log(0.7) + rng.normal(0, 0.01, PLAN.looks[2])), 0.10, PLAN)
    assert faster.verdict == "improved"


def test_the_first_looks_never_turn_red():
    # 8 rounds of a clean +30%: the shipped plan's first two looks have level 0; they may only
    # stop a cell that is clearly unchanged, so a regression takes its 12 rounds.
    d = np.log(1.3) + np.random.default_rng(2).normal(0, 0.005, PLAN.looks[1])
    decision = decide_sequential(*sides(d), 0.10, PLAN)
    assert decision.verdict == "inconclusive" and "undecided at look 2" in decision.reason


def test_identical_code_is_unchanged_within_an_interval_inside_the_threshold():
    d = np.random.default_rng(3).normal(0, 0.02, PLAN.looks[0])
    decision = decide_sequential(*sides(d), 0.10, PLAN)
    assert decision.verdict == "unchanged" and 1 / 1.1 < decision.low < 1 < decision.high < 1.1


def test_head_and_base_are_not_interchangeable():
    d = np.log(1.25) + np.random.default_rng(4).normal(0, 0.01, PLAN.looks[2])
    base, head = sides(d)
    assert decide_sequential(base, head, 0.10, PLAN).verdict == "regressed"
    assert decide_sequential(head, base, 0.10, PLAN).verdict == "improved"


def test_inconclusive_after_the_last_look_says_how_many_rounds_would_settle_it():
    # A true +25% in processes that scatter by 20%: 20 rounds cannot bound it; the advice says more.
    d = np.log(1.25) + 0.2 * np.resize([1, -1, 0.5, -0.5], PLAN.rounds)
    decision = decide_sequential(*sides(d), 0.10, PLAN)
    assert decision.verdict == "inconclusive" and "after every look" in decision.reason
    assert "rounds would settle it" in decision.reason or "more than 50 rounds" in decision.reason


def _normal_rounds(mean: float, sd: float, n: int) -> np.ndarray:
    """n rounds at the normal quantiles: the same spread at any round count."""
    return mean + sd * np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])


@pytest.mark.parametrize("mean, sd, settles", [(math.log(1.25), 0.25, "regressed"), (math.log(1.2), 0.2, "regressed"),
                                               (0.0, 0.2, "unchanged")])
def test_the_rounds_advice_is_what_gate_rounds_n_then_decides(mean, sd, settles):
    # Inconclusive after the shipped looks; the advice names N. At N rounds of the same spread,
    # `gate --rounds N` (one look, Bonferroni over 12 cells) decides; at N - 1 it does not yet.
    decision = decide_sequential(*sides(_normal_rounds(mean, sd, PLAN.rounds)), 0.10, PLAN)
    assert decision.verdict == "inconclusive"
    n = int(re.search(r"about (\d+) rounds would settle it", decision.reason).group(1))
    fixed = lambda k: GatePlan.fixed(k).sequential(12)  # noqa: E731
    assert decide_sequential(*sides(_normal_rounds(mean, sd, n)), 0.10, fixed(n)).verdict == settles
    short = n - 1
    assert decide_sequential(*sides(_normal_rounds(mean, sd, short)), 0.10, fixed(short)).verdict == "inconclusive"


def test_undecided_before_the_last_look_also_says_what_would_settle_it():
    # What a cell cut by the time budget reports: the rounds it had, and the advice.
    d = np.log(1.25) + 0.2 * np.resize([1, -1, 0.5, -0.5], PLAN.looks[1])
    decision = decide_sequential(*sides(d), 0.10, PLAN)
    assert decision.verdict == "inconclusive" and "undecided at look 2" in decision.reason
    assert re.search(r"about \d+ rounds would settle it|more than 50 rounds", decision.reason)


def test_too_few_rounds_and_mismatched_sides():
    decision = decide_sequential(*sides([0.5, 0.5]), 0.10, PLAN)
    assert decision.verdict == "inconclusive" and "too few rounds" in decision.reason
    with pytest.raises(ValueError, match="a base and a head process"):
        decide_sequential([[1.0]] * 4, [[1.0]] * 3, 0.10, PLAN)


def test_bonferroni_levels_without_calibration():
    plan = SequentialPlan(looks=(4, 8), cells=10, false_red=0.01)
    assert plan.alpha_at(3) == 0 and plan.alpha_at(4) == plan.alpha_at(9) == pytest.approx(0.01 / 10 / 2)
    with pytest.raises(ValueError, match="one per look"):
        SequentialPlan(looks=(4, 8), levels=(0.001,))


def test_noise_fit_recovers_a_known_model():
    # d drawn from a known model: core sd 3% per round, 5% of rounds an outlier of +50%.
    rng = np.random.default_rng(5)
    cells = {}
    for name in ("a", "b", "c"):
        d = rng.normal(0, 0.03, 400)
        d[rng.random(400) < 0.05] = 0.5
        cells[name] = sides(d)
    models = noise.fit(cells)
    assert all(m.core == pytest.approx(0.03, rel=0.15) for m in models)
    assert models[0].outlier_share == pytest.approx(0.05, abs=0.015) and min(models[0].outliers) > 0.3


def test_simulated_operating_characteristic_of_the_shipped_plan_under_known_noise():
    # Every cell with a 4% core sd and 5% of rounds an outlier of +-50% (noisier than most cells
    # measured here): per gate run, identical code and T/2 everywhere red at most 1%, 2T in one
    # cell caught at least 99% (2,000 runs: the bounds, not the point rates, are checked).
    models = [noise.CellNoise(f"c{i}", 0.04, 0.05, (-0.5, 0.5)) for i in range(12)]
    runs = 2000
    aa = noise.simulate(models, [0.0] * 12, PLAN, runs=runs, seed=1)
    half = noise.simulate(models, [0.05] * 12, PLAN, runs=runs, seed=2)
    one = noise.simulate(models, [0.2] + [0.0] * 11, PLAN, runs=runs, seed=3)
    assert noise.rate_bound(aa["red_runs"], runs)[1] < 0.01  # the upper end of the 95% interval
    assert noise.rate_bound(half["red_runs"], runs)[1] < 0.01
    assert noise.rate_bound(one["cells"][0]["regressed"], runs)[0] > 0.99  # the lower end
    assert aa["inconclusive"] <= 0.10


def test_block_mad_of_known_scatter():
    # Each process: blocks at its median, and 5% above and below: the median residual is 5%.
    processes = [[100.0, 100 * math.exp(0.05), 100 * math.exp(-0.05)], [50 * math.exp(0.05), 50.0, 50 / math.exp(0.05)]]
    assert block_mad(processes) == pytest.approx(0.05)


def test_samples_from_two_runs_give_a_difference_with_its_interval():
    rng = np.random.default_rng(3)
    base = list(rng.normal(100, 3, 60))
    slower = difference_of_samples(base, list(rng.normal(125, 3, 60)))
    assert slower.verdict == "slower" and slower.low < 1.25 < slower.high and slower.high - slower.low < 0.05
    assert difference_of_samples(base, list(rng.normal(101, 3, 60))).verdict == "within"
    assert difference_of_samples(base, list(rng.normal(80, 3, 60))).verdict == "faster"
    assert difference_of_samples(base[:5], base[:5]).verdict == "not judged"


@pytest.mark.parametrize("text, value", [("10%", 0.1), ("0.05", 0.05), ("2.5%", 0.025)])
def test_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)
    with pytest.raises(ValueError):
        parse_threshold("ten")


def _hand_made_run(path, fingerprint_id, cells):
    """A run directory written the way the harness writes one, from hand-made samples."""
    import json

    from resnet_bench.results.rows import cell_id
    from resnet_bench.results.runs import RunWriter
    writer = RunWriter(path)
    (path / "fingerprint.json").write_text(json.dumps({"fingerprint_id": fingerprint_id}))
    for backend, samples, parity in cells:
        cell = dict(depth=18, variant="v1.5", backend=backend, precision="fp32", device="cpu", mode="latency",
                    batch_size=1, input_size=224)
        writer.add({**cell, "cell_id": cell_id(cell), "status": "ok", "parity_status": parity,
                    "latency_ms_p50": float(np.median(samples))}, list(samples))
    return path


def test_compare_two_hand_made_runs(tmp_path, capsys):
    from resnet_bench.cli import main
    rng = np.random.default_rng(7)
    same = rng.normal(20, 0.3, 40)
    base = _hand_made_run(tmp_path / "base", "abc", [("torch", same, "pass"), ("onnxruntime", rng.normal(10, 0.2, 40),
                                                                              "pass"), ("openvino", same, "pass")])
    head = _hand_made_run(tmp_path / "head", "abc", [("torch", rng.normal(20, 0.3, 40), "pass"),
                                                     ("onnxruntime", rng.normal(13, 0.2, 40), "pass"),
                                                     ("openvino", same, "fail")])
    assert main(["compare", str(base), str(head), "--format", "json"]) == 1  # parity got worse: that fails
    import json
    out, err = capsys.readouterr()
    rows = {r["cell_id"].split("-")[2]: r for r in json.loads(out)}
    assert rows["torch"]["verdict"] == "within"
    slower = rows["onnxruntime"]
    assert slower["verdict"] == "slower" and slower["ratio"] == pytest.approx(1.3, 0.03)
    assert slower["low"] < slower["ratio"] < slower["high"]
    assert "cannot tell code from process noise" in slower["reason"]
    assert rows["openvino"]["parity_worse"] is True
    assert "warning: 1 cell(s) slower and 0 faster by more than 10%, 2 within" in err
    assert main(["compare", str(base), str(base), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### ") and "within: 3" in out and "| cell_id" in out


def test_a_slower_single_run_is_a_difference_not_a_failure(tmp_path, capsys):
    # One process per side: even 30% slower is reported with the warning, exit 0 (the gate judges).
    from resnet_bench.cli import main
    rng = np.random.default_rng(9)
    base = _hand_made_run(tmp_path / "base", "abc", [("torch", rng.normal(20, 0.3, 40), "pass")])
    head = _hand_made_run(tmp_path / "head", "abc", [("torch", rng.normal(26, 0.3, 40), "pass")])
    assert main(["compare", str(base), str(head)]) == 0
    assert "1 cell(s) slower" in capsys.readouterr().err


def test_compare_refuses_other_fingerprints(tmp_path, capsys):
    from resnet_bench.cli import main
    base = _hand_made_run(tmp_path / "base", "abc", [("torch", np.full(20, 10.0), "pass")])
    other = _hand_made_run(tmp_path / "other", "xyz", [("torch", np.full(20, 10.0), "pass")])
    assert main(["compare", str(base), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different machines" in err


def test_compare_baseline_warns_only(tmp_path, capsys):
    from resnet_bench.cli import main
    rng = np.random.default_rng(8)
    head = _hand_made_run(tmp_path / "head", "abc", [("torch", rng.normal(30, 0.3, 40), "pass")])
    _hand_made_run(tmp_path / "baselines" / "abc", "abc", [("torch", rng.normal(20, 0.3, 40), "pass")])
    assert main(["compare", str(head), "--baseline", "--baselines", str(tmp_path / "baselines")]) == 0
    assert "warning: 1 cell(s) slower" in capsys.readouterr().err
    assert main(["compare", str(head), "--baseline", "--baselines", str(tmp_path / "none")]) == 0
    assert "no stored baseline" in capsys.readouterr().err
