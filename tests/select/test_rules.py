import math

import pandas as pd
import pytest

from resnet_bench.select.rules import Constraints, pareto_front, select


def cell(backend, batch, p90_high, ips, depth=50, precision="fp32", device="cpu", status="ok", parity="pass",
         rel=1e-6, valid=True, mode="latency", machine="m1", unbounded=""):
    """A row as the harness writes it; ``p90_high`` is the upper end of p90's 95% interval."""
    p99 = math.nan if "p99" in unbounded else p90_high * 1.2
    return dict(machine=machine, device=device, backend=backend, precision=precision, mode=mode,
                batch_size=batch, depth=depth, latency_ms_p50=p90_high * 0.8, latency_ms_p50_low=p90_high * 0.78,
                latency_ms_p50_high=p90_high * 0.82, latency_ms_p90=p90_high * 0.95, latency_ms_p90_high=p90_high,
                latency_ms_p99=p99, latency_ms_p99_high=p99, unbounded=unbounded, images_per_s=ips,
                status=status, parity_status=parity, rel_l2_err=rel, valid=valid,
                invalid_reasons="" if valid else "imprecise: median known within ±3.0%, target ±1.0%")

UNBOUNDED_P99 = "p99: a 95% upper bound needs >= 368 samples, have 60"


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
    assert "nothing meets p90 latency <= 30 ms (95% upper bound)" in miss
    assert ("onnxruntime fp32 latency batch 1 on cpu (m1): p90 latency up to 60.0 ms (95% bound) is 100% over "
            "30 ms") in miss


def test_throughput_miss(frame):
    (miss,) = select(frame, Constraints(min_throughput=200, depths=(18,))).misses
    assert "110.0 images/s is 82% short of 200" in miss


