"""The gate end to end on tiny cells (ResNet-18 at 64 px): real workers, real runtimes, real
source trees copied into temporary folders with one injected change each."""

import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from benchmarks.gate_proof import copy_tree, inject
from resnet_bench.cli import main
from resnet_bench.gate import git, processes
from resnet_bench.gate import run as gate

REPO = Path(__file__).resolve().parents[2]
CELL = dict(depth=18, backend="onnxruntime", precision="fp32", device="cpu", batch_size=1, input_size=64)
QUICK = gate.GatePlan.fixed(3, blocks=2, block_s=0.02, warmup_iters=2, warmup_s=0.1)
CLI_SMALL = ["--cells", "18/onnxruntime/1", "--input-size", "64", "--rounds", "3", "--blocks", "2"]


def test_same_tree_on_both_sides_is_not_a_regression(store_dir, small_artifacts):
    config = gate.GateConfig(cells=(CELL, {**CELL, "backend": "tensorrt"}), plan=QUICK, artifacts=store_dir)
    rows = gate.run_gate(REPO, REPO, config)
    assert rows[0]["verdict"] in ("unchanged", "inconclusive") and rows[0]["n"] == 3
    assert rows[0]["low"] < rows[0]["ratio"] < rows[0]["high"] and rows[0]["base_ms"] > 0 and rows[0]["k"] >= 1
    assert rows[1]["verdict"] == "unavailable" and "TensorRT" in rows[1]["reason"]  # on both sides: no failure
    assert gate.failures(rows) == []


def test_head_whose_backend_raises_fails_the_gate_with_one_line(tmp_path, store_dir, small_artifacts, capsys):
    # The 13th call raises: in the old gate's probe (which turned it into a KeyError traceback);
    # here during the warm-up. One line on stderr names the cell and the error.
    head = copy_tree(REPO, tmp_path / "head")
    inject(head, "onnxruntime", "run", """
self.calls = getattr(self, "calls", 0) + 1
if self.calls > 12:
    raise RuntimeError("injected failure")
return self._uninjected_run(*args)
""", "raises")
    # What the CI examples run: make gate REF=... GATE_ARGS="--format markdown" (exit 1 fails the job).
    code = main(["gate", "--ref", "HEAD", "--head", str(head), "--artifacts", str(store_dir), "--format", "markdown",
                 *CLI_SMALL])
    out, err = capsys.readouterr()
    failed = [line for line in err.splitlines() if line.startswith("gate: FAIL")]
    assert code == 1 and len(failed) == 1 and "Traceback" not in err
    assert "resnet18 onnxruntime fp32 b1 64px: error: head error: RuntimeError: injected failure" in failed[0]
    assert out.startswith("### gate:") and "| error " in out  # the job summary's table


def test_head_that_cannot_load_a_backend_fails_the_gate(tmp_path, store_dir, small_artifacts):
    head = copy_tree(REPO, tmp_path / "head")
    inject(head, "onnxruntime", "unavailable_reason", "return 'onnxruntime went missing'", "unavailable")
    rows = gate.run_gate(REPO, head, gate.GateConfig(cells=(CELL,), plan=QUICK, artifacts=store_dir))
    assert rows[0]["verdict"] == "error" and "head unavailable: BackendUnavailable" in rows[0]["reason"]
    assert gate.failures(rows) == [f"{gate.cell_name(CELL)}: error: {rows[0]['reason']}"]


def test_hung_worker_is_killed_and_its_stderr_shown(tmp_path, store_dir, small_artifacts):
    head = copy_tree(REPO, tmp_path / "head")
    inject(head, "onnxruntime", "load", """
import sys, time
print("injected: loading hangs here", file=sys.stderr, flush=True)
time.sleep(3600)
""", "hangs")
    cells = (CELL, {**CELL, "batch_size": 8})
    config = gate.GateConfig(cells=cells, plan=QUICK, artifacts=store_dir, open_timeout_s=6)
    start = time.perf_counter()
    rows = gate.run_gate(REPO, head, config)
    assert time.perf_counter() - start < 30  # one 6 s timeout, not one per cell and round (6: 36 s and more)
    assert rows[0]["verdict"] == "error" and "no answer to 'open' in 6 s (killed)" in rows[0]["reason"]
    assert "injected: loading hangs here" in rows[0]["reason"]
    assert rows[1]["verdict"] == "error" and "hung earlier" in rows[1]["reason"]


