"""Is the pick really ahead of the runner-up, or are they tied within this machine's noise?

A sweep times each configuration in one process, and identical code runs several percent
faster or slower from one process to the next, so a pick made from one process per
configuration can be the noise's. ``confirm`` re-measures the finalists (the pick first) in
fresh processes: each round starts one worker per finalist and times its cell in alternated
blocks (``gate.processes``); per round, the pick's images/s over each other finalist's (medians
of the blocks of each process), estimated by the trimmed mean of the rounds' log ratios with Yuen's
interval, as the gate does. The plan is fixed up front: the margin is judged at the
``looks`` (round counts), each look at a two-sided level of (1 - confidence) / looks (so the
chance that any look declares a winner where there is none stays within 1 - confidence), and it
stops at the first look where every other finalist is behind the pick (or one is ahead of it)
beyond the interval, or when the next look would pass the time budget. Otherwise: tied.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from resnet_bench.gate.processes import CellRecord, ProcessPlan, cell_name, measure_rounds
from resnet_bench.gate.statistics import trimmed_estimate


@dataclass(frozen=True)
class Finalist:
    label: str  # unique (a cell id)
    cell: dict  # depth, variant, backend, precision, device, mode, batch_size, input_size
    tree: Path  # the source tree it runs (the checkout; a copy with a change, in a test)


TIED_WITHIN = 0.05  # "tied" only when the interval lies within ±5%; wider, it says what it could not see
DEFAULT_BUDGET_S = 45.0  # bench's --confirm-s: 3 rounds a depth on a 2-core CPU (make bench in 5 minutes)


@dataclass(frozen=True)
class ConfirmPlan:
    looks: tuple[int, ...] = (3, 6, 10)  # rounds at which the margin is judged
    confidence: float = 0.95  # over all looks
    budget_s: float = DEFAULT_BUDGET_S  # no look is started that the rounds so far say would end past this
    process: ProcessPlan = field(default_factory=lambda: ProcessPlan(blocks=3, block_s=0.3, warmup_s=0.5))

    def __post_init__(self) -> None:
        if not self.looks or list(self.looks) != sorted(set(self.looks)) or self.looks[0] < 3:
            raise ValueError(f"looks must be increasing round counts of at least 3 (a trimmed interval), "
                             f"got {list(self.looks)}")
        if not 0 < self.confidence < 1 or self.budget_s <= 0:
            raise ValueError("confidence must be in (0, 1) and the budget positive")


@dataclass(frozen=True)
class Margin:
    """The pick's images/s over one other finalist's, across processes."""

    other: str
    ratio: float  # pick / other (1.10: the pick does 10% more images per second)
    low: float
    high: float
    rounds: int

    @property
    def verdict(self) -> str:
        if self.low > 1:
            return "ahead"
        if self.high < 1:
            return "behind"
        return "tied"


@dataclass(frozen=True)
class Confirmation:
    pick: str
    margins: tuple[Margin, ...]
    spread: dict[str, float]  # finalist -> sd of log images/s between processes
    rates: dict[str, float]  # finalist -> median over processes of images/s
    rounds: int
    seconds: float
    failures: dict[str, str]  # finalist -> why it could not be re-measured
    confidence: float

    @property
    def verdict(self) -> str:
        """ahead (beyond noise of every other), behind (another is ahead of it), tied, or failed."""
        if self.failures or not self.margins:
            return "failed"
        verdicts = {m.verdict for m in self.margins}
        if verdicts == {"ahead"}:
            return "ahead"
        return "behind" if "behind" in verdicts else "tied"

    def record(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def _t(confidence: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def process_rates(record: CellRecord, side: str) -> np.ndarray:
    """Per process (round): the median of its blocks' images/s."""
    return np.array([np.median(blocks) for blocks in record.rates[side]])


def margins(record: CellRecord, pick: str, confidence: float, trim: float = 0.2) -> list[Margin]:
    """The pick against each other finalist: per round the log ratio of their images/s; its
    trimmed mean with Yuen's interval (the gate's estimate: one process that ran slow for its
    whole life, which a busy machine makes now and then, moves it by little)."""
    out = []
    mine = np.log(process_rates(record, pick))
    for other in record.cells:
        if other == pick:
            continue
        d = mine - np.log(process_rates(record, other))
        n = len(d)
        if n < 3:
            mean, half = float(d.mean()), math.inf
        else:
            mean, se, df = (float(np.ravel(x)[0]) for x in trimmed_estimate(d[None, :], trim))
            half = _t(confidence, int(df)) * se
        out.append(Margin(other, math.exp(mean), math.exp(mean - half) if half < math.inf else 0.0,
                          math.exp(mean + half) if half < math.inf else math.inf, n))
    return out


