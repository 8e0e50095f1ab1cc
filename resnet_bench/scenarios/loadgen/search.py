"""The Server peak search: the largest target QPS LoadGen calls VALID, by bracketing and then
bisecting geometrically; every step is kept (its logs, and a record for search.json)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from resnet_bench.scenarios.loadgen.sut import Outcome


@dataclass(frozen=True)
class Step:
    number: int
    phase: str  # bracket / bisect
    target_qps: float
    outcome: Outcome

    def record(self) -> dict:
        r = self.outcome.result
        return {"step": self.number, "phase": self.phase, "target_qps": self.target_qps, "valid": r.valid,
                "completed_qps": r.qps, "latency_ms_p50": r.latency_ms["p50"], "latency_ms_p90": r.latency_ms["p90"],
                "latency_ms_p99": r.latency_ms["p99"], "overlatency_queries": r.overlatency_queries,
                "query_count": r.query_count, "reasons": "; ".join(r.reasons), "log_dir": self.outcome.log_dir.name}


def peak_search(run_at: Callable[[float, str], Outcome], start_qps: float, tolerance: float = 0.1,
                max_steps: int = 8, on_step: Callable[[list[Step]], None] | None = None
                ) -> tuple[Step | None, list[Step]]:
    """The largest target QPS LoadGen calls VALID: bracket (double while VALID, halve while
    INVALID), then bisect geometrically until the bracket is within ``1 + tolerance`` or the
    steps run out. Returns the VALID step with the largest QPS (None if none) and every step.
    ``on_step`` sees the steps so far after each one (a search cut off keeps its record)."""
    if not start_qps > 0 or not tolerance > 0 or max_steps < 1:
        raise ValueError("peak search needs start_qps > 0, tolerance > 0 and max_steps >= 1")
    steps: list[Step] = []

    def attempt(qps: float, phase: str) -> bool:
        outcome = run_at(qps, f"step-{len(steps) + 1:02d}-{qps:.4g}qps")
        steps.append(Step(len(steps) + 1, phase, qps, outcome))
        if on_step is not None:
            on_step(steps)
        return outcome.result.valid

    low = high = None
    qps = start_qps
    if attempt(qps, "bracket"):
        low = qps
    else:
        high = qps
    while (low is None or high is None) and len(steps) < max_steps:
        qps = qps * 2 if high is None else qps / 2
        if attempt(qps, "bracket"):
            low = qps
        else:
            high = qps
    while low is not None and high is not None and high / low > 1 + tolerance and len(steps) < max_steps:
        qps = math.sqrt(low * high)
        if attempt(qps, "bisect"):
            low = qps
        else:
            high = qps
    valid = [step for step in steps if step.outcome.result.valid]
    return (max(valid, key=lambda s: s.target_qps) if valid else None), steps
