"""`make gpu-check`: the plan it runs, and its one-line answer without a GPU."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer without a GPU")
def test_without_a_gpu_it_answers_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--root", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no CUDA device is visible" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_the_plan_is_what_the_issue_asks_and_fits_the_readme_sizing(tmp_path):
    steps = {step.name: step for step in gpu_check.plan(tmp_path)}
    eager = " ".join(steps["resnet50-eager"].args)
    assert "--batches 1,8,64,256" in eager and "--precisions fp32,tf32,fp16,bf16" in eager
    assert "--modes latency,throughput" in eager
    assert "--depths 18,152" in " ".join(steps["resnet18-152-fp16"].args)
    assert "--cuda-graphs" in steps["resnet50-cuda-graphs"].args
    assert "torch-compile" in steps["resnet50-torch-compile"].args
    assert "gpu or tensorrt" in steps["tests"].args
    # README "The GPU check" sizes 52 timed cells and 3 inductor compiles
    assert sum(s.cells for s in steps.values()) == 52 and sum(s.compiles for s in steps.values()) == 3
    for step in steps.values():  # every sweep writes under the check's own folder
        if "bench" in step.args:
            assert str(tmp_path / "runs") in step.args[step.args.index("--out") + 1]
