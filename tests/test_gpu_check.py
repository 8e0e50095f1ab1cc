"""`make gpu-check`: its answer without a GPU, its plan against the real CLI, the ONNX Runtime
steps when the wheel's parts are missing, the sizing, and the provenance of a copy without .git."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_bench.cli.parser import build_parser

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


def test_every_cli_step_parses_with_the_real_parser(tmp_path):
    parser = build_parser()
    for step in gpu_check.plan(tmp_path):
        if step.args[:2] == ("-m", "resnet_bench"):
            args = parser.parse_args(list(step.args[2:]))  # exits on a bad flag
            assert args.func is not None, step.name


def test_the_plan_runs_loadgen_offline_through_every_gpu_backend_and_the_batcher(tmp_path):
    steps = {step.name: step for step in gpu_check.plan(tmp_path)}
    offline = {name: " ".join(steps[name].args) for name in gpu_check.OFFLINE_STEPS}
    assert all("--scenario offline" in args for args in offline.values())
    assert "--backend torch-compile" in offline["offline-torch-compile"]
    assert "--cuda-graphs" in offline["offline-cuda-graphs"] and "--backend onnxruntime" in offline["offline-ort-cuda"]
    server = steps["server-batcher"].args
    assert [server[server.index(flag) + 1] for flag in ("--scenario", "--percentile", "--latency-bound-ms")] == \
        ["server", "99", "15"] and "--no-batching" not in server
    graphs = " ".join(steps["torch-compile-graphs"].args)
    assert "--backends torch-compile" in graphs and "--cuda-graphs" in graphs and "--batches 1,256" in graphs
    for step in steps.values():  # every run writes under the check's own folder
        if "--out" in step.args and step.args[:3] != ("-m", "resnet_bench", "parity"):
            assert str(tmp_path / "runs") in step.args[step.args.index("--out") + 1]


def test_the_sizing_fits_fifteen_minutes_of_device_time():
    steps = gpu_check.plan(Path("out"))
    expected = sum(gpu_check.EXPECTED_S[step.name] for step in steps)
    assert expected <= gpu_check.DEFAULT_BUDGET_S - gpu_check.REPORT_RESERVE_S + 15  # the last step may be cut
    assert gpu_check.START_S + gpu_check.CARRY_S + gpu_check.DEFAULT_BUDGET_S <= gpu_check.DEVICE_S
    assert list(gpu_check.EXPECTED_S) == [step.name for step in steps]


def test_missing_wheel_parts_are_a_finding_and_the_ort_steps_say_why(tmp_path):
    out, carry = tmp_path / "out", tmp_path / "carry"
    out.mkdir()
    steps = {step.name: step for step in gpu_check.plan(out, carry)}
    install = gpu_check.run_step(steps["ort-install"], out, 60, carry=carry)
    assert install["status"].startswith("finding: wheel parts missing"), install
    for name in ("parity-ort-cuda", "offline-ort-cuda", "ort-cuda-cells"):
        record = gpu_check.run_step(steps[name], out, 60, carry=carry)
        assert record["status"].startswith("skipped:") and "is not there" in record["status"] or \
            "mlperf_loadgen" in record["status"], record


def test_a_copy_without_git_takes_its_commit_from_the_stamp_while_the_code_is_unchanged(tmp_path):
    copy = tmp_path / "copy"
    for name in ("resnet_bench", "exporters", "benchmarks"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(REPO / name, copy / name)
    code = "import json; from resnet_bench.machine.fingerprint import provenance; print(json.dumps(provenance()))"

    def provenance() -> dict:
        result = subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True, check=True,
                                env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES":
                                     str(tmp_path)})
        return json.loads(result.stdout)

    assert provenance() == {"git_commit": None, "git_dirty": None}  # no git, no stamp: unknown
    from resnet_bench.machine.fingerprint import code_sha256
    (copy / ".provenance.json").write_text(json.dumps({"git_commit": "abc123", "git_dirty": False,
                                                       "code_sha256": code_sha256(copy)}))
    assert provenance() == {"git_commit": "abc123", "git_dirty": False}
    edited = copy / "resnet_bench" / "gate" / "run.py"
    edited.write_text(edited.read_text() + "\n# an edit after the stamp\n")
    assert provenance() == {"git_commit": None, "git_dirty": None}  # the stamp no longer describes this code


def test_a_checkout_is_dirty_exactly_when_its_code_has_uncommitted_changes(tmp_path):
    """From any working directory: the code's commit, clean after the commit, dirty after an edit to
    the package (or a new file in it), clean again when only a file outside the code changed. (It
    read clean with every change: git status ran inside resnet_bench/ on paths from the top.)"""
    copy = tmp_path / "checkout"
    for name in ("resnet_bench", "exporters", "benchmarks"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "Makefile", "README.md", ".gitignore"):  # .gitignore: the imports' __pycache__
        shutil.copy(REPO / name, copy / name)
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": str(tmp_path),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "code"]):
        subprocess.run(["git", *args], cwd=copy, check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=copy, check=True, env=env, capture_output=True,
                            text=True).stdout.strip()
    code = "import json; from resnet_bench.machine.fingerprint import provenance; print(json.dumps(provenance()))"

    def provenance() -> dict:
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                                check=True, env=env)
        return json.loads(result.stdout)

    assert provenance() == {"git_commit": commit, "git_dirty": False}
    (copy / "README.md").write_text("not code\n")
    assert provenance() == {"git_commit": commit, "git_dirty": False}
    edited = copy / "resnet_bench" / "gate" / "run.py"
    edited.write_text(edited.read_text() + "\n# an uncommitted edit\n")
    assert provenance() == {"git_commit": commit, "git_dirty": True}
    subprocess.run(["git", "checkout", "-q", "--", "resnet_bench"], cwd=copy, check=True, env=env)
    assert provenance() == {"git_commit": commit, "git_dirty": False}  # README still edited: not code
    (copy / "exporters" / "new_module.py").write_text("X = 1\n")
    assert provenance() == {"git_commit": commit, "git_dirty": True}
    # a copy of the package inside that checkout (an install into a venv there) is not its commit
    inner = copy / "build" / "site"
    shutil.copytree(copy / "resnet_bench", inner / "resnet_bench", ignore=shutil.ignore_patterns("__pycache__"))
    env["PYTHONPATH"] = str(inner)
    assert provenance() == {"git_commit": None, "git_dirty": None}
