import subprocess
from pathlib import Path

import pytest

from resnet_bench import gate
from resnet_bench.cli import main

REPO = Path(__file__).resolve().parent.parent
CELL = dict(depth=18, backend="onnxruntime", precision="fp32", device="cpu", batch_size=1, input_size=64)


def test_same_tree_on_both_sides_is_not_a_regression(store_dir, small_artifacts):
    config = gate.GateConfig(cells=[CELL, {**CELL, "backend": "tensorrt"}], pairs=10, block_s=0.05,
                             artifacts=store_dir)
    rows = gate.run_gate(REPO, REPO, config)
    assert rows[0]["verdict"] in ("unchanged", "inconclusive") and rows[0]["n"] >= 10
    assert 0.5 < rows[0]["ratio"] < 2 and rows[0]["base_ms"] > 0
    assert rows[1]["verdict"] == "unavailable" and "TensorRT" in rows[1]["reason"]


def test_bad_ref_is_one_line_exit_2(capsys):
    assert main(["gate", "--ref", "no-such-ref-anywhere"]) == 2
    assert "cannot check out 'no-such-ref-anywhere'" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout")
def test_worktree_is_removed_afterwards():
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with gate.worktree(head, REPO) as tree:
        assert (tree / "resnet_bench" / "gate_worker.py").is_file()
    assert not tree.exists()
