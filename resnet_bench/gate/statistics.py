"""Is HEAD slower than BASE? The statistics of decisions that fail on real regressions and never
on noise.

Two kinds of evidence (see shared MEASURING.md):

* ``decide_sequential``: the PR gate. Rounds, each a fresh base process and a fresh head process
  measured side by side (blocks interleaved); the unit is the process, since identical code runs
  several percent faster or slower from one process to the next, and now and then one process
  runs far slower (another program's burst on a shared machine). Per round, d = log(head / base)
  of the per-process medians of block medians. At each look of a plan fixed up front
  (``SequentialPlan``: round counts, a one-sided level per look) an undecided cell is judged on
  a trimmed mean of its d (a slow process moves it by little) with Yuen's standard error. For
  threshold T:

    regressed     estimate > log(1 + T)  and  its one-sided bound at the look's level > log(1 + T/2)
    improved      the mirror image
    unchanged     the two-sided 95% interval lies inside +-log(1 + T)
    inconclusive  undecided after the last look (never fails); says how many rounds would settle it

  The levels are chosen, by simulating whole gate runs under the noise measured on this machine
  (``gate.noise``; results/gate_design.md), so that a true change of T/2 in every cell turns a
  gate run red at most 1% of the time and one of 2T in any one cell is caught at least 99%;
  the first looks have level 0 (they only stop cells that are clearly unchanged).
* ``difference_of_samples``: two stored runs, one process each (another job, maybe another
  day): the ratio of medians with its interval over the samples, and a warning instead of a
  verdict. The samples of one process are pseudo-replicates: they say nothing of how far that
  process's level sits from the code's (several percent on this machine; between jobs the same
  code moved 10-26%), so no test on them can fail a change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

MAX_MAD = 0.03  # block noise (MAD of log block medians in a process) up to which the catch rate is claimed
MIN_ROUNDS = 3
MAX_ROUNDS_ADVICE = 50
MIN_PAIRS = 10


@dataclass(frozen=True)
class Decision:
    verdict: str  # regressed / improved / unchanged / inconclusive
    ratio: float  # head / base (median): 1.10 = 10% slower
    p_value: float  # one-sided, in the direction of the change
    n: int
    reason: str = ""
    low: float = float("nan")  # interval of the ratio (the gate's: 95%, two-sided)
    high: float = float("nan")

    def row(self) -> dict:
        return asdict(self)


@cache
def _t_quantile(confidence: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(confidence, df))


def _t_tail(x: float, df: int) -> float:
    from scipy.stats import t

    return float(t.sf(x, df))


def block_mad(processes: list[list[float]]) -> float:
    """How much block medians scatter inside a process: MAD of log(block / process median),
    pooled over processes (each process's median block itself left out when its count is odd)."""
    residuals = []
    for blocks in processes:
        r = np.sort(np.log(np.asarray(blocks, float) / np.median(blocks)))
        residuals.append(np.delete(r, len(r) // 2) if len(r) % 2 else r)
    pooled = np.abs(np.concatenate(residuals))
    return float(np.median(pooled)) if len(pooled) else 0.0


ONE_PROCESS_WARNING = ("one process per side: identical code moves several percent from one process to the next, "
                       "so this difference cannot tell code from process noise (run `gate` for a verdict)")


def difference_of_samples(base: list[float], head: list[float], threshold: float = 0.10) -> Decision:
    """Raw samples from two stored runs, one process each: the ratio of medians with a 95%
    bootstrap interval (over the samples, so it covers call-to-call noise only) and a word for its
    size (``slower``, ``faster``, ``within``), never a verdict: samples of one process per side
    are pseudo-replicates of the process, whose own level is unknown."""
    n = min(len(base), len(head))
    if n < MIN_PAIRS:
        return Decision("not judged", float("nan"), float("nan"), n, f"too few samples ({n} < {MIN_PAIRS})")
    b, h = np.asarray(base, float), np.asarray(head, float)
    ratio = float(np.median(h) / np.median(b))
    rng = np.random.default_rng(0)
    boot = (np.median(rng.choice(h, (2000, len(h))), axis=1) / np.median(rng.choice(b, (2000, len(b))), axis=1))
    low, high = (float(x) for x in np.quantile(boot, [0.025, 0.975]))
    word = "slower" if ratio > 1 + threshold else "faster" if ratio < 1 / (1 + threshold) else "within"
    size = f"{ratio - 1:+.1%} (95% interval over the samples {low:.3f}-{high:.3f})"
    return Decision(word, ratio, float("nan"), n, f"{size}; {ONE_PROCESS_WARNING}", low, high)


def parse_threshold(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"threshold must be like 10% or 0.1, got {text!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"threshold must be between 0% and 100%, got {text!r}")
    return value


# -- the gate's decision: planned looks, a robust estimate, a false rate held per gate run ------------

@dataclass(frozen=True)
class SequentialPlan:
    """How a cell's rounds are judged, fixed before anything is measured.

    Every undecided cell is judged at each look (a round count); a cell stops at the first look
    that decides it (regressed, improved, unchanged) and is ``inconclusive`` only past the last.
    The estimate of the change is a trimmed mean of the per-round log ratios (``trim`` of the
    rounds cut at each end: a process that runs slow for its whole life moves it by little),
    with Yuen's standard error and t-quantiles on its degrees of freedom.

    A cell is ``regressed`` when the estimate is past +T and its one-sided lower bound is past
    +T/2 at the look's level (``levels``; a level of 0 makes a look unable to turn red). Without
    ``levels``, every look's is ``false_red / cells / len(looks)``: with a true change of T/2 in
    every one of ``cells`` cells, the chance that any cell of the run turns red at any look is
    then at most ``false_red`` whatever the noise (Bonferroni over cells and looks). The gate's
    shipped levels are larger, calibrated by simulation under the noise measured here
    (results/gate_design.md), which Bonferroni's bound leaves far from its 1%. ``unchanged``:
    the two-sided ``unchanged_confidence`` interval lies inside +-T.
    """

    looks: tuple[int, ...] = (6, 10, 14)
    cells: int = 12
    false_red: float = 0.01
    unchanged_confidence: float = 0.95
    trim: float = 0.2
    levels: tuple[float, ...] | None = None  # one-sided level of the bound at each look; None: Bonferroni

    def __post_init__(self) -> None:
        if not self.looks or list(self.looks) != sorted(set(self.looks)) or self.looks[0] < MIN_ROUNDS:
            raise ValueError(f"looks must be increasing round counts of at least {MIN_ROUNDS}, got {list(self.looks)}")
        if self.cells < 1 or not 0 < self.false_red < 1 or not 0 < self.unchanged_confidence < 1:
            raise ValueError("cells >= 1, false_red and unchanged_confidence in (0, 1)")
        if not 0 <= self.trim < 0.5:
            raise ValueError(f"trim must be in [0, 0.5), got {self.trim}")
        if self.levels is not None and (len(self.levels) != len(self.looks) or
                                        not all(0 <= a < 0.5 for a in self.levels)):
            raise ValueError(f"levels: one per look, each in [0, 0.5), got {self.levels}")

    def alpha_at(self, rounds: int) -> float:
        """The one-sided level of the regressed (or improved) bound at the last look ``rounds``
        reach (0 before the first: nothing is red)."""
        reached = [i for i, look in enumerate(self.looks) if look <= rounds]
        if not reached:
            return 0.0
        if self.levels is not None:
            return self.levels[reached[-1]]
        return self.false_red / self.cells / len(self.looks)

    @property
    def rounds(self) -> int:
        return self.looks[-1]


def trimmed_estimate(d: np.ndarray, trim: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Trimmed mean of each row of ``d`` (rounds along the last axis), Yuen's standard error, and
    the degrees of freedom (rounds - 2 g - 1, g = floor(trim x rounds) cut at each end)."""
    d = np.sort(np.asarray(d, float), axis=-1)
    n = d.shape[-1]
    g = int(math.floor(trim * n))
    kept = d[..., g:n - g]
    mean = kept.mean(axis=-1)
    winsorised = np.concatenate([np.repeat(kept[..., :1], g, axis=-1), kept,
                                 np.repeat(kept[..., -1:], g, axis=-1)], axis=-1)
    h = n - 2 * g
    se = np.sqrt(winsorised.var(axis=-1, ddof=1) * (n - 1) / (h * (h - 1))) if h > 1 else np.full(mean.shape, np.inf)
    return mean, se, h - 1


def judge_look(d: np.ndarray, threshold: float, plan: SequentialPlan) -> np.ndarray:
    """The verdict of each row of per-round log ratios ``d`` at one look: 'regressed', 'improved',
    'unchanged' or '' (undecided)."""
    mean, se, df = trimmed_estimate(d, plan.trim)
    alpha = plan.alpha_at(d.shape[-1])
    red = _t_quantile(1 - alpha, df) * se if alpha > 0 else np.inf
    wide = _t_quantile(0.5 + plan.unchanged_confidence / 2, df) * se
    upper, lower = math.log1p(threshold), math.log1p(threshold / 2)
    out = np.full(mean.shape, "", dtype=object)
    out[(np.abs(mean) + wide) < upper] = "unchanged"
    out[(mean > upper) & (mean - red > lower)] = "regressed"
    out[(mean < -upper) & (mean + red < -lower)] = "improved"
    return out


def log_ratios(base: list[list[float]], head: list[list[float]]) -> np.ndarray:
    """Per round: log(head / base) of the per-process medians of block medians."""
    return np.log([np.median(h) / np.median(b) for b, h in zip(base, head, strict=True)])


def decide_sequential(base: list[list[float]], head: list[list[float]], threshold: float,
                      plan: SequentialPlan) -> Decision:
    """The gate's verdict on the rounds measured so far (judged at the last look they reach)."""
    if len(base) != len(head):
        raise ValueError(f"rounds need a base and a head process each, got {len(base)} and {len(head)}")
    n = len(base)
    looks = [look for look in plan.looks if look <= n]
    if not looks:
        return Decision("inconclusive", math.nan, 1.0, n, f"too few rounds ({n} < {plan.looks[0]}, the first look)")
    d = log_ratios(base, head)[:looks[-1]]
    verdict = str(judge_look(d[None, :], threshold, plan)[0])
    mean, se, df = (float(x[0]) if hasattr(x, "__len__") else x for x in trimmed_estimate(d[None, :], plan.trim))
    alpha = plan.alpha_at(len(d))
    red = _t_quantile(1 - alpha, df) * se if alpha > 0 else math.inf
    wide = _t_quantile(0.5 + plan.unchanged_confidence / 2, df) * se
    ratio = math.exp(mean)
    low, high = math.exp(mean - wide), math.exp(mean + wide)
    found = (f"{ratio - 1:+.1%} ({plan.unchanged_confidence:.0%} interval {low:.3f}-{high:.3f}, trimmed over "
             f"{len(d)} rounds)")
    gap = abs(mean) - math.log1p(threshold / 2)
    p = _t_tail(gap / se, df) if se > 0 else float(gap <= 0)
    if verdict == "regressed":
        return Decision("regressed", ratio, p, len(d), f"{found}: slower by more than {threshold / 2:.0%} "
                        f"(one-sided bound {math.exp(mean - red):.3f} at {1 - alpha:.2%})", low, high)
    if verdict == "improved":
        return Decision("improved", ratio, p, len(d), f"{found}: faster by more than {threshold / 2:.0%}", low, high)
    if verdict == "unchanged":
        return Decision("unchanged", ratio, p, len(d), f"{found}: within ±{threshold:.0%}", low, high)
    need = _rounds_needed(se * math.sqrt(len(d)), mean, threshold, plan, len(d))
    settle = (f"about {need} rounds would settle it (--rounds)" if need else
              f"at this spread between processes more than {MAX_ROUNDS_ADVICE} rounds would be needed")
    if len(d) < plan.rounds:
        return Decision("inconclusive", ratio, p, len(d), f"{found}: undecided at look {len(looks)}; {settle}",
                        low, high)
    return Decision("inconclusive", ratio, p, len(d), f"{found}: may be past ±{threshold:.0%} after every look; "
                    f"{settle}", low, high)


def _rounds_needed(spread: float, mean: float, threshold: float, plan: SequentialPlan, measured: int) -> int | None:
    """Fewest rounds past ``measured`` at whose end the same spread (Yuen's se x sqrt(rounds),
    nearly constant in the rounds for a given noise: the winsorised sd and the trim's factor move
    in opposite ways as floor(trim x n) steps; a fixed winsorised sd under-predicts) would decide,
    judged as ``gate --rounds N`` judges (one look at Bonferroni's level over the cells):
    unchanged if the estimate is within T, else regressed / improved."""
    upper, lower = math.log1p(threshold), math.log1p(threshold / 2)
    alpha = plan.false_red / plan.cells  # what `gate --rounds N` judges at: one look, Bonferroni over cells
    for n in range(max(measured, plan.rounds) + 1, MAX_ROUNDS_ADVICE + 1):
        df = n - 2 * int(math.floor(plan.trim * n)) - 1
        se = spread / math.sqrt(n)
        if abs(mean) < upper and abs(mean) + _t_quantile(0.5 + plan.unchanged_confidence / 2, df) * se < upper:
            return n
        if abs(mean) > upper and abs(mean) - _t_quantile(1 - alpha, df) * se > lower:
            return n
    return None
