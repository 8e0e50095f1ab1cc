import math

import numpy as np
import pytest

from resnet_bench.gate.run import GatePlan
from resnet_bench.gate.statistics import MAX_MAD, block_mad, decide_rounds, decide_samples, parse_threshold

PLAN = GatePlan()  # the gate's shipped plan: rounds x blocks per process
SIGMA_PROCESS = 0.03  # per-process offset measured here (+6.9% and -4.3% between identical processes)


def rounds(ratio=1.0, n=PLAN.rounds, blocks=PLAN.blocks, process_sd=SIGMA_PROCESS, block_mad_=MAX_MAD, seed=0):
    """Block medians of n base and n head processes: a log-normal offset per process, and block
    noise whose MAD is ``block_mad_`` (the gate's noise guard), around 20 ms (base) and 20 * ratio."""
    rng = np.random.default_rng(seed)
    block_sd = block_mad_ * 1.4826
    base = 20 * np.exp(rng.normal(0, process_sd, (n, 1)) + rng.normal(0, block_sd, (n, blocks)))
    head = 20 * ratio * np.exp(rng.normal(0, process_sd, (n, 1)) + rng.normal(0, block_sd, (n, blocks)))
    return base.tolist(), head.tolist()


def simulate(ratio, seeds=1000):
    return [decide_rounds(*rounds(ratio, seed=seed)) for seed in range(seeds)]


def test_operating_characteristic_with_process_level_noise():
    """1000 seeds per true change, 3% per-process noise, block noise at the MAD guard.
    T = 10%: T/2 marked regressed at most 1 in 100, 2T caught at least 99 in 100."""
    red = {change: sum(d.verdict == "regressed" for d in simulate(1 + change)) for change in (0.0, 0.05, 0.20)}
    assert red[0.0] <= 10 and red[0.05] <= 10, red
    assert red[0.20] >= 990, red


def skewed_rounds(ratio, seed, slow_share=1 / 8, slow=1.15):
    """As ``rounds``, but each process has a 1-in-8 chance of running 15% slow (a bad neighbour
    for its whole life): the noise is no longer the Gaussian the t-interval assumes."""
    rng = np.random.default_rng(seed)

    def side(r):
        offset = rng.normal(0, SIGMA_PROCESS, (PLAN.rounds, 1))
        offset += np.log(np.where(rng.random((PLAN.rounds, 1)) < slow_share, slow, 1.0))
        return (20 * r * np.exp(offset + rng.normal(0, MAX_MAD * 1.4826, (PLAN.rounds, PLAN.blocks)))).tolist()
    return side(1.0), side(ratio)


def test_skewed_process_noise_makes_the_gate_hesitate_not_fail():
    """Measured over 1000 seeds: identical code 0 regressed (68% inconclusive), +5% 0.7%
    regressed, +20% caught 85% (15% inconclusive). A slow process widens the interval: the gate
    says 'inconclusive, rerun with --rounds N' rather than failing on it. The 99% catch rate of
    the Gaussian case does not hold under this noise (README, "Regression gate")."""
    red = {change: sum(decide_rounds(*skewed_rounds(1 + change, seed)).verdict == "regressed" for seed in range(1000))
           for change in (0.0, 0.05, 0.20)}
    assert red[0.0] <= 10 and red[0.05] <= 10, red
    assert red[0.20] >= 800, red


def test_a_change_of_exactly_the_threshold_is_reported_with_its_interval():
    decisions = simulate(1.10, seeds=200)
    assert all(d.low < d.ratio < d.high and "CI" in d.reason for d in decisions)
    assert {d.verdict for d in decisions} <= {"regressed", "inconclusive", "unchanged"}
    assert 0.9 < np.median([d.ratio for d in decisions]) / 1.10 < 1.1


def test_clear_regression_and_improvement():
    slower = decide_rounds(*rounds(1.3, process_sd=0.01, block_mad_=0.005))
    assert slower.verdict == "regressed" and 1.25 < slower.ratio < 1.35 and slower.low > 1.05
    assert slower.p_value < 0.01 and slower.n == PLAN.rounds
    assert decide_rounds(*rounds(0.7, process_sd=0.01, block_mad_=0.005)).verdict == "improved"


def test_identical_code_is_unchanged_within_an_interval_inside_the_threshold():
    decision = decide_rounds(*rounds(1.0, seed=3))
    assert decision.verdict == "unchanged" and 1 / 1.1 < decision.low < 1 < decision.high < 1.1


def test_the_process_is_the_unit():
    # Blocks agree tightly inside each process, but processes differ: one slow head process is
    # not a regression (24 pairs of blocks counted as independent would call it significant).
    base, head = rounds(1.0, process_sd=0.0, block_mad_=0.002, seed=1)
    head[0] = [b * 1.8 for b in head[0]]
    decision = decide_rounds(base, head)
    assert decision.verdict == "inconclusive" and decision.low < 1.05


def test_inconclusive_says_how_many_rounds_would_settle_it():
    # A true +25% in processes that scatter by 20%: 8 rounds cannot bound it; the advised
    # number of rounds, with the same scatter, does.
    d = np.log(1.25) + 0.25 * np.array([1, -1, 0.5, -0.5, 1, -1, 0.5, -0.5])
    base = [[20.0] * 3 for _ in d]
    decision = decide_rounds(base, [[20.0 * math.exp(x)] * 3 for x in d])
    assert decision.verdict == "inconclusive" and "rerun with --rounds" in decision.reason
    advised = int(decision.reason.split("--rounds ")[1].split()[0])
    assert advised > len(d)
    more = np.resize(d, advised)
    more = np.log(1.25) + (more - np.log(1.25)) * d.std(ddof=1) / more.std(ddof=1)  # same scatter
    settled = decide_rounds([[20.0] * 3] * advised, [[20.0 * math.exp(x)] * 3 for x in more])
    assert settled.verdict == "regressed"


def test_too_few_rounds_and_mismatched_sides():
    decision = decide_rounds([[1.0]] * 2, [[2.0]] * 2)
    assert decision.verdict == "inconclusive" and "--rounds 3" in decision.reason
    with pytest.raises(ValueError, match="a base and a head process"):
        decide_rounds([[1.0]] * 4, [[1.0]] * 3)


def test_block_mad_of_known_scatter():
    # Each process: blocks at its median, and 5% above and below: the median residual is 5%.
    processes = [[100.0, 100 * math.exp(0.05), 100 * math.exp(-0.05)], [50 * math.exp(0.05), 50.0, 50 / math.exp(0.05)]]
    assert block_mad(processes) == pytest.approx(0.05)


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
    assert main(["compare", str(base), str(head), "--format", "json"]) == 1
    import json
    rows = {r["cell_id"].split("-")[2]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["torch"]["verdict"] == "unchanged"
    assert rows["onnxruntime"]["verdict"] == "regressed" and rows["onnxruntime"]["ratio"] == pytest.approx(1.3, 0.03)
    assert rows["openvino"]["parity_worse"] is True
    assert main(["compare", str(base), str(base), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### ") and "unchanged: 3" in out and "| cell_id" in out


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
    assert "warning: regressions against the stored baseline" in capsys.readouterr().err
    assert main(["compare", str(head), "--baseline", "--baselines", str(tmp_path / "none")]) == 0
    assert "no stored baseline" in capsys.readouterr().err