def test_head_worker_that_dies_fails_each_cell_with_its_stderr(tmp_path, store_dir, small_artifacts):
    head = copy_tree(REPO, tmp_path / "head")
    inject(head, "onnxruntime", "load", """
import os, sys
print("injected: dying", file=sys.stderr, flush=True)
os._exit(7)
""", "dies")
    cells = (CELL, {**CELL, "batch_size": 8})  # the second cell gets a new worker, which dies too
    rows = gate.run_gate(REPO, head, gate.GateConfig(cells=cells, plan=QUICK, artifacts=store_dir))
    for row in rows:
        assert row["verdict"] == "error" and "head worker exited with code 7" in row["reason"]
        assert "injected: dying" in row["reason"]


def _onnx_key(tree: Path, store: Path, target: str, precision: str = "fp32") -> str:
    """The key of the small model's artifact as ``tree``'s code exports it (in its own process)."""
    code = (f"from exporters.pipeline import Exporter, ExportOptions; from resnet_bench.model.spec import ModelSpec; "
            f"print(getattr(Exporter(ModelSpec(18, input_size=64), ExportOptions(out={str(store)!r})), "
            f"{target!r})({precision!r}).key)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                            capture_output=True, text=True, check=True)
    return result.stdout.split()[-1]


@pytest.mark.parametrize("edited, target, changed", [
    ("resnet_bench/model/network.py", "onnx", True),
    ("exporters/openvino_export.py", "openvino", True),
    ("exporters/openvino_export.py", "onnx", False),  # the ONNX file does not depend on it
])
def test_a_change_to_model_or_exporter_code_gives_a_new_artifact_key(tmp_path, store_dir, small_artifacts,
                                                                      edited, target, changed):
    tree = copy_tree(REPO, tmp_path / "tree")
    path = tree / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    assert (_onnx_key(tree, store_dir, target) != small_artifacts[(target, "fp32")].key) == changed


def test_a_change_to_the_quantization_code_gives_a_new_int8_key(tmp_path, store_dir, small_artifacts):
    tree = copy_tree(REPO, tmp_path / "tree")
    before = _onnx_key(tree, store_dir, "onnx", "int8")
    path = tree / "exporters" / "quantize.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    assert _onnx_key(tree, store_dir, "onnx", "int8") != before


def test_artifact_key_names_the_exporter_library_versions(small_artifacts):
    fields = small_artifacts[("onnx", "fp32")].manifest["key_fields"]
    assert fields["onnxscript"] == metadata.version("onnxscript") and fields["torch"] and fields["code"]


def test_bad_ref_is_one_line_exit_2(capsys):
    assert main(["gate", "--ref", "no-such-ref-anywhere"]) == 2
    assert "cannot check out 'no-such-ref-anywhere'" in capsys.readouterr().err


def test_bad_plan_is_one_line_exit_2(capsys):
    assert main(["gate", "--ref", "HEAD", "--rounds", "1"]) == 2
    assert "rounds must be at least 3" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout")
def test_worktree_is_removed_afterwards():
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with git.worktree(head, REPO) as tree:
        assert any((tree / path).is_file() for path in git.WORKER_PATHS)
    assert not tree.exists()


FLAT_LAYOUT = "512fa07"  # the last commit before the sub-packages: its modules sat in resnet_bench/ flat


def _has_commit(ref: str) -> bool:
    return subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{ref}^{{commit}}"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_commit(FLAT_LAYOUT), reason=f"needs the git history back to {FLAT_LAYOUT}")
def test_the_worker_times_a_base_tree_of_the_flat_layout(tmp_path, store_dir):
    """The gate runs this tree's worker on the base's code: a base from before the move must open
    and time its cells (else they read 'unavailable' and the gate passes silently)."""
    base = copy_tree(FLAT_LAYOUT, tmp_path / "base")
    assert not (base / "resnet_bench" / "gate").exists() and (base / "resnet_bench" / "runner.py").is_file()
    worker = processes.Worker(base, "base", store_dir)
    try:
        cell = {**CELL, "backend": "torch"}  # the model in the base's own code; no export needed
        opened = worker.ask(300, op="open", cell=cell, warmup_iters=2, warmup_s=0.0)
        assert opened["ok"], opened
        block = worker.ask(60, op="block", k=3)
        assert block["ok"] and block["median_ms"] > 0
        assert worker.ask(60, op="close")["ok"]
    finally:
        worker.close()
