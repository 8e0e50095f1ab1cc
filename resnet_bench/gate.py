"""The PR gate: base and head measured in the same job, interleaved, pair by pair.

A temporary git worktree holds the base ref; each side runs ``resnet_bench.gate_worker`` in
its own process with its own tree first on PYTHONPATH (same virtual environment, same
artifact store). Per gated cell: k iterations per block (calibrated so a block takes about
0.3 s), then ``pairs`` pairs of blocks in A B B A order, judged by ``compare.decide_pairs``.
Too noisy: extended once, then ``inconclusive``, which never fails the build.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from resnet_bench.compare import decide_pairs

DEFAULT_CELLS = [dict(depth=d, backend=b, precision="fp32", device="cpu", batch_size=n, input_size=224)
                 for d in (18, 50) for b in ("torch", "onnxruntime", "openvino") for n in (1, 8)]


class Side:
    def __init__(self, tree: Path, artifacts: Path, label: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.label = label
        self.process = subprocess.Popen([sys.executable, "-m", "resnet_bench.gate_worker", str(artifacts)],
                                        cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker exited")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.ask(op="quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.process.kill()
        self.process.wait()


@contextmanager
def worktree(ref: str, repo: Path):
    """A checkout of ``ref`` in a temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="resnet-bench-base-"))
    try:
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(folder), ref],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise ValueError(f"cannot check out {ref!r}: {exc.stderr.strip().splitlines()[-1]}") from None
    try:
        if not (folder / "resnet_bench" / "gate_worker.py").is_file():
            raise ValueError(f"{ref} predates the gate (it has no resnet_bench/gate_worker.py)")
        yield folder
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(folder)], capture_output=True)


def merge_base(repo: Path, branch: str = "main") -> str:
    result = subprocess.run(["git", "-C", str(repo), "merge-base", "HEAD", branch], capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"no merge-base between HEAD and {branch}; pass --ref")
    return result.stdout.strip()


@dataclass
class GateConfig:
    cells: list[dict] = field(default_factory=lambda: list(DEFAULT_CELLS))
    pairs: int = 21
    threshold: float = 0.10
    block_s: float = 0.3
    artifacts: Path = Path("artifacts")


def _add_pairs(base: Side, head: Side, cell: dict, k: int, n: int, blocks: dict[str, list[float]]) -> None:
    for _ in range(n):
        order = (base, head) if len(blocks["base"]) % 2 == 0 else (head, base)  # A B, B A, A B, ...
        for side in order:
            answer = side.ask(op="block", cell=cell, k=k)
            if not answer["ok"]:
                raise RuntimeError(answer["error"])
            blocks[side.label].append(answer["median_ms"])


def gate_cell(base: Side, head: Side, cell: dict, config: GateConfig) -> dict:
    opened = [side.ask(op="open", cell=cell) for side in (base, head)]
    if not all(answer["ok"] for answer in opened):
        return {**cell, "verdict": "unavailable", "reason": next(a["error"] for a in opened if not a["ok"])}
    probe = head.ask(op="block", cell=cell, k=3)["median_ms"]
    k = max(1, math.ceil(config.block_s * 1e3 / probe))  # a block takes at least block_s
    blocks: dict[str, list[float]] = {"base": [], "head": []}
    try:
        _add_pairs(base, head, cell, k, config.pairs, blocks)
        decision = decide_pairs(blocks["base"], blocks["head"], config.threshold)
        if decision.verdict == "inconclusive" and "not significant" not in decision.reason:
            _add_pairs(base, head, cell, k, config.pairs, blocks)  # too noisy or drifting: extend once
            decision = decide_pairs(blocks["base"], blocks["head"], config.threshold)
    except RuntimeError as exc:
        return {**cell, "verdict": "error", "reason": str(exc)}
    median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
    return {**cell, **decision.row(), "k": k, "base_ms": median(blocks["base"]), "head_ms": median(blocks["head"])}


def run_gate(base_tree: Path, head_tree: Path, config: GateConfig, progress=lambda text: None) -> list[dict]:
    base, head = Side(base_tree, config.artifacts, "base"), Side(head_tree, config.artifacts, "head")
    rows = []
    try:
        for cell in config.cells:
            progress(f"resnet{cell['depth']} {cell['backend']} {cell['precision']} b{cell['batch_size']}")
            rows.append(gate_cell(base, head, cell, config))
    finally:
        base.close()
        head.close()
    return rows