def confirm(finalists: list[Finalist], plan: ConfirmPlan, artifacts: Path,
            progress=lambda text: None) -> Confirmation:
    """Re-measure ``finalists`` (the pick first) by ``plan``; see the module's docstring."""
    if len(finalists) < 2:
        raise ValueError("a pick is confirmed against at least one other finalist")
    pick = finalists[0].label
    trees = {f.label: f.tree for f in finalists}
    record = CellRecord({f.label: f.cell for f in finalists}, shared_k=False)
    level = 1 - (1 - plan.confidence) / len(plan.looks)
    hung: dict[str, str] = {}
    start, done, found = time.perf_counter(), 0, []
    for look in plan.looks:
        if done:
            per_round = (time.perf_counter() - start) / done
            if time.perf_counter() - start + per_round * (look - done) > plan.budget_s:
                break
        measure_rounds(trees, [record], look - done, plan.process, artifacts, hung, first_round=done,
                       progress=progress, total=plan.looks[-1])
        if record.failures:
            break
        done = look
        found = margins(record, pick, level)
        if all(m.verdict == "ahead" for m in found) or any(m.verdict == "behind" for m in found):
            break
    failures = {side: f["error"] for side, f in record.failures.items()}
    spread = {side: float(np.std(np.log(process_rates(record, side)), ddof=1)) if record.rounds > 1 else math.nan
              for side in record.cells} if not failures else {}
    rates = {side: float(np.median(process_rates(record, side))) for side in record.cells} if not failures else {}
    return Confirmation(pick, tuple(found), spread, rates, record.rounds, time.perf_counter() - start, failures,
                        level)


def sentence(confirmation: Confirmation, names: dict[str, str] | None = None) -> str:
    """What a reader is told: the pick by a margin with its interval, a tie, or why not checked."""
    names = names or {}
    name = lambda label: names.get(label, label)  # noqa: E731
    if confirmation.verdict == "failed":
        why = "; ".join(f"{name(k)}: {v}" for k, v in confirmation.failures.items()) or "no other finalist"
        return f"the margin could not be re-measured across processes ({why})"
    runner = min(confirmation.margins, key=lambda m: m.ratio)  # the closest other
    interval = f"{runner.low - 1:+.1%} to {runner.high - 1:+.1%}"
    # the per-look level, cut to 0.01%: 0.999 over 3 looks is 99.967%, which .1% would print as "100.0%"
    level = math.floor(confirmation.confidence * 1e4 + 1e-9) / 100
    each = f"{confirmation.rounds} fresh processes each, {level:g}% interval"
    if confirmation.verdict == "ahead":
        return (f"{name(confirmation.pick)} leads {name(runner.other)} by {runner.ratio - 1:.1%} in images/s "
                f"(interval {interval}; {each})")
    if confirmation.verdict == "behind":
        ahead = max(confirmation.margins, key=lambda m: 1 / m.ratio)
        return (f"{name(ahead.other)} is ahead of {name(confirmation.pick)} by {1 / ahead.ratio - 1:.1%} across "
                f"processes (the one-process figures ranked them the other way; {each})")
    if runner.low < 1 / (1 + TIED_WITHIN) or runner.high > 1 + TIED_WITHIN:  # too few rounds to call it a tie
        return (f"{name(confirmation.pick)} and {name(runner.other)} are not told apart in "
                f"{confirmation.rounds} fresh processes each ({name(confirmation.pick)} / {name(runner.other)} = "
                f"{runner.ratio:.3f}, interval {interval}, {level:g}%): a margin inside that interval cannot be seen "
                f"in this budget (more --confirm-s, or select, narrows it)")
    return (f"{name(confirmation.pick)} and {name(runner.other)} are tied within the noise of this machine "
            f"({name(confirmation.pick)} / {name(runner.other)} = {runner.ratio:.3f}, interval {interval}; {each})")


__all__ = ["ConfirmPlan", "Confirmation", "Finalist", "Margin", "cell_name", "confirm", "sentence"]

