"""Is HEAD slower than BASE? Decisions that fail on real regressions and never on noise.

Two kinds of evidence (see shared MEASURING.md):

* ``decide_pairs``: blocks measured in one job, interleaved A B B A. r_i = log(head_i / base_i);
  regressed only if a sign test says the r_i lean that way (p < alpha) *and* the change may be
  as large as the threshold: the 95% interval of exp(median r) reaches past 1 + threshold.
  (With the point estimate alone, a true 10% slowdown measures 1.09-1.12 and is caught about
  half the time at a 10% threshold; measured by benchmarks/gate_proof.py.) Too noisy (MAD of r
  above ``max_mad``, or drift between the first and last third of the pairs) is
  ``inconclusive``, never red.
* ``decide_samples``: two stored runs (another job, maybe another day): ratio of medians and a
  Mann-Whitney U test on the raw samples. Between jobs the same code moves 10-26%, so this is
  for trends and warnings, not the PR gate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.002  # as asv
MAX_MAD = 0.15
MIN_PAIRS = 10


@dataclass(frozen=True)
class Decision:
    verdict: str  # regressed / improved / unchanged / inconclusive
    ratio: float  # head / base (median): 1.10 = 10% slower
    p_value: float  # one-sided, in the direction of the change
    n: int
    reason: str = ""

    def row(self) -> dict:
        return asdict(self)


def _sign_test(r: np.ndarray) -> tuple[float, float]:
    """One-sided binomial tails: P(at least k of n positive), P(at least n-k negative)."""
    nonzero = r[r != 0]
    n, k = len(nonzero), int((nonzero > 0).sum())
    tail = lambda m: sum(math.comb(n, i) for i in range(m, n + 1)) / 2**n  # noqa: E731
    return (tail(k), tail(n - k)) if n else (1.0, 1.0)


def _verdict(ratio: float, p_slower: float, p_faster: float, threshold: float, alpha: float, n: int,
             what: str, bounds: tuple[float, float] | None = None) -> Decision:
    """``bounds``: a 95% interval of the ratio. With it, a significant change counts when the
    interval reaches past the threshold (the change may be that large); without it, when the
    point estimate does."""
    low, high = bounds or (ratio, ratio)
    ci = f", 95% CI {low:.3f}-{high:.3f}" if bounds else ""
    if p_slower < alpha and high > 1 + threshold:
        return Decision("regressed", ratio, p_slower, n, f"{ratio - 1:+.1%} ({what} p={p_slower:.1e}{ci})")
    if p_faster < alpha and low < 1 / (1 + threshold):
        return Decision("improved", ratio, p_faster, n, f"{ratio - 1:+.1%} ({what} p={p_faster:.1e}{ci})")
    if ratio > 1 + threshold or ratio < 1 / (1 + threshold):
        p = p_slower if ratio > 1 else p_faster
        return Decision("inconclusive", ratio, p, n, f"{ratio - 1:+.1%} but not significant ({what} p={p:.1e} "
                                                     f">= {alpha})")
    return Decision("unchanged", ratio, min(p_slower, p_faster), n,
                    f"{ratio - 1:+.1%}{ci}: within ±{threshold:.0%}")


def median_interval(r: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics (binomial)."""
    n = len(r)
    ordered = np.sort(r)
    cdf, j = 0.0, 0
    while True:  # the largest j with P(Binomial(n, 1/2) <= j - 1) <= (1 - confidence) / 2
        cdf_next = cdf + math.comb(n, j) / 2**n
        if cdf_next > (1 - confidence) / 2:
            break
        cdf, j = cdf_next, j + 1
    j = max(j, 1) if n > 1 else 0
    return float(ordered[j - 1]) if j else float(ordered[0]), float(ordered[n - j]) if j else float(ordered[-1])


