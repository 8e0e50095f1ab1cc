"""The gate end to end over a backend of known service time (no model): real worker processes on
real source trees, a head whose backend sleeps 25% longer in one cell, and the shipped decision.

Each cell sleeps a known time per call, so the true ratio is known: 1.25 in the slowed cell, 1.00
in the other. A decision that mixed up base and head would call the slowed cell improved, and
the gate would pass.
"""

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.gate_proof import copy_tree
from resnet_bench.cli import main
from resnet_bench.gate import run as gate

REPO = Path(__file__).resolve().parents[2]
CELL = dict(depth=18, backend="service-time", precision="fp32", device="cpu", input_size=8)
CELLS = ({**CELL, "batch_size": 1, "service_ms": 3.0}, {**CELL, "batch_size": 2, "service_ms": 5.0})
SLOWED = "18/service-time/2"  # the cell the head makes 25% slower
PLAN = replace(gate.GatePlan(), block_s=0.04, warmup_iters=2, warmup_s=0.0)  # the shipped looks and levels


def _head(tmp_path: Path, body: str) -> Path:
    """A copy of this tree whose known-service-time backend runs ``body`` as its service(batch)."""
    head = copy_tree(REPO, tmp_path / "head")
    path = head / "resnet_bench" / "backends" / "service_time.py"
    path.write_text(path.read_text() + f"""

# -- the test's change to the head --
_base_service = ServiceTimeBackend.service


def _head_service(self, batch):
    seconds = _base_service(self, batch)
{body}


ServiceTimeBackend.service = _head_service
""")
    return head


SLOWER = "    return seconds * 1.25 if batch == 2 else seconds"


def _gate(monkeypatch, capsys, head: Path, *extra: str) -> tuple[int, dict]:
    monkeypatch.setattr(gate, "DEFAULT_CELLS", CELLS)
    monkeypatch.setattr(gate, "GatePlan", lambda **sizes: replace(PLAN, **sizes))
    code = main(["gate", "--ref", "HEAD", "--head", str(head), "--format", "json", *extra])
    out, err = capsys.readouterr()
    rows = {f"{r['depth']}/{r['backend']}/{r['batch_size']}": r for r in json.loads(out)}
    return code, rows | {"stderr": err}


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="the gate checks its base ref out of the git checkout")
def test_head_25_percent_slower_in_one_cell_is_regressed_and_fails_the_gate(tmp_path, monkeypatch, capsys):
    code, rows = _gate(monkeypatch, capsys, _head(tmp_path, SLOWER))
    slowed, other = rows[SLOWED], rows["18/service-time/1"]
    assert code == 1 and slowed["verdict"] == "regressed" and other["verdict"] == "unchanged"
    # The known answer: each call is its sleep plus a fixed cost c, the same on both sides, read off
    # the unchanged 3.0 ms cell; so base 5.0 + c, head 1.25 x 5.0 + c, and their ratio just under 1.25.
    # Swapped sides would put 6.25 + c on the base; a biased estimate would miss the ratio.
    c = other["base_ms"] - 3.0
    assert 0 < c < 1.0, other
    assert slowed["base_ms"] == pytest.approx(5.0 + c, abs=0.15), slowed
    assert slowed["head_ms"] == pytest.approx(1.25 * 5.0 + c, abs=0.15), slowed
    assert slowed["ratio"] == pytest.approx((1.25 * 5.0 + c) / (5.0 + c), abs=0.01) and slowed["low"] > 1.2, slowed
    assert "gate: FAIL resnet18 service-time fp32 b2" in rows["stderr"]


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="the gate checks its base ref out of the git checkout")
def test_identical_head_passes_with_every_cell_unchanged(tmp_path, monkeypatch, capsys):
    code, rows = _gate(monkeypatch, capsys, _head(tmp_path, "    return seconds"))
    assert code == 0 and [rows[c]["verdict"] for c in ("18/service-time/1", SLOWED)] == ["unchanged"] * 2
    assert all(rows[c]["n"] == PLAN.looks[0] for c in ("18/service-time/1", SLOWED))  # decided at the first look
    head_commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
    assert rows[SLOWED]["base_commit"] == head_commit and rows[SLOWED]["base_dirty"] is False  # --ref HEAD, clean
    assert rows[SLOWED]["head_commit"] is None and rows[SLOWED]["head_dirty"] is None  # a copy outside git


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="the gate checks its base ref out of the git checkout")
def test_head_that_errors_is_an_error_and_fails_the_gate(tmp_path, monkeypatch, capsys):
    code, rows = _gate(monkeypatch, capsys, _head(tmp_path, "    raise RuntimeError('the head broke it')"))
    assert code == 1 and all(rows[c]["verdict"] == "error" for c in ("18/service-time/1", SLOWED))
    assert "head error: RuntimeError: the head broke it (the base works)" in rows[SLOWED]["reason"]
