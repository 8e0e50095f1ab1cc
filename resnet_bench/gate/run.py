"""The PR gate: base and head measured in the same job, over fresh processes, by a fixed plan.

A temporary git worktree holds the base ref (``git``). The plan (``GatePlan``) is declared before
any measurement and never extended: ``rounds`` rounds, each with one fresh worker process per side
(``worker.py`` with that side's tree first on the path; which side starts alternates by
round). Both processes of a round take every gated cell in turn: open it (load, warm up, probe),
then ``blocks`` blocks each of k timed calls, alternating A B, B A, ... between the sides, then
close it. k is fixed per cell in round 1 (a block lasts about ``block_s``), and every block
starts ``settle_s`` after the last one ended, so the other process's runtime threads have gone
idle. The process is the
unit: per round, log(head / base) of the per-process medians of block medians, judged by
``statistics.decide_rounds``.

A cell fails the gate when it is ``regressed``, or when the head errors or cannot load a
backend where the base works (``error``). A worker that does not answer within its timeout is
killed, and its stderr (kept in a file) is quoted in the row.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnet_bench.gate.statistics import MAX_MAD, MIN_ROUNDS, block_mad, decide_rounds
from resnet_bench.model.architecture import check_input_size

DEFAULT_CELLS = tuple(dict(depth=d, backend=b, precision="fp32", device="cpu", batch_size=n, input_size=224)
                      for d in (18, 50) for b in ("torch", "onnxruntime", "openvino") for n in (1, 8))
FAILING = ("regressed", "error")  # verdicts that fail the gate (exit 1)
WORKER = Path(__file__).with_name("worker.py")
SIDES = ("base", "head")


@dataclass(frozen=True)
class GatePlan:
    """The sampling plan, fixed up front (sizing in the README's gate section)."""

    rounds: int = 8  # fresh processes per side
    blocks: int = 3  # blocks per process and cell
    block_s: float = 0.25  # a block is k calls, k fixed in round 1 so that it lasts about this
    warmup_iters: int = 3  # untimed calls after each load, and at least warmup_s seconds of them
    warmup_s: float = 1.0
    # A pause before each block. A runtime's worker threads spin on after its last call, and the
    # other side's next block shared the 2 cores with them: ONNX Runtime ResNet-50 batch 8 ran 10%
    # slower right after the other process's block than right after its own (2% with 30 ms;
    # benchmarks/gate_settle.py, results/gate_settle.md; OpenVINO: no effect).
    # Identical sides pay it alike, but a head whose calls end with anything but compute (the
    # proof's injected busy-wait) did not: +20% measured as +29-37%. Cost: ~30 s per 12-cell gate.
    settle_s: float = 0.05

    def __post_init__(self) -> None:
        if self.rounds < MIN_ROUNDS:
            raise ValueError(f"rounds must be at least {MIN_ROUNDS}, got {self.rounds}")
        if self.blocks < 1:
            raise ValueError(f"blocks must be at least 1, got {self.blocks}")
        if self.block_s <= 0 or self.warmup_s < 0 or self.warmup_iters < 0 or self.settle_s < 0:
            raise ValueError("block_s must be > 0, warmup_s, warmup_iters and settle_s >= 0")


@dataclass(frozen=True)
class GateConfig:
    cells: tuple[dict, ...] = DEFAULT_CELLS
    threshold: float = 0.10
    plan: GatePlan = GatePlan()
    artifacts: Path = Path("artifacts")
    open_timeout_s: float = 900.0  # covers a first export of ResNet-50 (ONNX + OpenVINO) on 2 cores
    block_timeout_s: float = 120.0


def cell_name(cell: dict) -> str:
    return (f"resnet{cell['depth']} {cell['backend']} {cell['precision']} b{cell['batch_size']} "
            f"{cell['input_size']}px")


class WorkerError(Exception):
    """The worker died; the message quotes its stderr."""


class WorkerTimeout(WorkerError):
    """The worker did not answer in time and was killed; the message quotes its stderr."""


class Worker:
    """One fresh worker process on one source tree."""

    def __init__(self, tree: Path, label: str, artifacts: Path) -> None:
        self.label = label
        self.stderr = tempfile.TemporaryFile("w+", prefix=f"gate-{label}-")
        # Runs the gate's own worker file (so both sides speak one protocol) with ``tree`` as
        # the working directory and first on the path: what it imports is that tree's code.
        run = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
        self.process = subprocess.Popen([sys.executable, "-c", run, str(WORKER), str(artifacts)], cwd=tree,
                                        env=dict(os.environ, PYTHONPATH=str(tree)), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr_tail(self, lines: int = 4, chars: int = 400) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        text = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return " / ".join(text[-lines:])[-chars:] or "(empty)"

    def ask(self, timeout_s: float, **command) -> dict:
        try:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            self.process.kill()
            self.process.wait()
            raise WorkerTimeout(f"{self.label} worker gave no answer to {command['op']!r} in {timeout_s:.0f} s "
                              f"(killed); its stderr: {self.stderr_tail()}") from None
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            code = self.process.wait()
            raise WorkerError(f"{self.label} worker exited with code {code}; its stderr: {self.stderr_tail()}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.stderr.close()


@dataclass
class CellRecord:
    """What the rounds gathered for one cell."""

    cell: dict
    k: int | None = None
    blocks: dict[str, list[list[float]]] = field(default_factory=lambda: {s: [] for s in SIDES})
    failures: dict[str, dict] = field(default_factory=dict)  # side -> {"status", "error"}
    open_s: list[float] = field(default_factory=list)

    def row(self, threshold: float) -> dict:
        row = {**self.cell, "k": self.k}
        if "head" in self.failures and "base" not in self.failures:
            failure = self.failures["head"]
            return {**row, "verdict": "error",
                    "reason": f"head {failure['status']}: {failure['error']} (the base works)"}
        if self.failures:
            why = "; ".join(f"{side}: {f['error']}" for side, f in self.failures.items())
            return {**row, "verdict": "unavailable", "reason": why}
        base, head = self.blocks["base"], self.blocks["head"]
        decision = decide_rounds(base, head, threshold)
        mad = block_mad(base + head)
        reason = decision.reason
        if mad > MAX_MAD and decision.verdict == "inconclusive":
            reason += f" (blocks scatter {mad:.1%} inside a process, above {MAX_MAD:.0%}: a quieter machine helps)"
        return {**row, **decision.row(), "reason": reason, "base_ms": float(np.median([np.median(b) for b in base])),
                "head_ms": float(np.median([np.median(h) for h in head])), "block_mad": mad,
                "open_s": float(np.median(self.open_s))}


class Round:
    """One round: a fresh worker per side. One that dies is replaced for the next cells (its
    cell has an error); one that hangs ends that side's measurements for the whole gate."""

    def __init__(self, trees: dict[str, Path], order: tuple[str, str], config: GateConfig,
                 hung: dict[str, str]) -> None:
        self.trees, self.order, self.config, self.hung = trees, order, config, hung
        self.cell = ""  # the cell being measured, for the messages
        self.workers = {side: Worker(trees[side], side, config.artifacts) for side in order}

    def ask(self, side: str, timeout_s: float, **command) -> dict:
        try:
            return self.workers[side].ask(timeout_s, **command)
        except WorkerTimeout as exc:  # killed; no new worker for this side
            self.hung[side] = f"not measured: the {side} worker hung earlier ({self.cell})"
            return {"ok": False, "status": "error", "error": str(exc)}
        except WorkerError as exc:  # died: a new worker for the next cells
            self.workers[side].close()
            self.workers[side] = Worker(self.trees[side], side, self.config.artifacts)
            return {"ok": False, "status": "error", "error": str(exc)}

    def measure(self, record: CellRecord) -> None:
        plan, config = self.config.plan, self.config
        self.cell = cell_name(record.cell)
        for side, why in self.hung.items():
            record.failures[side] = {"status": "error", "error": why}
        if record.failures:
            return
        opened = []
        for side in self.order:
            reply = self.ask(side, config.open_timeout_s, op="open", cell=record.cell,
                             warmup_iters=plan.warmup_iters, warmup_s=plan.warmup_s)
            if not reply["ok"]:
                record.failures[side] = reply
                continue
            opened.append(side)
            record.open_s.append(reply["open_s"])
            if record.k is None and side == "base":
                record.k = max(1, math.ceil(plan.block_s * 1e3 / reply["probe_ms"]))
        blocks: dict[str, list[float]] = {side: [] for side in SIDES}
        for i in range(plan.blocks if not record.failures else 0):
            for side in self.order if i % 2 == 0 else self.order[::-1]:  # A B, B A, ...
                time.sleep(plan.settle_s)
                reply = self.ask(side, config.block_timeout_s, op="block", k=record.k)
                if not reply["ok"]:
                    record.failures[side] = reply
                    break
                blocks[side].append(reply["median_ms"])
            if record.failures:
                break
        for side in opened:
            if side not in record.failures:
                self.ask(side, config.block_timeout_s, op="close")
        if not record.failures:
            for side in SIDES:
                record.blocks[side].append(blocks[side])

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def run_gate(base_tree: Path, head_tree: Path, config: GateConfig,
             progress: Callable[[str], None] = lambda text: None) -> list[dict]:
    trees = {"base": Path(base_tree), "head": Path(head_tree)}
    records = [CellRecord(dict(cell)) for cell in config.cells]
    hung: dict[str, str] = {}
    for r in range(config.plan.rounds):
        todo = [record for record in records if not record.failures]
        if not todo or hung:
            for record in todo:
                record.failures.update({side: {"status": "error", "error": why} for side, why in hung.items()})
            break
        start = time.perf_counter()
        round_ = Round(trees, SIDES if r % 2 == 0 else SIDES[::-1], config, hung)
        try:
            for record in todo:
                progress(f"round {r + 1}/{config.plan.rounds}: {cell_name(record.cell)}")
                round_.measure(record)
        finally:
            round_.close()
        progress(f"round {r + 1}/{config.plan.rounds} took {time.perf_counter() - start:.0f} s")
    return [record.row(config.threshold) for record in records]


def failures(rows: list[dict]) -> list[str]:
    """One line per cell that fails the gate."""
    return [f"{cell_name(row)}: {row['verdict']}: {row['reason']}" for row in rows if row["verdict"] in FAILING]


def select_cells(wanted: list[str], input_size: int | None = None) -> tuple[dict, ...]:
    """Default cells named depth/backend/batch (e.g. 18/onnxruntime/1), at ``input_size``."""
    if input_size is not None:
        check_input_size(input_size)
    cells = tuple({**c, **({"input_size": input_size} if input_size is not None else {})} for c in DEFAULT_CELLS
                  if not wanted or f"{c['depth']}/{c['backend']}/{c['batch_size']}" in wanted)
    if not cells:
        raise ValueError("--cells matched none of depth/backend/batch, e.g. 18/onnxruntime/1")
    return cells
