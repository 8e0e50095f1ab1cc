import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from resnet_bench.cli import main

TORCHVISION_GMACS = {18: 1.814, 34: 3.664, 50: 4.089, 101: 7.801, 152: 11.514}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "resnet_bench", *args], capture_output=True, text=True)


def test_flops_json_both_variants(capsys):
    assert main(["flops", "--variant", "both", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 10
    for row in rows:
        assert {"depth", "variant", "params", "gmacs", "paper_gmacs", "deviation_pct"} <= set(row)
        if row["variant"] == "v1":
            assert abs(row["deviation_pct"]) < 2
        else:
            assert abs(row["gmacs"] / TORCHVISION_GMACS[row["depth"]] - 1) < 0.005


def test_flops_csv_and_table(capsys):
    assert main(["flops", "--variant", "v1", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("depth,variant") and len(out) == 6
    assert main(["flops", "--input-size", "64"]) == 0
    assert "64x64" in capsys.readouterr().out


HUGE = "100000000"  # 1e8 images: terabytes


def _no_cuda():
    return pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")


def _no_tensorrt():
    import importlib.util
    return pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")


# Every bad input the README lists (section "The CLI"), and the rest of point 6 of issue 10,
# run in-process (an exception escaping main() fails the test as a traceback would).
# `bench`, `export`, `parity` get their folders in tmp_path, which must stay without a run.
@pytest.mark.parametrize("args, message", [
    (["time", "--depth", "20"], "depth must be one of"),
    (["bench", "--depths", "20"], "depth must be one of"),
    (["flops", "--input-size", "0"], "input size must be at least 32"),
    (["bench", "--input-size", "0"], "input size must be at least 32"),
    (["flops", "--variant", "v3"], "variant must be one of"),
    (["time", "--variant", "v3"], "variant must be one of"),
    (["export", "--to", "xyz"], "unknown target 'xyz'"),
    (["parity", "--backends", "nope"], "unknown backend 'nope'"),
    (["bench", "--backends", "nope"], "unknown backend 'nope'"),
    (["parity", "--precision", "int4"], "unknown precision 'int4'"),
    (["bench", "--precisions", "int4"], "unknown precision 'int4'"),
    (["bench", "--modes", "offline"], "mode must be one of"),
    (["bench", "--profile", "huge"], "profile must be one of"),
    (["bench", "--threads", "0"], "threads must be at least 1"),
    (["parity", "--threads", "0"], "threads must be at least 1"),
    (["time", "--weights", "/no/such/file.pth"], "weights file not found"),
    (["bench", "--weights", "/no/such/file.pth"], "weights file not found"),
    (["bench", "--variant", "v3"], "variant must be one of"),
    (["bench", "--images", "/no/such/folder"], "image folder not found"),
    (["bench", "--target-precision", "0"], "expected a fraction between"),
    (["export", "--onnx", "/no/such/file.onnx"], "ONNX file not found"),
    pytest.param(["export", "--to", "tensorrt"], "TensorRT is not installed", marks=_no_tensorrt()),
    pytest.param(["bench", "--device", "cuda"], "--device cuda: no CUDA device", marks=_no_cuda()),
    pytest.param(["parity", "--device", "cuda"], "--device cuda: no CUDA device", marks=_no_cuda()),
    (["bench", "--device", "tpu"], "device must be one of cpu, cuda"),
    (["time", "--batch", "0"], "batch size must be at least 1"),
    (["bench", "--batches", "0"], "batch size"),
    (["parity", "--count", "0"], "--count: batch size must be at least 1"),
    (["export", "--static-batch", "0"], "static batch must be at least 1"),
    (["time", "--batch", HUGE], f"--batch {HUGE} at 224x224 needs at least"),
    (["time", "--input-size", "100000"], "--batch 1 at 100000x100000 needs at least"),
    (["bench", "--batches", f"1,{HUGE}"], f"--batches {HUGE} at 224x224 needs at least"),
    (["parity", "--count", HUGE], f"--count {HUGE} at 224x224 needs at least"),
    (["export", "--static-batch", HUGE], f"--static-batch {HUGE} at 224x224 needs at least"),
    (["bench", "--out", "/proc/nope"], "--out /proc/nope: cannot write there"),
    (["bench", "--artifacts", "/proc/nope"], "--artifacts /proc/nope: cannot write there"),
    (["export", "--out", "/proc/nope"], "--out /proc/nope: cannot write there"),
    (["parity", "--out", "/proc/nope"], "--out /proc/nope: cannot write there"),
    (["bench", "--resume", "/proc"], "cannot resume /proc: not a run directory"),
    (["flops", "--format", "xml"], "invalid choice"),
])
def test_every_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    folders = {"bench": {"--out": "runs", "--artifacts": "store"}, "export": {"--out": "store"},
               "parity": {"--out": "store"}}.get(args[0], {})
    args += [part for flag, name in folders.items() if flag not in args for part in (flag, str(tmp_path / name))]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and message in err, err
    assert out == ""
    assert not list(tmp_path.glob("runs/*")), "a run was started"


@pytest.mark.parametrize("args, message", [
    (["time", "--depth", "20"], "depth must be one of"),
    (["time", "--batch", "0"], "batch size must be at least 1"),
    (["time", "--batch", HUGE], "needs at least"),
    (["bench", "--out", "/proc/nope"], "cannot write there"),
    (["nonsense"], "invalid choice"),
])
def test_bad_input_in_a_real_process_is_one_line_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_too_large_a_batch_says_the_bytes_needed_and_available(capsys):
    assert main(["time", "--batch", HUGE]) == 2
    err = capsys.readouterr().err
    need = 4 * 224**2 * 35 * int(HUGE)  # fp32 input (3 channels) and two 64 x 112 x 112 activations per image
    assert f"needs at least {need / 2**30:,.1f} GiB ({need:,} bytes)" in err
    assert err.rstrip().endswith("GiB available")


def test_an_allocation_that_fails_anyway_is_one_line_exit_2():
    """A batch the memory estimate lets through can still fail to allocate: one line, exit 2."""
    script = ("import resource, sys\n"
              "from resnet_bench.cli import main\n"
              "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
              "resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.RLIM_INFINITY))\n"
              "sys.exit(main(sys.argv[1:]))\n")
    # 4000 images at 64x64: conv1's output alone is 1 GiB, the estimate's lower bound 2.2 GiB
    result = subprocess.run([sys.executable, "-c", script, "time", "--depth", "18", "--input-size", "64",
                             "--batch", "4000"], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "out of memory" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "can't allocate memory" in result.stderr


def test_corrupt_weights_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a torch file at all")
    result = run_cli("time", "--weights", str(path))
    assert result.returncode == 2 and "cannot read weights file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_corrupt_onnx_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"not a protobuf")
    assert main(["export", "--onnx", str(path), "--out", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read ONNX file" in err


def test_help_on_every_command(capsys):
    result = run_cli("--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    for command in ("flops", "time", "export", "parity", "bench", "report", "compare", "gate"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and f"usage: resnet-bench {command}" in capsys.readouterr().out


def test_time_reports_a_real_measurement(capsys):
    torch.set_num_threads(1)
    assert main(["time", "--depth", "18", "--input-size", "64", "--max-time", "1", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["iterations"] >= 30 and row["latency_ms_p50"] > 0
    # stopped by --max-time: the timed calls sum to 1 s, past it by one call at most (2 s without it)
    assert row["iterations"] * row["latency_ms_mean"] <= 1000 + row["latency_ms_max"]
    assert row["latency_ms_min"] <= row["latency_ms_p50"] <= row["latency_ms_max"]
    assert row["threads"] == torch.get_num_threads()  # what torch ran with (the test set 1 before)


def _tiny_bench(store_dir, out, fmt, backends="onnxruntime"):
    """One cell per backend in seconds: ResNet-18 at 64x64 (exported by small_artifacts), batch 1."""
    return ["bench", "--depths", "18", "--input-size", "64", "--batches", "1", "--backends", backends,
            "--modes", "latency", "--min-time", "0.1", "--max-time", "0.3", "--warmup-time", "0",
            "--warmup-iters", "1", "--min-iters", "3", "--artifacts", str(store_dir), "--out", str(out),
            "--confirm-s", "0", "--no-roofs", "--format", fmt]  # no re-measuring (tests/select), no roofs (test_sweep)


def test_bench_json_and_csv_are_only_data_on_stdout(tmp_path, capsys, store_dir, small_artifacts):
    """`bench --format json | python -m json.tool` works, with the run folder in every row and on
    stderr; `--format csv` is CSV alone (shown on --resume of the same run, which measures nothing)."""
    import io

    import pandas as pd

    bench = " ".join(_tiny_bench(store_dir, tmp_path / "runs", "json", backends="onnxruntime,openvino"))
    result = subprocess.run(f"set -o pipefail; {sys.executable} -m resnet_bench {bench} | {sys.executable} "
                            f"-m json.tool", shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    (run_dir,) = tmp_path.glob("runs/*")
    assert [(r["backend"], r["status"]) for r in rows] == [("onnxruntime", "ok"), ("openvino", "ok")]
    assert {r["run_dir"] for r in rows} == {str(run_dir)}
    assert str(run_dir) in result.stderr

    assert main(["bench", "--resume", str(run_dir), "--confirm-s", "0", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.backend) == ["onnxruntime", "openvino"] and set(frame.run_dir) == {str(run_dir)}
    assert list(frame.latency_ms_p50) == [r["latency_ms_p50"] for r in rows] and str(run_dir) in err


def test_bench_with_real_weights_and_images(tmp_path, capsys, store_dir, resnet18_model):
    """`bench --weights W --images DIR`: the model is the given weights (the key has their hash)
    and parity runs on the real images; a tampered weights file would change the figures."""
    import torch
    from PIL import Image

    weights = tmp_path / "r18.pth"
    torch.save(resnet18_model.state_dict(), weights)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    args = _tiny_bench(store_dir, tmp_path / "runs", "json") + ["--weights", str(weights), "--images", str(folder)]
    assert main(args) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["parity_status"] == "pass"
    (run_dir,) = tmp_path.glob("runs/*")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["weights"] == str(weights) and config["images"] == str(folder)


def test_compare_of_two_single_runs_of_identical_code_exits_0_with_the_difference_and_warning(
        tmp_path, capsys, store_dir, small_artifacts):
    for side in ("base", "head"):
        assert main(_tiny_bench(store_dir, tmp_path / side, "json")) == 0
    capsys.readouterr()
    base, head = (next((tmp_path / side).glob("*")) for side in ("base", "head"))
    assert main(["compare", str(base), str(head), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    (row,) = json.loads(out)
    assert row["verdict"] in ("within", "slower", "faster") and row["low"] <= row["ratio"] <= row["high"]
    assert "cannot tell code from process noise" in row["reason"] and "run `gate` for a verdict" in err
    counts = re.search(r"warning: (\d+) cell\(s\) slower and (\d+) faster by more than 10%, (\d+) within", err)
    assert counts and sum(map(int, counts.groups())) == 1  # the one cell, with its difference


def test_compare_baseline_json_stays_json(tmp_path, capsys):
    """The baseline warnings go to stderr, so `compare --baseline --format json` prints JSON only."""
    from tests.gate.test_statistics import _hand_made_run

    head = _hand_made_run(tmp_path / "head", "abc", [("torch", np.full(20, 30.0), "pass")])
    _hand_made_run(tmp_path / "baselines" / "abc", "abc", [("torch", np.full(20, 20.0), "pass")])
    assert main(["compare", str(head), "--baseline", "--baselines", str(tmp_path / "baselines"),
                 "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [r["verdict"] for r in json.loads(out)] == ["slower"] and "warning: 1 cell(s) slower" in err
    assert main(["compare", str(head), "--baseline", "--baselines", str(tmp_path / "none"), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and "no stored baseline" in err