def decide_pairs(base: list[float], head: list[float], threshold: float = 0.10, alpha: float = ALPHA,
                 max_mad: float = MAX_MAD) -> Decision:
    """Interleaved block medians, pair by pair (base[i] and head[i] measured next to each other)."""
    if len(base) != len(head):
        raise ValueError(f"pairs need as many base as head blocks, got {len(base)} and {len(head)}")
    n = len(base)
    if n < MIN_PAIRS:
        return Decision("inconclusive", float("nan"), 1.0, n, f"too few pairs ({n} < {MIN_PAIRS})")
    r = np.log(np.asarray(head, float) / np.asarray(base, float))
    ratio = float(np.exp(np.median(r)))
    mad = float(np.median(np.abs(r - np.median(r))))
    if mad > max_mad:
        return Decision("inconclusive", ratio, 1.0, n, f"too noisy: MAD of log ratios {mad:.2f} > {max_mad}")
    third = n // 3
    drift = float(abs(np.median(r[:third]) - np.median(r[-third:])))
    if drift > threshold:
        return Decision("inconclusive", ratio, 1.0, n, f"drift: the ratio moved {drift:.1%} between the first "
                                                       "and last third of the pairs")
    p_slower, p_faster = _sign_test(r)
    low, high = median_interval(r)
    return _verdict(ratio, p_slower, p_faster, threshold, alpha, n, "sign test",
                    (float(np.exp(low)), float(np.exp(high))))


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


# Config fields that only choose which cells a run has (cells are matched by id, which holds
# them) or where files go; every other field may move a figure and must match.
CELL_CHOICE = frozenset({"device", "depths", "batches", "backends", "precisions", "modes", "parity_images",
                         "artifacts"})


def _read_json(path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _flat(config: dict, prefix: str = "") -> dict:
    """{"rule": {"min_s": 1}} -> {"rule.min_s": 1}"""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(base: dict, head: dict, base_cpus: int | None = None,
                       head_cpus: int | None = None) -> list[str]:
    """``key base vs head`` for every field that may move a figure and differs. A field one run
    does not record (an older run) is unknown, not a difference. threads None means the CPUs
    the run had."""
    base, head = _flat(base), _flat(head)
    for flat, cpus in ((base, base_cpus), (head, head_cpus)):
        if flat.get("threads") is None and cpus is not None and "threads" in flat:
            flat["threads"] = cpus
    differences = []
    for key in sorted(base.keys() & head.keys()):
        if key.split(".")[0] not in CELL_CHOICE and base[key] != head[key]:
            differences.append(f"{key} {base[key]!r} vs {head[key]!r}")
    return differences


def compare_runs(base_dir, head_dir, threshold: float = 0.10) -> list[dict]:
    """Per cell present in both runs: verdict on the raw samples, and whether parity got worse.

    Refuses (ValueError) runs whose hard fingerprints differ, or whose configurations differ in
    anything that moves a figure (threads, weights, input size, stop rule...): their numbers are
    not comparable.
    """
    from pathlib import Path

    from resnet_bench.results import load, load_samples

    prints = []
    for run in (base_dir, head_dir):
        fingerprint = _read_json(Path(run) / "fingerprint.json")
        if not isinstance(fingerprint, dict) or "fingerprint_id" not in fingerprint:
            raise ValueError(f"{run} is not a run directory (no fingerprint.json)")
        prints.append(fingerprint)
    if prints[0]["fingerprint_id"] != prints[1]["fingerprint_id"]:
        raise ValueError(f"the runs were measured on different machines or software (fingerprints "
                         f"{prints[0]['fingerprint_id']} and {prints[1]['fingerprint_id']}): their timings "
                         "cannot be compared")
    configs = [_read_json(Path(run) / "config.json") for run in (base_dir, head_dir)]
    if all(isinstance(config, dict) for config in configs):  # a run without one: unknown
        differences = config_differences(*configs, *(p.get("cpus_available") for p in prints))
        if differences:
            raise ValueError(f"the runs were measured with different configurations ({'; '.join(differences)}): "
                             "their timings cannot be compared")
    base, head = load(base_dir).set_index("cell_id"), load(head_dir).set_index("cell_id")
    rows = []
    for cell in base.index.intersection(head.index):
        b, h = base.loc[cell], head.loc[cell]
        row = {"cell_id": cell, "base_status": b.status, "head_status": h.status,
               "parity_worse": b.parity_status == "pass" and h.parity_status != "pass"}
        if b.status in ("ok", "parity_failed") and h.status in ("ok", "parity_failed"):
            decision = decide_samples(load_samples(base_dir, cell), load_samples(head_dir, cell), threshold)
            row.update(decision.row(), base_ms=b.latency_ms_p50, head_ms=h.latency_ms_p50)
        else:
            row.update(verdict="not compared", reason=f"status {b.status} -> {h.status}")
        rows.append(row)
    return rows
