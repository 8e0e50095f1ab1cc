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


def _hand_made_run(path, fingerprint_id, cells):
    """A run directory written the way the harness writes one, from hand-made samples."""
    import json

    from resnet_bench.results import RunWriter, cell_id
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
