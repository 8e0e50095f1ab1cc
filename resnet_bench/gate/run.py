"""The PR gate: base and head measured in the same job, over fresh processes, by a plan fixed
before anything is measured.

A temporary git worktree holds the base ref (``git``). Rounds run in stages: each round starts one
fresh worker process per side (``processes``: ``worker.py`` with that side's tree first on the
path; which side starts alternates by round), and both take every open cell in turn (open it,
warm up, probe, then ``blocks`` blocks of k calls alternated A B, B A, ..., each after a settle
pause, then close it). At each look of the plan (``GatePlan.looks``, round counts) every open cell
is judged (``statistics.decide_sequential``: a trimmed mean of the per-round log ratios, a false
red rate held per gate run over every cell and look); a decided cell (regressed, improved,
unchanged) takes no more rounds, the others go on to the next look. A look is not started when the
rounds so far say it would end past ``budget_s``: its cells stay inconclusive, with what would
settle them.

A cell fails the gate when it is ``regressed``, or when the head errors or cannot load a backend
where the base works (``error``). A worker that does not answer within its timeout is killed, and
its stderr (kept in a file) is quoted in the row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from resnet_bench.gate.processes import CellRecord, ProcessPlan, cell_name, measure_rounds
from resnet_bench.gate.statistics import MAX_MAD, MIN_ROUNDS, SequentialPlan, block_mad, decide_sequential
from resnet_bench.model.architecture import check_input_size

DEFAULT_CELLS = tuple(dict(depth=d, backend=b, precision="fp32", device="cpu", batch_size=n, input_size=224)
                      for d in (18, 50) for b in ("torch", "onnxruntime", "openvino") for n in (1, 8))
FAILING = ("regressed", "error")  # verdicts that fail the gate (exit 1)
SIDES = ("base", "head")


@dataclass(frozen=True)
class GatePlan(ProcessPlan):
    """The sampling plan, fixed up front (sizing and its measured operating characteristic in
    docs/gate.md): how each process measures a cell (``ProcessPlan``), the looks (round counts at
    which open cells are judged), the per-run false red rate the decision holds, and the time cap."""

    looks: tuple[int, ...] = (4, 8, 12, 16, 20)
    false_red: float = 0.01  # per gate run, at a true change of T/2 in every cell (Bonferroni without levels)
    unchanged_confidence: float = 0.95
    trim: float = 0.2
    # The bound's one-sided level per look, calibrated by simulation under the noise measured here
    # (benchmarks/gate_design.py, results/gate_design.md): the first two looks only stop cells that
    # are clearly unchanged; None: Bonferroni from false_red.
    levels: tuple[float, ...] | None = (0.0, 0.0, 0.0005, 0.0005, 0.002)
    budget_s: float = 900.0  # no look is started that the rounds so far say would end past this

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sequential(1)  # validates them
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be positive, got {self.budget_s}")

    @classmethod
    def fixed(cls, rounds: int, **fields) -> GatePlan:
        """One look at ``rounds`` rounds (``gate --rounds N``)."""
        if rounds < MIN_ROUNDS:
            raise ValueError(f"rounds must be at least {MIN_ROUNDS}, got {rounds}")
        return cls(looks=(rounds,), levels=None, **fields)

    @property
    def rounds(self) -> int:
        return self.looks[-1]

    def sequential(self, cells: int) -> SequentialPlan:
        return SequentialPlan(self.looks, cells, self.false_red, self.unchanged_confidence, self.trim, self.levels)


@dataclass(frozen=True)
class GateConfig:
    cells: tuple[dict, ...] = DEFAULT_CELLS
    threshold: float = 0.10
    plan: GatePlan = GatePlan()
    artifacts: Path = Path("artifacts")
    open_timeout_s: float = 900.0  # covers a first export of ResNet-50 (ONNX + OpenVINO) on 2 cores
    block_timeout_s: float = 120.0


def verdict_row(record: CellRecord, threshold: float, plan: SequentialPlan) -> dict:
    """The gate's row for one cell: its verdict on the rounds, or why there is none."""
    cell = record.cells["base"]
    row = {**cell, "k": record.k.get("all")}
    if "head" in record.failures and "base" not in record.failures:
        failure = record.failures["head"]
        return {**row, "verdict": "error",
                "reason": f"head {failure['status']}: {failure['error']} (the base works)"}
    if record.failures:
        why = "; ".join(f"{side}: {f['error']}" for side, f in record.failures.items())
        return {**row, "verdict": "unavailable", "reason": why}
    base, head = record.blocks["base"], record.blocks["head"]
    decision = decide_sequential(base, head, threshold, plan)
    mad = block_mad(base + head)
    reason = decision.reason
    if record.budget_cut and decision.verdict == "inconclusive":
        reason += f" (the gate's time budget ended its rounds at {len(base)})"
    if mad > MAX_MAD and decision.verdict == "inconclusive":
        reason += f" (blocks scatter {mad:.1%} inside a process, above {MAX_MAD:.0%}: a quieter machine helps)"
    return {**row, **decision.row(), "reason": reason, "base_ms": float(np.median([np.median(b) for b in base])),
            "head_ms": float(np.median([np.median(h) for h in head])), "block_mad": mad,
            "open_s": float(np.median(record.open_s)), "base_blocks": base, "head_blocks": head}


def run_gate(base_tree: Path, head_tree: Path, config: GateConfig,
             progress: Callable[[str], None] = lambda text: None) -> list[dict]:
    trees = {"base": Path(base_tree), "head": Path(head_tree)}
    records = [CellRecord({side: dict(cell) for side in SIDES}) for cell in config.cells]
    gate_plan = config.plan
    plan = ProcessPlan(**{**{f.name: getattr(gate_plan, f.name) for f in fields(ProcessPlan)},
                          "open_timeout_s": config.open_timeout_s, "block_timeout_s": config.block_timeout_s})
    judge = gate_plan.sequential(len(config.cells))
    hung: dict[str, str] = {}
    start, done, cell_rounds = time.perf_counter(), 0, 0
    for look in gate_plan.looks:
        open_ = [r for r in records if not r.failures and not r.done]
        if not open_:
            break
        if done and cell_rounds:  # what this look would cost, at the rounds so far
            per_cell_round = (time.perf_counter() - start) / cell_rounds
            if time.perf_counter() - start + per_cell_round * len(open_) * (look - done) > gate_plan.budget_s:
                for record in open_:
                    record.budget_cut = True
                progress(f"look at {look} rounds not started: it would end past the {gate_plan.budget_s:.0f} s budget")
                break
        measure_rounds(trees, records, look - done, plan, config.artifacts, hung, first_round=done,
                       progress=progress, total=gate_plan.rounds)
        cell_rounds += len(open_) * (look - done)
        done = look
        for record in records:
            if not record.failures and not record.done and record.rounds >= look:
                verdict = decide_sequential(record.blocks["base"], record.blocks["head"], config.threshold,
                                            judge).verdict
                record.done = verdict in ("regressed", "improved", "unchanged")
        progress(f"look at {look} rounds: {sum(r.done for r in records)} of {len(records)} cells decided")
    return [verdict_row(record, config.threshold, judge) for record in records]


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
