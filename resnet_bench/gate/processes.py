"""Cells measured in fresh processes, round by round: the unit of the gate and of a pick.

Identical code runs several percent faster or slower from one process to the next (memory
layout, thread placement), so a comparison replicates over processes. A round starts one fresh
worker process per *side* (a source tree, or one configuration of a pick); each side opens its
cell (load, warm up, probe), then the sides time ``blocks`` blocks of k calls each in turn,
A B C, C B A, ..., every block starting ``settle_s`` after the last one ended (the other
process's runtime threads spin on after a call), then each closes its cell. The order of the
sides alternates by round. k is fixed in the first round that opens the cell, from its probe
(a block lasts about ``block_s``), shared by every side when the sides run the same cell (the
gate) or per side (a pick among configurations).

A worker that dies is replaced for the next cells (its cell records an error); one that does not
answer within its timeout is killed, and its side is not measured again (the reason is kept).
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
from dataclasses import dataclass, field
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")


@dataclass(frozen=True)
class ProcessPlan:
    """How one process measures one cell."""

    blocks: int = 3  # blocks per process and cell
    block_s: float = 0.25  # a block is k calls, k fixed in the first round so that it lasts about this
    warmup_iters: int = 3  # untimed calls after each load, and at least warmup_s seconds of them
    warmup_s: float = 1.0
    # A pause before each block. A runtime's worker threads spin on after its last call, and the
    # other side's next block shared the 2 cores with them: ONNX Runtime ResNet-50 batch 8 ran 10%
    # slower right after the other process's block than right after its own (2% with 30 ms;
    # benchmarks/gate_settle.py, results/gate_settle.md; OpenVINO: no effect).
    # Identical sides pay it alike, but a head whose calls end with anything but compute (the
    # proof's injected busy-wait) did not: +20% measured as +29-37%. Cost: ~30 s per 12-cell gate.
    settle_s: float = 0.05
    open_timeout_s: float = 900.0  # covers a first export of ResNet-50 (ONNX + OpenVINO) on 2 cores
    block_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise ValueError(f"blocks must be at least 1, got {self.blocks}")
        if self.block_s <= 0 or self.warmup_s < 0 or self.warmup_iters < 0 or self.settle_s < 0:
            raise ValueError("block_s must be > 0, warmup_s, warmup_iters and settle_s >= 0")


def cell_name(cell: dict) -> str:
    mode = "" if cell.get("mode", "latency") == "latency" else f" {cell['mode']}"
    return (f"resnet{cell['depth']} {cell['backend']} {cell['precision']} b{cell['batch_size']}{mode} "
            f"{cell['input_size']}px")


class WorkerError(Exception):
    """The worker died; the message quotes its stderr."""


class WorkerTimeout(WorkerError):
    """The worker did not answer in time and was killed; the message quotes its stderr."""


class Worker:
    """One fresh worker process on one source tree."""

    def __init__(self, tree: Path, label: str, artifacts: Path) -> None:
        self.label = label
        self.stderr = tempfile.TemporaryFile("w+", prefix=f"worker-{label}-")
        # Runs this package's own worker file (so every side speaks one protocol) with ``tree`` as
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
    """What the rounds gathered for one comparison: the cell each side runs (the same cell on
    every side for the gate), and per side and round the block medians (ms) and rates (images/s)."""

    cells: dict[str, dict]  # side -> cell
    shared_k: bool = True  # the sides run the same cell: the same k calls per block
    k: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, list[list[float]]] = field(default_factory=dict)  # side -> rounds -> block medians
    rates: dict[str, list[list[float]]] = field(default_factory=dict)  # side -> rounds -> block images/s
    failures: dict[str, dict] = field(default_factory=dict)  # side -> {"status", "error"}
    open_s: list[float] = field(default_factory=list)
    done: bool = False  # decided: no more rounds
    budget_cut: bool = False  # its rounds ended at a time budget, not by the plan's last look
    keep_samples: bool = False  # ask for every latency of every block (``samples``)
    samples: dict[str, list[list[float]]] = field(default_factory=dict)  # side -> rounds -> latencies (ms)

    def __post_init__(self) -> None:
        for side in self.cells:
            self.blocks.setdefault(side, [])
            self.rates.setdefault(side, [])
            self.samples.setdefault(side, [])

    @property
    def rounds(self) -> int:
        return min((len(b) for b in self.blocks.values()), default=0)

    def label(self) -> str:
        first = next(iter(self.cells.values()))
        return cell_name(first) if self.shared_k else " vs ".join(cell_name(c) for c in self.cells.values())


class Round:
    """One round: a fresh worker per side, measuring every record it is given in turn."""

    def __init__(self, trees: dict[str, Path], order: tuple[str, ...], plan: ProcessPlan, artifacts: Path,
                 hung: dict[str, str]) -> None:
        self.trees, self.order, self.plan, self.artifacts, self.hung = trees, order, plan, artifacts, hung
        self.current = ""  # the cell being measured, for the messages
        self.workers = {side: Worker(trees[side], side, artifacts) for side in order}

    def ask(self, side: str, timeout_s: float, **command) -> dict:
        try:
            return self.workers[side].ask(timeout_s, **command)
        except WorkerTimeout as exc:  # killed; no new worker for this side
            self.hung[side] = f"not measured: the {side} worker hung earlier ({self.current})"
            return {"ok": False, "status": "error", "error": str(exc)}
        except WorkerError as exc:  # died: a new worker for the next cells
            self.workers[side].close()
            self.workers[side] = Worker(self.trees[side], side, self.artifacts)
            return {"ok": False, "status": "error", "error": str(exc)}

    def measure(self, record: CellRecord) -> None:
        plan = self.plan
        sides = [side for side in self.order if side in record.cells]
        self.current = record.label()
        for side, why in self.hung.items():
            if side in record.cells:
                record.failures[side] = {"status": "error", "error": why}
        if record.failures:
            return
        opened = []
        for side in sides:
            reply = self.ask(side, plan.open_timeout_s, op="open", cell=record.cells[side],
                             warmup_iters=plan.warmup_iters, warmup_s=plan.warmup_s)
            if not reply["ok"]:
                record.failures[side] = reply
                continue
            opened.append(side)
            record.open_s.append(reply["open_s"])
            k = max(1, math.ceil(plan.block_s * 1e3 / reply["probe_ms"]))
            if record.shared_k:
                record.k.setdefault("all", k)
            else:
                record.k.setdefault(side, k)
        blocks = {side: [] for side in sides}
        rates = {side: [] for side in sides}
        samples = {side: [] for side in sides}
        for i in range(plan.blocks if not record.failures else 0):
            for side in sides if i % 2 == 0 else sides[::-1]:  # A B, B A, ...
                time.sleep(plan.settle_s)
                reply = self.ask(side, plan.block_timeout_s, op="block",
                                 k=record.k["all" if record.shared_k else side], samples=record.keep_samples)
                if not reply["ok"]:
                    record.failures[side] = reply
                    break
                blocks[side].append(reply["median_ms"])
                rates[side].append(reply.get("images_per_s", math.nan))
                samples[side] += reply.get("samples_ms", [])
            if record.failures:
                break
        for side in opened:
            if side not in record.failures:
                self.ask(side, plan.block_timeout_s, op="close")
        if not record.failures:
            for side in sides:
                record.blocks[side].append(blocks[side])
                record.rates[side].append(rates[side])
                record.samples[side].append(samples[side])

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def measure_rounds(trees: dict[str, Path], records: list[CellRecord], rounds: int, plan: ProcessPlan,
                   artifacts: Path, hung: dict[str, str], first_round: int = 0,
                   progress=lambda text: None, total: int | None = None) -> None:
    """``rounds`` more rounds over the records not yet done nor failed; the side order alternates
    by round number (``first_round`` onwards)."""
    sides = tuple(trees)
    total = total or first_round + rounds
    for r in range(first_round, first_round + rounds):
        todo = [record for record in records if not record.failures and not record.done]
        if not todo or hung:
            for record in todo:
                record.failures.update({side: {"status": "error", "error": why} for side, why in hung.items()
                                        if side in record.cells})
            return
        start = time.perf_counter()
        order = sides if r % 2 == 0 else sides[::-1]
        round_ = Round(trees, order, plan, artifacts, hung)
        try:
            for record in todo:
                progress(f"round {r + 1}/{total}: {record.label()}")
                round_.measure(record)
        finally:
            round_.close()
        progress(f"round {r + 1}/{total} took {time.perf_counter() - start:.0f} s")
