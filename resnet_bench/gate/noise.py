"""How identical code moves on this machine, and what the gate's decision does under it.

A model per cell of what the gate judges, fitted to A/A gate runs (the same tree on both sides):
the per-round d = log(head / base) of the two processes' medians of block medians. Most rounds
scatter as ``N(0, core)`` (``core``: per cell, from the MAD of its rounds, so the outliers do not
inflate it); with probability ``outlier_share`` (pooled over cells: a few per cell are too few to
fit alone) a round is an outlier, its d drawn from the pooled list of the outliers measured
(``outliers``: rounds more than ``OUTLIER_CUT`` core sds from their cell's median; mostly one
side's process slowed, for its whole life or for its block of one cell, by another program's
burst on a shared 2-core machine: the skew seen here, on either side). What both sides of a
round share (the machine's mood over the minute of a round) cancels in d and is not modelled.
``simulate`` draws whole gate runs from the models, with a true change per cell, and applies
``statistics.judge_look`` at the plan's looks: the operating characteristic per gate run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from resnet_bench.gate.statistics import SequentialPlan, judge_look, log_ratios

MAD_SD = 1.4826  # a normal's sd over its median absolute deviation
OUTLIER_CUT = 4.0  # a round this many core sds from its cell's median is an outlier
MIN_CORE = 0.005  # the smallest core sd the cut is taken from


@dataclass(frozen=True)
class CellNoise:
    cell: str
    core: float  # sd of d between rounds, without the outliers
    outlier_share: float = 0.0  # share of rounds that are outliers (pooled over cells)
    outliers: tuple[float, ...] = field(default=(), repr=False)  # the outliers' d, relative to their cell (pooled)
    rounds: int = 0  # rounds the fit saw

    def record(self) -> dict:
        return {"cell": self.cell, "core": self.core, "outlier_share": self.outlier_share,
                "outliers": len(self.outliers), "rounds": self.rounds}


def fit(cells: dict[str, tuple[list[list[float]], list[list[float]]]]) -> list[CellNoise]:
    """Models for every cell from its A/A rounds (``cells[name] = (base, head)``, block medians
    per process and round): the core sd per cell, the outliers pooled."""
    relative, cores = {}, {}
    for name, (base, head) in cells.items():
        d = log_ratios(base, head)
        relative[name] = d - np.median(d)
        cores[name] = float(MAD_SD * np.median(np.abs(relative[name])))
    outliers = [float(r) for name, rel in relative.items() for r in rel
                if abs(r) > OUTLIER_CUT * max(cores[name], MIN_CORE)]
    total = sum(len(rel) for rel in relative.values())
    share = len(outliers) / total if total else 0.0
    return [CellNoise(name, cores[name], share, tuple(sorted(outliers)), len(relative[name])) for name in cells]


def inflate(models: list[CellNoise], factor: float) -> list[CellNoise]:
    """The same models with every sd and outlier ``factor`` times larger (a noisier day)."""
    return [CellNoise(m.cell, m.core * factor, m.outlier_share, tuple(o * factor for o in m.outliers), m.rounds)
            for m in models]


def draw_log_ratios(models: list[CellNoise], effects: list[float], rounds: int, runs: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Simulated per-round d: shape (runs, cells, rounds)."""
    out = np.empty((runs, len(models), rounds))
    for k, (m, effect) in enumerate(zip(models, effects, strict=True)):
        d = rng.normal(0, m.core, (runs, rounds))
        if m.outlier_share > 0 and m.outliers:
            hit = rng.random((runs, rounds)) < m.outlier_share
            d = np.where(hit, rng.choice(np.asarray(m.outliers), (runs, rounds)), d)
        out[:, k, :] = d + math.log1p(effect)
    return out


def simulate(models: list[CellNoise], effects: list[float], plan: SequentialPlan, threshold: float = 0.10,
             runs: int = 20_000, seed: int = 0) -> dict:
    """Whole gate runs under the models: the share of runs with a red cell, each cell's verdicts,
    and the rounds each cell took on average."""
    rng = np.random.default_rng(seed)
    d = draw_log_ratios(models, effects, plan.rounds, runs, rng)
    verdict = np.full(d.shape[:2], "", dtype=object)
    used = np.zeros(d.shape[:2])
    for look in plan.looks:
        open_ = verdict == ""
        used[open_] = look
        found = judge_look(d[:, :, :look], threshold, plan)
        verdict[open_ & (found != "")] = found[open_ & (found != "")]
    verdict[verdict == ""] = "inconclusive"
    kinds = ("regressed", "improved", "unchanged", "inconclusive")
    return {"runs": runs, "red_runs": float((verdict == "regressed").any(axis=1).mean()),
            "inconclusive": float((verdict == "inconclusive").mean()),
            "cell_rounds": float(used.sum(axis=1).mean()),
            "cells": [{"cell": m.cell, "effect": e, **{k: float((verdict[:, i] == k).mean()) for k in kinds},
                       "mean_rounds": float(used[:, i].mean())}
                      for i, (m, e) in enumerate(zip(models, effects, strict=True))]}


def rate_bound(rate: float, runs: int, z: float = 1.96) -> tuple[float, float]:
    """A simulated rate's 95% interval (Wilson's), to say it is below or above a target."""
    from resnet_bench.numerics.agreement import proportion_interval

    return proportion_interval(round(rate * runs), runs, z)
