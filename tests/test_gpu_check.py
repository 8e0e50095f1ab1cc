"""`make gpu-check`: its answer without a GPU, its plan against the real CLI, the ONNX Runtime
steps when the wheel's parts are missing and where a carried wheel lands, the sizing, and the
provenance of a copy without .git."""

import base64
import hashlib
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
import wheel_parts  # noqa: E402


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
    assert expected <= gpu_check.DEFAULT_BUDGET_S - gpu_check.REPORT_RESERVE_S  # on pace, no step is cut
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


def _wheel(folder: Path, package: str, value: int = 42) -> Path:
    """A real, minimal wheel (PEP 427) of one pure-Python package whose VALUE is ``value``."""
    import zipfile

    files = {f"{package}/__init__.py": f"VALUE = {value}\n".encode(),
             f"{package}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n".encode(),
             f"{package}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                               b"Tag: py3-none-any\n"}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for name, data in files.items()) + f"{package}-1.0.dist-info/RECORD,,\n"
    wheel = folder / f"{package}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in {**files, f"{package}-1.0.dist-info/RECORD": record.encode()}.items():
            archive.writestr(name, data)
    return wheel


def test_a_carried_wheel_installs_where_the_ort_steps_look_and_imports_from_there(tmp_path):
    """The ort-install step, run from the plan on a real wheel's parts, puts the package in the
    folder the ONNX Runtime steps check for and put first on PYTHONPATH (a first build installed it
    one folder deeper, so every ORT CUDA step would have been skipped)."""
    out, carry = tmp_path / "out", tmp_path / "carry"
    out.mkdir()
    wheel_parts.split(_wheel(tmp_path, "carriedpkg"), carry, 300)
    assert len(list(carry.glob("part-*"))) >= 2
    steps = {step.name: step for step in gpu_check.plan(out, carry)}
    install = gpu_check.run_step(steps["ort-install"], out, 60, carry=carry)
    assert install["status"] == "ok", (install, (out / "ort-install.stderr.log").read_text())
    for name in ("parity-ort-cuda", "offline-ort-cuda", "ort-cuda-cells"):
        looks_in = Path(steps[name].needs_path).parent
        env = gpu_check.step_env(carry, steps[name].ort_gpu)
        assert env["PYTHONPATH"].split(":")[0] == str(looks_in)
        assert (looks_in / "carriedpkg" / "__init__.py").is_file()
        code = "import carriedpkg; print(carriedpkg.VALUE, carriedpkg.__file__)"
        found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert found.stdout.split()[0] == "42" and found.stdout.split()[1].startswith(str(looks_in)), found
    for old in carry.glob("part-*"):  # a rerun with a newer build of it: replaced, not kept
        shutil.rmtree(old)
    wheel_parts.split(_wheel(tmp_path, "carriedpkg", value=43), carry, 300)
    again = gpu_check.run_step(steps["ort-install"], out, 60, carry=carry)
    assert again["status"] == "ok", (out / "ort-install.stderr.log").read_text()
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert found.stdout.split()[0] == "43", found


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


@pytest.mark.parametrize("origin, says", [
    ({"git_commit": "abc123", "git_dirty": True}, "the code has uncommitted changes (at abc123)"),
    ({"git_commit": None, "git_dirty": None}, "which commit this code is is unknown"),
])
def test_on_a_gpu_a_dirty_or_unknown_tree_is_refused_in_one_line_before_any_step(tmp_path, monkeypatch, capsys,
                                                                                  origin, says):
    """The check's provenance gate, reached as on a GPU machine (the GPU's name given): a dirty
    tree, or a copy whose commit cannot be told (no .git, no matching stamp), is refused unless
    --allow-dirty; nothing is made. (provenance() itself is tested on real copies above.)"""
    import resnet_bench.machine.fingerprint as fingerprint

    monkeypatch.setattr(gpu_check, "gpu_name", lambda: ("NVIDIA H100 80GB HBM3", ""))
    monkeypatch.setattr(fingerprint, "provenance", lambda: origin)
    assert gpu_check.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "--allow-dirty" in err
    assert list(tmp_path.iterdir()) == []


def test_the_mlperf_figure_is_the_gpu_named_and_none_for_a_gh200():
    assert gpu_check.mlperf_reference("NVIDIA H100 80GB HBM3")["offline"] == 88_714
    assert gpu_check.mlperf_reference("NVIDIA H200")["offline"] == 94_600
    assert gpu_check.mlperf_reference("NVIDIA GH200 480GB") is None  # not an H200
    assert "PCIe card" in gpu_check.mlperf_reference("NVIDIA H100 PCIe")["system"]
    assert "PCIe card" in gpu_check.mlperf_reference("NVIDIA H100 NVL")["system"]
    assert "PCIe" not in gpu_check.mlperf_reference("NVIDIA H100 80GB HBM3")["system"]


def test_the_summary_takes_the_mlperf_ratio_from_loadgen_offline_and_no_ratio_from_an_invalid_server(tmp_path):
    """Rows of known figures in the check's run folders: the Offline line's ratio is LoadGen's
    30,000 / 88,714 with the closed loop beside it as not comparable; a Server row with no valid
    step says so and gets no ratio; a valid one gets its share of the Offline figure."""
    from resnet_bench.results.rows import Run, measured_row
    from resnet_bench.results.runs import RunWriter

    run = Run.of("r1", {})

    def write(step: str, scenario: str, qps: float, valid: bool, **values) -> None:
        cell = dict(depth=50, variant="v1.5", backend="torch", precision="fp16", device="cuda", mode=scenario,
                    batch_size=256 if scenario == "offline" else 1, input_size=224)
        reasons = [] if valid else ["loadgen_invalid: 99th percentile latency over the bound"]
        RunWriter(tmp_path / "runs" / step / "r1").add(measured_row(
            cell, run, images_per_s=qps, reasons=reasons, scenario=scenario, qps=qps, loadgen_valid=valid,
            **values))

    write("offline-torch", "offline", 30_000, True, closed_loop_images_per_s=35_000)
    write("server-batcher", "server", 9_000, False, loadgen_percentile=99, latency_bound_ms=15,
          server_batching="dynamic batching up to 64, 2 ms timeout, buckets 1,64 on 2 request streams",
          loadgen_invalid_reason="no target QPS VALID down to 9e+03")
    text = gpu_check.summarize(tmp_path, gpu_check.run_dirs(tmp_path), "NVIDIA H100 80GB HBM3")
    offline = next(line for line in text.splitlines() if "LoadGen Offline" in line)
    assert "| 30,000 samples/s | 33.8% |" in offline and "closed loop at that batch 35,000 images/s (not comparable)" \
        in offline and "runs/offline-torch/r1" in offline
    server = next(line for line in text.splitlines() if "LoadGen Server" in line)
    assert "no valid step (LoadGen: INVALID" in server and "%" not in server, server  # no ratio, no share
    write("server-batcher", "server", 18_000, True, loadgen_percentile=99, latency_bound_ms=15,
          server_batching="dynamic batching up to 64, 2 ms timeout, buckets 1,64 on 2 request streams")
    text = gpu_check.summarize(tmp_path, gpu_check.run_dirs(tmp_path), "NVIDIA H100 80GB HBM3")
    valid = [line for line in text.splitlines() if "LoadGen Server peak" in line]
    assert len(valid) == 1 and "60% of its Offline" in valid[0] and "24.7% of Server's 72,977" in valid[0], valid
