"""Is HEAD slower than BASE? The statistics of decisions that fail on real regressions and never
on noise.

Two kinds of evidence (see shared MEASURING.md):

* ``decide_rounds``: the PR gate. R rounds, each a fresh base process and a fresh head process
  measured side by side (blocks interleaved); the unit is the process, since identical code
  runs several percent faster or slower from one process to the next. Per round,
  d = log(head / base) of the per-process medians of block medians; a t-interval on the mean
  of the R values of d judges. For threshold T:

    regressed     mean > log(1 + T)  and  the one-sided 99% lower bound > log(1 + T/2)
    improved      the mirror image
    unchanged     the 98% interval lies inside +-log(1 + T): the change is smaller than T
    inconclusive  anything else (never fails); says how many rounds would settle it

  A true change of T/2 or less is then marked regressed at most 1% of the time, whatever the
  noise (the bound is a 99% one and the noise is estimated from the rounds themselves); one of
  2T is caught in >= 99% with 8 rounds of 3 blocks per process, at 3% per-process noise and
  block noise up to ``MAX_MAD`` (simulated in tests/test_compare.py). Measured per cell on the
  shared 2-core machine with benchmarks/gate_proof.py: 85% at 2T (34 of 40; the misses
  inconclusive), as the skewed-noise simulation (a process now and then slow for its whole
  life) predicts, and 0 of 40 red at T/2. More noise makes more verdicts inconclusive, never
  more red.
* ``decide_samples``: two stored runs (another job, maybe another day): ratio of medians and a
  Mann-Whitney U test on the raw samples. Between jobs the same code moves 10-26%, so this is
  for trends and warnings, not the PR gate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

ALPHA = 0.002  # as asv
CONFIDENCE = 0.99  # one-sided bounds of the gate; its reported interval is the two-sided 98% one
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
    low: float = float("nan")  # interval of the ratio (the gate's: 98%, two-sided)
    high: float = float("nan")

    def row(self) -> dict:
        return asdict(self)


def _verdict(ratio: float, p_slower: float, p_faster: float, threshold: float, alpha: float, n: int,
             what: str) -> Decision:
    if p_slower < alpha and ratio > 1 + threshold:
        return Decision("regressed", ratio, p_slower, n, f"{ratio - 1:+.1%} ({what} p={p_slower:.1e})")
    if p_faster < alpha and ratio < 1 / (1 + threshold):
        return Decision("improved", ratio, p_faster, n, f"{ratio - 1:+.1%} ({what} p={p_faster:.1e})")
    if ratio > 1 + threshold or ratio < 1 / (1 + threshold):
        p = p_slower if ratio > 1 else p_faster
        return Decision("inconclusive", ratio, p, n, f"{ratio - 1:+.1%} but not significant ({what} p={p:.1e} "
                                                     f">= {alpha})")
    return Decision("unchanged", ratio, min(p_slower, p_faster), n, f"{ratio - 1:+.1%}: within ±{threshold:.0%}")


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


def rounds_to_settle(spread: float, margin: float, confidence: float = CONFIDENCE) -> int | None:
    """Fewest rounds whose bound (``spread``: sd of d per round) stays within ``margin`` of the mean."""
    for n in range(MIN_ROUNDS, MAX_ROUNDS_ADVICE + 1):
        if margin > 0 and _t_quantile(confidence, n - 1) * spread / math.sqrt(n) < margin:
            return n
    return None


def decide_rounds(base: list[list[float]], head: list[list[float]], threshold: float = 0.10,
                  confidence: float = CONFIDENCE) -> Decision:
    """``base[j]``, ``head[j]``: block medians of round j's base and head processes (same cell)."""
    if len(base) != len(head):
        raise ValueError(f"rounds need a base and a head process each, got {len(base)} and {len(head)}")
    n = len(base)
    if n < MIN_ROUNDS:
        return Decision("inconclusive", float("nan"), 1.0, n,
                        f"too few rounds ({n} < {MIN_ROUNDS}): rerun with --rounds {MIN_ROUNDS} or more")
    d = np.log([np.median(h) / np.median(b) for b, h in zip(base, head, strict=True)])
    mean, spread = float(d.mean()), float(d.std(ddof=1))
    half = _t_quantile(confidence, n - 1) * spread / math.sqrt(n)
    upper, lower = math.log1p(threshold), math.log1p(threshold / 2)
    se = spread / math.sqrt(n)
    gap = abs(mean) - lower  # how far the estimate is past T/2: the one-sided test's statistic
    p = _t_tail(gap / se, n - 1) if se > 0 else float(gap <= 0)
    ratio, low, high = math.exp(mean), math.exp(mean - half), math.exp(mean + half)
    found = f"{ratio - 1:+.1%} ({2 * confidence - 1:.0%} CI {low:.3f}-{high:.3f}, {n} rounds)"
    if mean > upper and mean - half > lower:
        return Decision("regressed", ratio, p, n, f"{found}: slower by more than {threshold / 2:.0%}", low, high)
    if mean < -upper and mean + half < -lower:
        return Decision("improved", ratio, p, n, f"{found}: faster by more than {threshold / 2:.0%}", low, high)
    if -upper < mean - half and mean + half < upper:
        return Decision("unchanged", ratio, p, n, f"{found}: within ±{threshold:.0%}", low, high)
    rounds = rounds_to_settle(spread, gap if abs(mean) > upper else upper - abs(mean), confidence)
    settle = (f"rerun with --rounds {rounds}" if rounds else
              f"at this spread between processes more than {MAX_ROUNDS_ADVICE} rounds would be needed")
    return Decision("inconclusive", ratio, p, n, f"{found}: may be past ±{threshold:.0%}; {settle}", low, high)


def decide_samples(base: list[float], head: list[float], threshold: float = 0.10, alpha: float = ALPHA) -> Decision:
    """Raw samples from two runs: ratio of medians and a one-sided Mann-Whitney U test."""
    from scipy.stats import mannwhitneyu

    n = min(len(base), len(head))
    if n < MIN_PAIRS:
        return Decision("inconclusive", float("nan"), 1.0, n, f"too few samples ({n} < {MIN_PAIRS})")
    ratio = float(np.median(head) / np.median(base))
    p_slower = float(mannwhitneyu(head, base, alternative="greater").pvalue)
    p_faster = float(mannwhitneyu(head, base, alternative="less").pvalue)
    return _verdict(ratio, p_slower, p_faster, threshold, alpha, n, "Mann-Whitney U")


def parse_threshold(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"threshold must be like 10% or 0.1, got {text!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"threshold must be between 0% and 100%, got {text!r}")
    return value
