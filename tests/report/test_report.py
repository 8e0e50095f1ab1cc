import json
import shutil

import pytest

from resnet_bench.cli import main
from resnet_bench.report import build_report
from resnet_bench.report.load import load_runs
from resnet_bench.report.sections import reason_counts, validity_section
from resnet_bench.select.rules import Constraints

SECTIONS = ["## 1. Table 1, reproduced", "## 2. Speed against FLOPs", "## 3. Batch scaling",
            "## 4. Parity matrix", "## 5. Under load (MLPerf LoadGen)", "## 6. Deployment-target selection",
            "## 7. What low precision buys", "## 8. Validity"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, store_dir, small_artifacts):
    from resnet_bench.measure.timing import StopRule
    from resnet_bench.results.runs import start
    from resnet_bench.sweep.config import SweepConfig
    from resnet_bench.sweep.sweep import Sweep

    config = SweepConfig(depths=(18,), batches=(1, 2), backends=("onnxruntime", "openvino", "tensorrt"),
                         input_size=64, parity_images=8, artifacts=str(store_dir), roofs=False,
                         rule=StopRule(warmup_iters=2, warmup_s=0, min_iters=6, min_s=0.1, max_s=10))
    path = tmp_path_factory.mktemp("runs") / "run-a"
    start(config, path)
    Sweep(config, path).run()
    return path


def test_report_has_all_seven_sections_and_plots(tmp_path, run_dir):
    # p50: 6 samples bound it, so the cells qualify however slow a loaded machine makes them
    report = build_report([run_dir], tmp_path, Constraints(max_latency_ms=1000, latency_percentile=50))
    text = report.read_text()
    for title in SECTIONS:
        assert title in text
    assert "ResNet-18: " in text and "qualifying configurations" in text
    assert "Across machines" not in text  # no prices, one machine: no empty cost section
    assert "unavailable" in text  # the TensorRT cells are listed, not dropped
    for png in ("latency_vs_gmacs.png", "batch_scaling.png", "pareto.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert f"]({png})" in text
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<h2>8. Validity</h2>" in page


@pytest.fixture(scope="module")
def loadgen_dir(tmp_path_factory, store_dir, small_artifacts):
    """A LoadGen run of ResNet-18 at 64 px: SingleStream and a short Server peak search."""
    from resnet_bench.measure.timing import RULES, StopRule
    from resnet_bench.results.runs import RunWriter, start
    from resnet_bench.scenarios.loadgen.cell import LoadgenConfig, run_cell
    from resnet_bench.scenarios.loadgen.settings import Duration

    pytest.importorskip("mlperf_loadgen")
    config = LoadgenConfig(depth=18, backend="onnxruntime", input_size=64, artifacts=str(store_dir),
                           scenarios=("singlestream", "server"), accuracy_count=8, max_steps=3)
    path = tmp_path_factory.mktemp("loadgen") / "run-lg"
    start(config, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RULES, "loadgen_reference", StopRule(warmup_iters=2, warmup_s=0, min_iters=40, min_s=0.2,
                                                            max_s=2))
        run_cell(config, path, RunWriter(path), {"fingerprint_id": "test"},
                 span=Duration("test", 0.5, server_queries=64))  # 64 Server queries: as tests/scenarios
    return path


def test_under_load_puts_the_server_peak_beside_the_closed_loop(tmp_path, run_dir, loadgen_dir):
    # p50: 6 samples bound it, so both backends stay finalists however slow a loaded host makes them
    # (at p90 a CI run lost one, and the Server search then covered every finalist)
    text = build_report([run_dir, loadgen_dir], tmp_path, Constraints(max_latency_ms=100, latency_percentile=50)
                        ).read_text()
    assert "## 5. Under load (MLPerf LoadGen)" in text
    assert "**Server peak at the bound, beside the closed loop**" in text
    assert "peak QPS (Poisson)" in text and "p90 Poisson / closed" in text and "**LoadGen scenarios**" in text
    assert (tmp_path / "under_load.png").stat().st_size > 1000 and "](under_load.png)" in text
    # a Server peak for one finalist only: every finalist is compared closed loop, like with like
    assert "LoadGen Server searches under the budget ran for 1 of" in text and "like with like" in text
    assert "under Poisson arrivals (LoadGen Server, VALID" not in text
    frame, _ = load_runs([run_dir, loadgen_dir])
    assert set(frame.scenario.dropna()) == {"singlestream", "server"}
    # the sweep's sections keep to the sweep's rows
    batch = text.split("## 3. Batch scaling")[1].split("## 4.")[0]
    assert "singlestream" not in batch and "server" not in batch


