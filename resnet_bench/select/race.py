"""``resnet-bench select``: race the candidates instead of timing every one for a fixed time.

Selection is a racing problem. Every candidate (backend x precision x mode x batch of one depth)
that passed parity and may be picked on accuracy is measured briefly, in fresh processes (one
per backend and precision per round, the gate's process machinery); after each round the
candidates that are clearly out are dropped and the next round spends its time on the ones still close. The plan is
fixed up front (``RacePlan``):

* round 1, and any candidate with one process measured so far: out when its p-quantile latency
  is over the budget by more than a factor 1 + ``first_margin`` (1.25, past the
  process-to-process noise seen here), or its images/s times that factor is short of
  ``min_throughput`` or of another candidate that surely meets the budget;
* from round 2: per candidate and round, the median over its blocks of images/s and of the
  p-quantile latency of each block; t-intervals over the rounds (processes) of their logs at
  ``confidence``. Out when the latency interval lies above the budget, the rate interval below the
  minimum throughput, or below the rate interval of another candidate whose latency interval lies
  within the budget (dominated);
* it stops when one candidate is left (the pick, ahead of every other beyond their intervals);
  from round 3, as soon as no survivor could be told from the best even after ``rounds`` rounds
  (futility: each one's gap to the best, on the log scale, is less than two interval half-widths
  projected to the last round from the survivors' pooled process-to-process spread; tied, and
  the answer says so); when the survivors' rate intervals all overlap after ``rounds`` (tied);
  or when the next round would pass ``budget_s`` (the time the rounds so far took says so): then
  the best point estimate is named with the others it cannot be told from.

A round starts one fresh process per backend and precision, not one per candidate: each process
opens its backend's surviving configurations (mode x batch) one after the other, timed in turn
with the other backends' processes on the same configuration. Twelve ResNet-50 candidates cost
three process starts a round instead of twelve (each ~2 s of imports on 2 cores).

How often a pick so made differs from the pick of a sweep long enough to be sure is measured by
simulation (``simulate_race``; tests/select/test_race.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnet_bench.gate.processes import CellRecord, ProcessPlan, cell_name, measure_rounds

STATES = ("racing", "out", "picked", "tied")


@dataclass(frozen=True)
class RacePlan:
    rounds: int = 6  # at most this many rounds of fresh processes
    budget_s: float = 300.0  # no round is started that the rounds so far say would end past this
    confidence: float = 0.95  # two-sided, each interval an elimination reads
    first_margin: float = 0.25  # round 1: out only when this far past a limit
    futility: float = 2.0  # tie early when every gap to the best is under this many projected half-widths
    process: ProcessPlan = field(default_factory=lambda: ProcessPlan(blocks=2, block_s=0.25, warmup_iters=3,
                                                                     warmup_s=0.5))
    # Round 1 only sorts out what misses by more than first_margin: one warm-up call (ResNet-50
    # torch batch 8 is 0.6 s a call here) and a shorter block; its twelve cells were 61 s of a 120 s
    # select with the later rounds' warm-up.
    first: ProcessPlan = field(default_factory=lambda: ProcessPlan(blocks=2, block_s=0.15, warmup_iters=1,
                                                                   warmup_s=0.2))

    def __post_init__(self) -> None:
        if self.rounds < 2:
            raise ValueError(f"a race needs at least 2 rounds (intervals over processes), got {self.rounds}")
        if self.budget_s <= 0:
            raise ValueError(f"--budget-s must be positive, got {self.budget_s:g}")
        if not 0 < self.confidence < 1 or not 0 <= self.first_margin < 1:
            raise ValueError("confidence in (0, 1) and first_margin in [0, 1)")


@dataclass
class Entry:
    """One candidate's race: its cell, what each round measured, and how it left."""

    label: str
    cell: dict
    rates: list[float] = field(default_factory=list)  # per round: median images/s over its blocks
    quantiles: list[float] = field(default_factory=list)  # per round: median of its blocks' latency quantile
    samples: list[float] = field(default_factory=list)  # every latency (ms), all rounds
    state: str = "racing"
    left_in: int | None = None  # the round it left in
    why: str = ""

    def interval(self, values: list[float], confidence: float) -> tuple[float, float, float]:
        """(estimate, low, high) over rounds, on the log scale; a single round: its value twice."""
        logs = np.log(np.asarray(values, float))
        mean = float(logs.mean())
        if len(logs) < 2:
            return math.exp(mean), math.exp(mean), math.exp(mean)
        from scipy.stats import t

        half = float(t.ppf(0.5 + confidence / 2, len(logs) - 1)) * float(logs.std(ddof=1)) / math.sqrt(len(logs))
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


@dataclass(frozen=True)
class Limits:
    max_latency_ms: float | None = None
    percentile: int = 90
    min_throughput: float | None = None


def _quantile(samples: list[float], q: int) -> float:
    return float(np.percentile(samples, q)) if samples else math.nan


