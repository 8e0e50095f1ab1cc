import json
import subprocess
import sys

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


@pytest.mark.parametrize("args, message", [
    (["time", "--depth", "20"], "depth must be one of"),
    (["flops", "--input-size", "0"], "input size must be at least 32"),
    (["flops", "--variant", "v3"], "variant must be one of"),
    (["time", "--weights", "/no/such/file.pth"], "weights file not found"),
    (["time", "--batch", "0"], "batch size must be at least 1"),
    (["flops", "--format", "xml"], "invalid choice"),
    (["nonsense"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_weights_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a torch file at all")
    result = run_cli("time", "--weights", str(path))
    assert result.returncode == 2 and "cannot read weights file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_help_on_every_command():
    for args in (["--help"], ["flops", "--help"], ["time", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_time_reports_a_real_measurement(capsys):
    torch.set_num_threads(1)
    assert main(["time", "--depth", "18", "--input-size", "64", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["iterations"] >= 30 and row["latency_ms_p50"] > 0
    assert row["latency_ms_min"] <= row["latency_ms_p50"] <= row["latency_ms_max"]
    assert row["threads"] >= 1
