"""The report's "what low precision buys" table on cells of known figures: each row's speed-up
and its interval, the accuracy cost, and a verdict that follows from them (parity-failed cells
and rows without intervals included, not dropped or misread)."""

import math

import pandas as pd
import pytest

from resnet_bench.report.sections import low_precision_section


def cell(backend, depth, precision, ips, spread=0.05, mode="latency", batch=1, status="ok", parity="pass",
         accuracy=None, drop=math.nan):
    low, high = (math.nan, math.nan) if spread is None else (ips * (1 - spread), ips * (1 + spread))
    return dict(machine="m1", device="cpu", backend=backend, depth=depth, precision=precision, mode=mode,
                batch_size=batch, status=status, parity_status=parity, images_per_s=ips, images_per_s_low=low,
                images_per_s_high=high, accuracy_status=accuracy, accuracy_drop=drop,
                accuracy_drop_low=drop - 0.003, accuracy_drop_high=drop + 0.003)


@pytest.fixture
def table():
    frame = pd.DataFrame([
        cell("onnxruntime", 18, "fp32", 100), cell("onnxruntime", 18, "fp32", 200, mode="throughput", batch=8),
        cell("onnxruntime", 18, "int8", 500, mode="throughput", batch=8, accuracy="pass", drop=0.002),
        cell("onnxruntime", 18, "int8", 900, mode="throughput", batch=8, status="error"),  # did not run: no row
        cell("openvino", 18, "fp32", 100),
        cell("openvino", 18, "int8", 102, accuracy="not established"),
        cell("openvino", 18, "bf16", 300, status="parity_failed", parity="fail"),
        cell("torch", 18, "fp32", 100, spread=None), cell("torch", 18, "bf16", 150, spread=None, accuracy="fail",
                                                            drop=0.05),
        cell("onnxruntime", 50, "fp32", 50), cell("onnxruntime", 50, "int8", 90, mode="throughput", batch=8,
                                                  accuracy="pass", drop=0.0),
        cell("openvino", 50, "fp32", 100, spread=0.02), cell("openvino", 50, "fp16", 80, spread=0.02,
                                                             accuracy="not needed"),
    ])
    (_, rows), = low_precision_section(frame).tables
    return {(r["runtime"], r["depth"], r["precision"]): r for r in rows.to_dict("records")}


def test_each_lower_precision_gets_its_row_and_nothing_else(table):
    assert set(table) == {("onnxruntime", 18, "int8"), ("openvino", 18, "int8"), ("openvino", 18, "bf16"),
                          ("torch", 18, "bf16"), ("onnxruntime", 50, "int8"), ("openvino", 50, "fp16")}


def test_speed_up_and_its_conservative_interval_against_fp32s_best_cell(table):
    row = table[("onnxruntime", 18, "int8")]  # 500 (475-525) against fp32's best, 200 (190-210) at b8
    assert row["at"] == "throughput b8"
    assert row["speed-up (interval)"] == "2.5 (2.26-2.76)"  # 475/210 and 525/190
    assert row["top-1 drop (interval)"] == "0.2 (-0.1-0.5) %"
    assert row["verdict"] == "faster, accuracy kept"


def test_verdicts_follow_from_the_figures(table):
    assert table[("openvino", 18, "int8")]["verdict"] == ("not faster beyond the intervals; accuracy is not "
                                                          "established (the seeded model on synthetic images: give "
                                                          "--weights and labelled --images): never picked")
    assert table[("openvino", 18, "bf16")]["verdict"] == "parity with fp32 failed: never picked"
    torch = table[("torch", 18, "bf16")]
    assert torch["verdict"].startswith("speed-up without an interval") and "accuracy failed" in torch["verdict"]
    assert table[("openvino", 50, "fp16")]["verdict"] == "slower, parity holds (no accuracy judgement needed)"


def test_the_verdict_is_the_selections_under_the_reports_accuracy_budget():
    """A 3% int8 drop fails the default 1% and passes a 5% budget, in this table as in the pick;
    a parity-passing cell is compared before a faster one that failed parity."""
    from resnet_bench.select.rules import Constraints

    frame = pd.DataFrame([cell("onnxruntime", 18, "fp32", 100),
                          cell("onnxruntime", 18, "int8", 400, status="parity_failed", parity="fail"),
                          cell("onnxruntime", 18, "int8", 300, mode="throughput", batch=8, accuracy="fail", drop=0.03)])
    for budget, verdict in ((0.01, "faster; top-1 drops 3.0%, over the 1.0% allowed: never picked"),
                            (0.05, "faster, accuracy kept")):
        (_, rows), = low_precision_section(frame, Constraints(max_accuracy_drop=budget)).tables
        assert rows.verdict.tolist() == [verdict] and rows["images/s"].tolist() == ["300"]


def test_a_precision_that_ran_at_another_batch_is_compared_best_with_best_and_says_so(table):
    row = table[("onnxruntime", 50, "int8")]
    assert row["at"] == "latency b1 (fp32) / throughput b8 (int8)"
    assert row["verdict"] == "faster, accuracy kept"