def _view(e: Entry, plan: RacePlan) -> tuple[float, float, float, float, float, float]:
    """(rate, low, high, latency, low, high) of one candidate: t-intervals over its rounds, or, while
    it has one process measured (round 1, or a round lost to another backend's failure), a factor
    of (1 + first_margin) either way: 130 ms is out of 100 ms, 120 ms is not."""
    if len(e.rates) >= 2:
        return (*e.interval(e.rates, plan.confidence), *e.interval(e.quantiles, plan.confidence))
    f = 1 + plan.first_margin
    return e.rates[0], e.rates[0] / f, e.rates[0] * f, e.quantiles[0], e.quantiles[0] / f, e.quantiles[0] * f


def eliminate(entries: list[Entry], limits: Limits, plan: RacePlan, round_: int) -> None:
    """Drop the candidates that are clearly out after ``round_`` rounds (see the module's rules); a
    candidate not measured yet (its record lost to another backend's failure) is left alone."""
    racing = [e for e in entries if e.state == "racing" and e.rates]
    view = {e.label: _view(e, plan) for e in racing}
    budget, least = limits.max_latency_ms, limits.min_throughput
    within = [e for e in racing if budget is None or view[e.label][5] <= budget]  # surely meets the budget
    best_low = max((view[e.label][1] for e in within), default=None)
    for e in racing:
        rate, rate_low, rate_high, lat, lat_low, _ = view[e.label]
        if budget is not None and lat_low > budget:
            e.why = f"p{limits.percentile} {lat:.3g} ms (at least {lat_low:.3g}) is over the {budget:g} ms budget"
        elif least is not None and rate_high < least:
            e.why = f"{rate:.3g} images/s (at most {rate_high:.3g}) is short of the {least:g} asked"
        elif best_low is not None and rate_high < best_low:
            e.why = f"{rate:.3g} images/s (at most {rate_high:.3g}) is below another that meets the budget"
        else:
            continue
        e.state, e.left_in = "out", round_


def _side(cell: dict) -> str:
    """The process a candidate is measured in: one per backend and precision and round."""
    return f"{cell['backend']} {cell['precision']}"


def _records(racing: list[Entry], round_: int) -> list[tuple[CellRecord, dict[str, Entry]]]:
    """One record per configuration (the cell but its backend and precision: mode, batch...): the
    backends' processes time it in turn. The order of the configurations inside a process is
    reversed every other round (none is always the first a process opens)."""
    groups: dict[tuple, dict[str, Entry]] = {}
    for e in racing:
        key = tuple(sorted((k, str(v)) for k, v in e.cell.items() if k not in ("backend", "precision")))
        groups.setdefault(key, {})[_side(e.cell)] = e
    records = [(CellRecord({side: e.cell for side, e in group.items()}, shared_k=False, keep_samples=True), group)
               for group in groups.values()]
    return records if round_ % 2 == 0 else records[::-1]


def futile(entries: list[Entry], plan: RacePlan, round_: int) -> bool:
    """From round 3: True when no survivor could be told from the best by the last planned round:
    each gap to the best (log images/s) is under twice the interval half-width that the
    survivors' pooled spread over processes gives at ``plan.rounds`` rounds (the elimination
    needs the two intervals apart: a gap of two half-widths). It reads rates only: a tied survivor
    whose latency interval still straddles the budget is named as tied (its p-quantile shown)."""
    racing = [e for e in entries if e.state == "racing"]
    if round_ < 3 or round_ >= plan.rounds or len(racing) < 2 or any(len(e.rates) < 2 for e in racing):
        return False  # 2 rounds: t(1) intervals, 12.7 sd wide
    from scipy.stats import t

    logs = [np.log(np.asarray(e.rates, float)) for e in racing]
    df = sum(len(x) - 1 for x in logs)
    pooled = math.sqrt(sum(float(((x - x.mean()) ** 2).sum()) for x in logs) / df)
    half = float(t.ppf(0.5 + plan.confidence / 2, plan.rounds - 1)) * pooled / math.sqrt(plan.rounds)
    means = sorted((float(x.mean()) for x in logs), reverse=True)
    return all(means[0] - m < plan.futility * half for m in means[1:])


def _tie(best: Entry, tied: list[Entry], plan: RacePlan, done: int, futility: bool) -> None:
    for e in tied:
        e.state, e.left_in = "tied", done
        e.why = f"not told apart from {cell_name(best.cell)} in {done} rounds"
        if futility:
            e.why += f" ({plan.rounds} would not either)"