def test_nothing_qualifies_is_explained(tmp_path, run_dir):
    text = build_report([run_dir], tmp_path, Constraints(max_latency_ms=0.001)).read_text()
    assert "nothing meets p90 latency <= 0.001 ms (95% upper bound)" in text and "Closest:" in text


def test_two_machines_stay_apart(tmp_path, run_dir):
    other = tmp_path / "run-b"
    shutil.copytree(run_dir, other)
    fingerprint = json.loads((other / "fingerprint.json").read_text())
    fingerprint.update(fingerprint_id="0123456789ab", cpu_model="Other CPU", cpus_available=16)
    (other / "fingerprint.json").write_text(json.dumps(fingerprint))
    frame, fingerprints = load_runs([run_dir, other])
    assert len(fingerprints) == 2 and frame.machine.nunique() == 2
    text = build_report([run_dir, other], tmp_path / "out").read_text()
    assert "012345 Other CPU x16" in text
    assert "2 machine(s)" in text


def test_cli_report_and_bad_input(tmp_path, run_dir, capsys):
    assert main(["report", str(run_dir), "--out", str(tmp_path), "--max-latency-ms", "500"]) == 0
    assert (tmp_path / "report.html").exists()
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--latency-percentile", "95"]) == 2


def test_report_shows_the_median_interval_of_every_cell(tmp_path, run_dir):
    text = build_report([run_dir], tmp_path).read_text()
    frame, _ = load_runs([run_dir])
    ran = frame[frame.status == "ok"]
    assert len(ran) == 8 and ran.latency_ms_p50_low.notna().all() and ran.latency_ms_p50_high.notna().all()
    assert "latency_ms_p50_low" in text and "median_precision" in text


def test_validity_section_counts_reasons_by_code():
    """Reasons as the timing writes them, for samples of known shape: a steady slowdown
    (drift, and a wide median) and a cell stopped before its minimum iterations; and a row
    written before the codes, in the old wording, counted under the same kinds."""
    import numpy as np
    import pandas as pd

    from resnet_bench.measure.timing import Timing

    slowing = Timing(np.linspace(10, 20, 60), 0, 36).invalid_reasons()
    short = Timing(np.full(20, 10.0), 0, 36).invalid_reasons()
    assert [r.split(": ")[0] for r in slowing] == ["imprecise", "drift"]
    assert short == ["few_iterations: 20 < 36 (max time reached)"]
    legacy = ["median known within ±3.1%, target ±1.0%", "too few iterations: 20 < 36 (max time reached)"]
    frame = pd.DataFrame([
        dict(machine="m", depth=18, backend="torch", precision="fp32", device="cpu", mode="latency", batch_size=b,
             status="ok", valid=not reasons, invalid_reasons="; ".join(reasons), error="")
        for b, reasons in ((1, slowing), (2, short), (4, []), (8, legacy))])
    assert reason_counts(frame[~frame.valid]) == {"median not known within the target precision": 2,
                                                  "drift between the first and last third": 1,
                                                  "fewer iterations than the rule's minimum (max time reached)": 2}
    text = " ".join(validity_section(frame, {}).text)
    assert "3 of 4 cells" in text and "drift between the first and last third: 1" in text


def test_flops_ratios_never_divide_a_graphed_latency_by_an_eager_one(tmp_path):
    """On the H100 a CUDA-graphs ResNet-50 row (0.93 ms) was divided by an eager ResNet-18 row."""
    import pandas as pd

    from resnet_bench.report.sections import flops_section

    def row(depth, graphs, p50, gmacs):
        return dict(machine="m", device="cuda", backend="torch", precision="fp16", mode="latency", batch_size=1,
                    status="ok", depth=depth, cuda_graphs=graphs, latency_ms_p50=p50, gmacs=gmacs,
                    images_per_s=1e3 / p50, achieved_gflops=1.0, roofline_fraction=0.1)

    frame = pd.DataFrame([row(18, False, 1.8, 1.8), row(50, False, 5.6, 4.1), row(50, True, 0.93, 4.1)])
    table = flops_section(frame, tmp_path).tables[0][1]
    eager50 = table[(table.depth == 50) & ~table.cuda_graphs].iloc[0]
    graphed50 = table[(table.depth == 50) & table.cuda_graphs].iloc[0]
    assert eager50["latency / ResNet-18"] == pytest.approx(5.6 / 1.8)
    assert graphed50["latency / ResNet-50"] == pytest.approx(1.0)  # its own group: nothing eager to divide by