def test_invalid_pick_says_why(frame):
    frame.loc[0, "valid"] = False
    frame.loc[0, "invalid_reasons"] = "drift: median moved +4.0% from the first to the last third (limit ±3.0%)"
    pick = select(frame, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks[0]
    assert "not a valid cell: drift: median moved +4.0%" in pick["reason"]


def test_pareto_front():
    rows = pd.DataFrame([cell("a", 1, 10, 100), cell("b", 8, 50, 300), cell("c", 8, 60, 200),
                         cell("d", 32, 200, 400)])
    assert list(pareto_front(rows, "latency_ms_p90_high").backend) == ["a", "b", "d"]


def test_percentile_choice(frame):
    selection = select(frame, Constraints(max_latency_ms=50, latency_percentile=50, precisions=("fp32",),
                                          depths=(50,)))
    assert selection.picks[0]["row"].latency_ms_p50_high == pytest.approx(49.2)  # p90 bound 60, p50 bound 49.2
    with pytest.raises(ValueError, match="percentile"):
        Constraints(latency_percentile=95)


def test_budget_holds_the_upper_bound_not_the_point(frame):
    """p90 is 57 ms, but all the samples say is that it is at most 60 ms: a 58 ms budget fails."""
    selection = select(frame, Constraints(max_latency_ms=58, precisions=("fp32",), depths=(50,)))
    assert selection.picks == [] and "p90 latency up to 60.0 ms (95% bound) is 3% over 58 ms" in selection.misses[0]


def test_unbounded_percentile_is_excluded_with_the_reason():
    rows = pd.DataFrame([cell("onnxruntime", 1, 60, 16, unbounded=UNBOUNDED_P99),
                         cell("openvino", 1, 400, 3)])
    selection = select(rows, Constraints(max_latency_ms=100, latency_percentile=99))
    assert selection.picks == []
    assert f"onnxruntime fp32 latency batch 1 on cpu (m1): p99 unbounded ({UNBOUNDED_P99})" in selection.misses[0]
    assert list(selection.pareto.backend) == ["openvino"]  # a cell with no p99 bound is not on the front
    # the same cells at p90, which both bound: the fast one qualifies
    assert select(rows, Constraints(max_latency_ms=100)).picks[0]["row"].backend == "onnxruntime"


def test_rows_without_intervals_never_meet_a_latency_budget():
    old = pd.DataFrame([cell("onnxruntime", 1, 60, 16)]).drop(columns=["latency_ms_p90_high", "unbounded"])
    (miss,) = select(old, Constraints(max_latency_ms=100)).misses
    assert "p90 unbounded (results schema 1 rows have no intervals)" in miss
    assert select(old, Constraints(min_throughput=10)).picks[0]["row"].backend == "onnxruntime"


def server(backend, qps, bound=100, percentile=90, depth=50, valid=True, precision="fp32", steps=5):
    """A LoadGen Server peak as ``resnet-bench loadgen`` writes it."""
    return dict(machine="m1", device="cpu", backend=backend, precision=precision, mode="server", scenario="server",
                batch_size=1, depth=depth, target_qps=qps, qps=qps * 0.97, images_per_s=qps * 0.97,
                latency_bound_ms=bound, loadgen_percentile=percentile, loadgen_valid=valid, latency_ms_p90=bound * 0.9,
                latency_ms_p99=bound * 1.3, server_search_steps=steps, status="ok", parity_status="pass",
                rel_l2_err=1e-6, valid=valid, invalid_reasons="")


def test_a_latency_budget_compares_every_finalists_server_peak(frame):
    """Every finalist (ORT, OpenVINO and torch fp32) has its Server peak: the largest peak wins,
    though ORT does more images/s in the closed loop."""
    peaks = [server("openvino", 9.5), server("onnxruntime", 8.0), server("torch", 5.0)]
    rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
    (pick,) = select(rows, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert pick["source"] == "server" and pick["row"].backend == "openvino"
    assert "serves 9.5 QPS at p90 <= 100 ms under Poisson arrivals (LoadGen Server, VALID" in pick["reason"]
    assert "the largest Server peak of the 3 finalists, each searched" in pick["reason"]
    assert "onnxruntime fp32 peaks at 8 QPS: tied within the search's 10% resolution" not in pick["reason"]
    assert "onnxruntime fp32 peaks at 8 QPS: 16% fewer" in pick["reason"]


def test_the_pick_is_not_decided_by_which_backend_ran_loadgen(frame):
    """Only OpenVINO has a Server peak (as when the full profile ran LoadGen for one backend):
    Server is not compared with the others' closed loop; all are compared closed-loop."""
    rows = pd.concat([frame, pd.DataFrame([server("openvino", 66.0)])], ignore_index=True)
    (pick,) = select(rows, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert pick["source"] == "closed-loop" and pick["row"].backend == "onnxruntime"  # 16 images/s beats 14.5
    assert "Server searches under the budget ran for 1 of 3 finalists (openvino fp32)" in pick["reason"]
    assert "like with like" in pick["reason"]
    # the same peak for every finalist, ORT's the largest: ORT by its peak
    all_three = pd.concat([frame, pd.DataFrame([server("openvino", 6.0), server("onnxruntime", 9.0),
                                                server("torch", 4.0)])], ignore_index=True)
    (pick,) = select(all_three, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert pick["source"] == "server" and pick["row"].backend == "onnxruntime"


def test_server_peaks_outside_the_question_fall_back_to_the_closed_loop_and_say_so(frame):
    rows = pd.concat([frame, pd.DataFrame([server("openvino", 9.5, bound=150),  # bound above the budget
                                           server("onnxruntime", 12, valid=False)])], ignore_index=True)
    (pick,) = select(rows, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert pick["source"] == "closed-loop" and "ran for 1 of 3 finalists (onnxruntime fp32)" in pick["reason"]
    (pick,) = select(frame, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert "Closed-loop figures only (no LoadGen Server run)" in pick["reason"]
    # held to p90 does not answer a p99 question
    peaks = [server(b, q) for b, q in (("openvino", 9.5), ("onnxruntime", 8.0), ("torch", 5.0))]
    rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
    picks = select(rows, Constraints(max_latency_ms=1000, latency_percentile=99, precisions=("fp32",),
                                     depths=(50,))).picks
    assert all(p["source"] == "closed-loop" for p in picks)
    held99 = pd.concat([frame, pd.DataFrame([{**p, "loadgen_percentile": 99} for p in peaks])], ignore_index=True)
    assert select(held99, Constraints(max_latency_ms=100, latency_percentile=99, precisions=("fp32",),
                                      depths=(50,))).picks[0]["source"] == "server"


def test_finalists_are_the_configurations_that_meet_every_constraint_but_latency(frame):
    """ORT fp16 (rel. error 9e-3) has no Server search. Under --max-rel-err 1e-4 it is not a
    finalist, so the three fp32 finalists' peaks decide; without that constraint it is one, and
    its missing search sends every finalist to the closed loop."""
    peaks = [server("openvino", 9.5), server("onnxruntime", 8.0), server("torch", 5.0)]
    rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
    (pick,) = select(rows, Constraints(max_latency_ms=100, max_rel_err=1e-4, depths=(50,))).picks
    assert pick["source"] == "server" and pick["row"].backend == "openvino", pick["reason"]
    (pick,) = select(rows, Constraints(max_latency_ms=100, depths=(50,))).picks
    assert pick["source"] == "closed-loop", pick["reason"]
    assert "ran for 3 of 4 finalists" in pick["reason"], pick["reason"]
    # --min-throughput 12 leaves ORT and OpenVINO fp32 (closed loop 17.5, 15.4 images/s; torch 10): their peaks
    peaks = [server("openvino", 14.0), server("onnxruntime", 13.0), server("torch", 5.0)]
    rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
    fp32 = dict(max_latency_ms=100, precisions=("fp32",), depths=(50,))
    (pick,) = select(rows, Constraints(min_throughput=12, **fp32)).picks
    assert pick["source"] == "server" and "of the 2 finalists" in pick["reason"], pick["reason"]
    # --min-throughput 15: both searched, neither peak reaches it: said, not passed off as like with like
    (pick,) = select(rows, Constraints(min_throughput=15, **fp32)).picks
    assert pick["source"] == "closed-loop" and "none found a VALID rate that meets" in pick["reason"], pick["reason"]


def test_a_finalist_whose_search_found_no_valid_rate_loses_to_the_peaks_and_is_named(frame):
    peaks = [server("openvino", 9.5), server("onnxruntime", 12.0, valid=False), server("torch", 5.0)]
    rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
    (pick,) = select(rows, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
    assert pick["source"] == "server" and pick["row"].backend == "openvino", pick["reason"]
    assert "Searched, no VALID peak that meets the constraints within the budget: onnxruntime fp32." in pick["reason"]
    # a run at one fixed rate, or a Server row that failed parity, is not a search: closed loop for all
    for unlike in (dict(server_search_steps=0), dict(parity_status="fail", status="parity_failed")):
        peaks = [server("openvino", 9.5), {**server("onnxruntime", 12.0), **unlike}, server("torch", 5.0)]
        rows = pd.concat([frame, pd.DataFrame(peaks)], ignore_index=True)
        (pick,) = select(rows, Constraints(max_latency_ms=100, precisions=("fp32",), depths=(50,))).picks
        assert pick["source"] == "closed-loop" and "ran for 2 of 3 finalists" in pick["reason"], pick["reason"]


def test_loadgen_rows_other_than_server_peaks_are_never_candidates(frame):
    offline = dict(server("openvino", 500), mode="offline", scenario="offline")
    rows = pd.concat([frame, pd.DataFrame([offline])], ignore_index=True)
    picks = select(rows, Constraints(depths=(50,))).picks
    assert picks[0]["row"]["mode"] in ("latency", "throughput")  # not the 500 samples/s Offline row


def test_low_precision_on_the_seeded_model_is_timed_but_never_picked():
    """int8 on the seeded model passes parity by its error alone (top-1 agreement 0.5 here): its
    accuracy is not established, so the slower fp32 cell is the pick, and one sentence says why."""
    rows = pd.DataFrame([
        {**cell("openvino", 8, 400, 24), "top1_agreement": 1.0, "accuracy_status": "not needed"},
        {**cell("openvino", 8, 100, 90, precision="int8", rel=0.24), "top1_agreement": 0.5,
         "accuracy_status": "not established"},
        {**cell("torch", 8, 100, 80, precision="bf16", rel=0.05), "top1_agreement": 0.9},  # no verdict: an old run
    ])
    selection = select(rows, Constraints())
    (pick,) = selection.picks
    assert pick["row"].precision == "fp32"
    assert selection.excluded[50] == ("ResNet-50: openvino int8, torch bf16 timed but not picked: its accuracy is not "
                                      "established (the seeded model on synthetic images: give --weights and "
                                      "labelled --images).")
    strict = Constraints(min_top1_agreement=0.99)
    assert select(rows, strict).picks[0]["row"].precision == "fp32" and "top-1 agreement >= 0.99" in strict.describe()
    with pytest.raises(ValueError, match="min_top1_agreement"):
        Constraints(min_top1_agreement=1.5)


def test_low_precision_with_established_accuracy_is_judged_by_the_budget():
    rows = pd.DataFrame([
        {**cell("openvino", 8, 400, 24), "accuracy_status": "pass", "accuracy_drop": 0.0},
        {**cell("openvino", 8, 100, 90, precision="int8", rel=0.24), "accuracy_status": "pass",
         "accuracy_drop": 0.006},
        {**cell("onnxruntime", 8, 90, 95, precision="int8", rel=0.3), "accuracy_status": "fail",
         "accuracy_drop": 0.04, "accuracy_reason": "a drop of 4.0% over the 1.0% allowed"},
    ])
    selection = select(rows, Constraints())
    assert selection.picks[0]["row"].backend == "openvino" and selection.picks[0]["row"].precision == "int8"
    assert "onnxruntime int8 timed but not picked: its accuracy failed (a drop of 4.0%" in selection.excluded[50]
    # a stricter budget than the bench's keeps int8 out too; a looser one lets the failed cell in
    assert select(rows, Constraints(max_accuracy_drop=0.005)).picks[0]["row"].precision == "fp32"
    assert select(rows, Constraints(max_accuracy_drop=0.05)).picks[0]["row"].backend == "onnxruntime"
    with pytest.raises(ValueError, match="max-accuracy-drop must be between"):
        Constraints(max_accuracy_drop=1.0)