def race(entries: list[Entry], limits: Limits, plan: RacePlan, tree: Path, artifacts: Path,
         progress=lambda text: None) -> dict:
    """Race ``entries`` (candidates already past parity and accuracy) by ``plan``; each entry's state,
    round and reason are set; returns how the race ended."""
    start, done = time.perf_counter(), 0
    ended = "rounds"
    while done < plan.rounds:
        racing = [e for e in entries if e.state == "racing"]
        if len(racing) <= 1:
            ended = "one left"
            break
        if done and futile(entries, plan, done):
            ended = "futile"
            break
        if done and time.perf_counter() - start + (time.perf_counter() - start) / done > plan.budget_s:
            ended = "budget"
            break
        records = _records(racing, done)
        sides = sorted({_side(e.cell) for e in racing})
        hung: dict[str, str] = {}
        process = plan.first if done == 0 else plan.process
        measure_rounds({side: tree for side in sides}, [r for r, _ in records], 1, process, artifacts, hung,
                       first_round=done, progress=progress, total=plan.rounds)
        done += 1
        for record, group in records:
            for side, e in group.items():
                if side in record.failures:
                    e.state, e.left_in, e.why = "out", done, f"failed: {record.failures[side]['error']}"
                elif record.rates[side]:  # not measured this round when another backend failed in its record
                    e.rates.append(float(np.median(record.rates[side][0])))
                    block = record.samples[side][0]
                    k = max(1, len(block) // process.blocks)
                    e.quantiles.append(float(np.median([_quantile(block[i:i + k], limits.percentile)
                                                        for i in range(0, len(block), k)])))
                    e.samples += block
        eliminate(entries, limits, plan, done)
    for e in entries:
        if e.state == "racing" and not e.rates:
            e.state, e.left_in, e.why = "out", done, "not measured: another backend's process failed in its rounds"
    survivors = [e for e in entries if e.state == "racing"]
    if not survivors:
        return {"ended": ended, "rounds": done, "seconds": time.perf_counter() - start, "pick": None}
    best = max(survivors, key=lambda e: e.interval(e.rates, plan.confidence)[0])
    tied = [e for e in survivors if e is not best]
    _tie(best, tied, plan, done, ended == "futile")
    best.state, best.left_in = ("picked" if not tied else "tied"), done
    return {"ended": ended, "rounds": done, "planned": plan.rounds, "seconds": time.perf_counter() - start,
            "pick": best.label, "tied_with": [e.label for e in tied]}


def simulate_race(true_rates: list[float], true_latency: list[float], limits: Limits, plan: RacePlan,
                  process_sd: float, runs: int = 2000, seed: int = 0, tie: float = 0.03) -> dict:
    """The race's error rate against the truth, under process-to-process noise ``process_sd`` (log
    sd of a candidate's per-process figure): how often the raced pick is not a right answer. A right
    answer is a candidate within ``tie`` of the true best (among those truly within the limits),
    named alone or with others it could not be told from (the report names them all); a race
    whose pick is outside the limits, or that names no right candidate, is wrong. A race that always
    ties would be right and useless: ``loose`` is the share of runs that name (pick or tied) one that
    is not right, ``named`` the mean count named, ``pick_off`` the share whose best point estimate
    (the one the report puts first) is not right.
    Rounds are not timed here: each run uses every planned round it needs."""
    rng = np.random.default_rng(seed)
    rates, lat = np.asarray(true_rates, float), np.asarray(true_latency, float)
    ok = np.ones(len(rates), bool)
    if limits.max_latency_ms is not None:
        ok &= lat <= limits.max_latency_ms
    if limits.min_throughput is not None:
        ok &= rates >= limits.min_throughput
    best = rates[ok].max() if ok.any() else None
    right = ok & (rates >= (best or 0) * (1 - tie)) if best is not None else np.zeros(len(rates), bool)
    wrong = picked_none = loose = named = off = rounds_run = 0
    for _ in range(runs):
        entries = [Entry(str(i), {}) for i in range(len(rates))]
        for round_ in range(1, plan.rounds + 1):
            racing = [e for e in entries if e.state == "racing"]
            if len(racing) <= 1 or futile(entries, plan, round_ - 1):
                break
            rounds_run += 1
            for e in racing:
                i = int(e.label)
                noise = rng.normal(0, process_sd)
                e.rates.append(rates[i] * math.exp(noise))
                e.quantiles.append(lat[i] * math.exp(-noise + rng.normal(0, process_sd / 2)))
            eliminate(entries, limits, plan, round_)
        survivors = [int(e.label) for e in entries if e.state == "racing"]
        if not survivors:
            picked_none += 1
            wrong += best is not None
            continue
        pick = max(survivors, key=lambda i: np.exp(np.mean(np.log(entries[i].rates))))
        named_right = right[pick] or (len(survivors) > 1 and right[survivors].any())
        wrong += not (ok[pick] and named_right)
        loose += not right[survivors].all()
        off += not right[pick]
        named += len(survivors)
    return {"runs": runs, "wrong": wrong / runs, "none": picked_none / runs, "loose": loose / runs,
            "named": named / max(1, runs - picked_none), "pick_off": off / runs, "rounds": rounds_run / runs}
