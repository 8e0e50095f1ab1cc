import pandas as pd
import pytest

from resnet_bench.selection import Constraints, pareto_front, select


def cell(backend, batch, p99, ips, depth=50, precision="fp32", device="cpu", status="ok", parity="pass",
         rel=1e-6, valid=True, mode="latency", machine="m1"):
    return dict(machine=machine, device=device, backend=backend, precision=precision, mode=mode,
                batch_size=batch, depth=depth, latency_ms_p50=p99 * 0.8, latency_ms_p90=p99 * 0.9,
                latency_ms_p99=p99, images_per_s=ips, status=status, parity_status=parity, rel_l2_err=rel,
                valid=valid, invalid_reasons="" if valid else "cv 9.0% > 5%")


@pytest.fixture
def frame():
    return pd.DataFrame([
        cell("onnxruntime", 1, 60, 16),
        cell("onnxruntime", 8, 480, 17.5),
        cell("openvino", 1, 70, 14.5),
        cell("openvino", 8, 520, 15.4),
        cell("torch", 1, 100, 10),
        cell("openvino", 8, 300, 30, parity="fail"),  # fastest, but wrong: never recommended
        cell("torch", 8, 200, 40, status="error"),  # did not run
        cell("onnxruntime", 1, 20, 50, precision="fp16", rel=9e-3),
        cell("onnxruntime", 1, 9, 110, depth=18),
    ])


def test_latency_budget_picks_highest_throughput_within_it(frame):
    selection = select(frame, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,)))
    (pick,) = selection.picks
    assert pick["row"].backend == "onnxruntime" and pick["row"].batch_size == 1
    assert "16.0 images/s" in pick["reason"] and "100 ms" in pick["reason"]
    assert set(selection.qualifying.backend) == {"onnxruntime", "openvino", "torch"}


def test_looser_budget_prefers_batching(frame):
    selection = select(frame, Constraints(max_latency_ms=500, precisions=("fp32",), depths=(50,)))
    assert selection.picks[0]["row"].batch_size == 8 and selection.picks[0]["row"].backend == "onnxruntime"


def test_parity_failures_and_errors_are_never_picked(frame):
    selection = select(frame, Constraints(depths=(50,), precisions=("fp32",)))
    assert not ((selection.qualifying.parity_status != "pass") | (selection.qualifying.status != "ok")).any()
    assert selection.picks[0]["row"].images_per_s == 17.5


def test_rel_err_constraint_excludes_fp16(frame):
    assert select(frame, Constraints(depths=(50,))).picks[0]["row"].precision == "fp16"
    assert select(frame, Constraints(depths=(50,), max_rel_err=1e-4)).picks[0]["row"].precision == "fp32"


def test_nothing_qualifies_names_the_constraint_and_the_gap(frame):
    selection = select(frame, Constraints(max_latency_ms=30, precisions=("fp32",), depths=(50,)))
    assert selection.picks == [] and len(selection.misses) == 1
    miss = selection.misses[0]
    assert "nothing meets p99 latency <= 30 ms" in miss
    assert "onnxruntime fp32 latency batch 1 on cpu (m1): p99 latency 60.0 ms is 100% over 30 ms" in miss


def test_throughput_miss(frame):
    (miss,) = select(frame, Constraints(min_throughput=200, depths=(18,))).misses
    assert "110.0 images/s is 82% short of 200" in miss


def test_noisy_pick_says_so(frame):
    frame.loc[0, "valid"] = False
    frame.loc[0, "invalid_reasons"] = "cv 9.0% > 5%"
    pick = select(frame, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks[0]
    assert "noisy cell: cv 9.0% > 5%" in pick["reason"]


def test_pareto_front():
    rows = pd.DataFrame([cell("a", 1, 10, 100), cell("b", 8, 50, 300), cell("c", 8, 60, 200),
                         cell("d", 32, 200, 400)])
    assert list(pareto_front(rows, "latency_ms_p99").backend) == ["a", "b", "d"]


def test_percentile_choice(frame):
    selection = select(frame, Constraints(max_latency_ms=50, latency_percentile=50, precisions=("fp32",),
                                          depths=(50,)))
    assert selection.picks[0]["row"].latency_ms_p50 == 48  # p99 60 ms, p50 48 ms
    with pytest.raises(ValueError, match="percentile"):
        Constraints(latency_percentile=95)
