import json
import shutil

import pytest

from resnet_bench.cli import main
from resnet_bench.report import build_report, load_runs
from resnet_bench.selection import Constraints

SECTIONS = ["## 1. Table 1, reproduced", "## 2. Speed against FLOPs", "## 3. Batch scaling",
            "## 4. Parity matrix", "## 5. Deployment-target selection", "## 6. Validity"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, store_dir, small_artifacts):
    from resnet_bench import harness
    from resnet_bench.timing import StopRule
    config = harness.SweepConfig(depths=(18,), batches=(1, 2), backends=("onnxruntime", "openvino", "tensorrt"),
                                 input_size=64, parity_images=8, artifacts=str(store_dir),
                                 rule=StopRule(warmup_iters=2, warmup_s=0, min_iters=5, min_s=0.1, max_s=2))
    path = tmp_path_factory.mktemp("runs") / "run-a"
    harness.start(config, path)
    harness.Sweep(config, path).run()
    return path


def test_report_has_all_six_sections_and_plots(tmp_path, run_dir):
    report = build_report([run_dir], tmp_path, Constraints(max_latency_ms=1000))
    text = report.read_text()
    for title in SECTIONS:
        assert title in text
    assert "ResNet-18: " in text and "qualifying configurations" in text
    assert "unavailable" in text  # the TensorRT cells are listed, not dropped
    for png in ("latency_vs_gmacs.png", "batch_scaling.png", "pareto.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert f"]({png})" in text
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<h2>6. Validity</h2>" in page


def test_nothing_qualifies_is_explained(tmp_path, run_dir):
    text = build_report([run_dir], tmp_path, Constraints(max_latency_ms=0.001)).read_text()
    assert "nothing meets p99 latency <= 0.001 ms" in text and "Closest:" in text


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
