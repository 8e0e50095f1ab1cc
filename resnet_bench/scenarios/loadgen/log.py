"""Read a LoadGen run from its own log, ``mlperf_log_detail.txt``: one ``:::MLLOG {json}`` per line.

Everything a row says about a LoadGen run comes from here (the verdict, its reasons, the
latency percentiles, the early-stopping estimate, the rates), never from our own clock: LoadGen
counts a query's latency from the time it was scheduled, so queueing is inside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from resnet_bench.scenarios.loadgen.settings import overlatency_allowed

DETAIL = "mlperf_log_detail.txt"
PERCENTILES = {50: "50.00", 90: "90.00", 99: "99.00"}


def read_detail(folder: str | Path) -> tuple[dict, list[str]]:
    """The last value logged per key, and the messages LoadGen marked as errors."""
    path = Path(folder) / DETAIL
    if not path.is_file():
        raise ValueError(f"no LoadGen log {path}")
    values, errors = {}, []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith(":::MLLOG "):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG "):])
        except ValueError:
            continue
        values[entry["key"]] = entry["value"]
        if entry.get("metadata", {}).get("is_error"):
            errors.append(f"{entry['key']}: {entry['value']}")
    return values, errors


def _ms(value: object) -> float:
    return float(value) / 1e6 if isinstance(value, (int, float)) and value > 0 else math.nan


def _one_line(text: object) -> str:
    return " ".join(str(text or "").replace("*", "").split())


@dataclass(frozen=True)
class LoadgenResult:
    scenario: str  # LoadGen's name: SingleStream, MultiStream, Server, Offline
    mode: str  # PerformanceOnly / AccuracyOnly
    valid: bool
    reasons: tuple[str, ...]  # why INVALID, in words
    query_count: int
    samples_per_query: int
    qps: float  # SingleStream: queries/s; MultiStream: 1 / mean query latency; Server: completed samples/s;
    # Offline: samples/s
    samples_per_s: float
    target_qps: float  # Server: the Poisson arrival rate; others: what LoadGen sized the run by
    percentile: float  # the percentile LoadGen holds the run to (0.9, 0.99); NaN for Offline
    target_latency_ms: float  # Server's bound; NaN when none
    latency_ms: dict  # p50 / p90 / p99 / mean / min / max, per query for MultiStream
    early_stopping_ms: float  # LoadGen's early-stopping estimate of the held percentile; NaN if none
    early_stopping: str  # LoadGen's early-stopping text, on one line
    overlatency_queries: int | None  # Server: queries over the bound
    overlatency_allowed: int | None  # Server: the most over the bound early stopping passes at this count
    errors: tuple[str, ...]
    settings: dict  # LoadGen's effective test settings, as it logged them

    def columns(self) -> dict:
        """The row's LoadGen columns."""
        out = {f"latency_ms_{name}": value for name, value in self.latency_ms.items()}
        return {**out, "qps": self.qps, "images_per_s": self.samples_per_s, "target_qps": self.target_qps,
                "query_count": self.query_count, "loadgen_valid": self.valid,
                "loadgen_invalid_reason": "; ".join(self.reasons),
                "loadgen_percentile": round(100 * self.percentile, 3),
                "early_stopping_ms": self.early_stopping_ms, "early_stopping": self.early_stopping,
                "overlatency_queries": self.overlatency_queries, "overlatency_allowed": self.overlatency_allowed}


def _reasons(values: dict, errors: list[str]) -> tuple[str, ...]:
    if values.get("result_validity") == "VALID":
        return ()
    reasons = []
    if values.get("result_perf_constraints_met") is False:
        pct = 100 * float(values.get("effective_target_latency_percentile", 0))
        bound = _ms(values.get("effective_target_latency_ns"))
        reasons.append(f"p{pct:g} latency over the {bound:g} ms bound")
    if values.get("result_min_duration_met") is False:
        reasons.append(f"min duration ({float(values.get('effective_min_duration_ms', 0)) / 1e3:g} s) not met")
    if values.get("result_min_queries_met") is False:
        reasons.append(f"min queries ({values.get('effective_min_query_count')}) not met")
    if values.get("early_stopping_met") is False:
        over, queries = values.get("result_overlatency_query_count"), values.get("result_query_count")
        if (values.get("effective_scenario") == "Server" and values.get("result_perf_constraints_met") is not False
                and over is not None and queries):
            pct = 100 * float(values.get("effective_target_latency_percentile", 0))
            allowed = overlatency_allowed(int(queries), pct)
            reasons.append(f"needs more queries: the measured p{pct:g} is within the bound, but early stopping lets "
                           f"at most {allowed if allowed is not None else 'none'} of {queries} queries over it pass "
                           f"and {over} were")
        else:
            reasons.append(f"early stopping not met ({_one_line(values.get('early_stopping_result'))})")
    said = _one_line(values.get("result_invalid_reason"))
    if said:
        reasons.append(f"LoadGen: {said}")
    reasons += errors
    return tuple(reasons) or (f"LoadGen says {values.get('result_validity', 'nothing (no result logged)')}",)


def parse(folder: str | Path) -> LoadgenResult:
    values, errors = read_detail(folder)
    if "result_validity" not in values and values.get("effective_test_mode") != "AccuracyOnly":
        raise ValueError(f"LoadGen logged no result in {Path(folder) / DETAIL}")
    scenario = str(values.get("effective_scenario", ""))
    per_query = "per_query_" if scenario == "MultiStream" else ""
    query = "query_" if scenario == "MultiStream" else ""
    latency = {f"p{q}": _ms(values.get(f"result_{key}_percentile_{per_query}latency_ns"))
               for q, key in PERCENTILES.items()}
    latency.update({name: _ms(values.get(f"result_{name}_{query}latency_ns")) for name in ("mean", "min", "max")})
    samples_per_query = int(values.get("effective_samples_per_query", 1) or 1)
    queries = int(values.get("result_query_count", 0) or 0)
    if scenario == "Server":
        samples_per_s = float(values.get("result_completed_samples_per_sec", math.nan))
        qps = samples_per_s
    elif scenario == "Offline":
        samples_per_s = float(values.get("result_samples_per_second", math.nan))
        qps = samples_per_s
    elif scenario == "MultiStream":  # LoadGen logs no rate: queries back to back, 1 / mean query latency
        qps = 1e3 / latency["mean"] if latency["mean"] > 0 else math.nan
        samples_per_s = qps * samples_per_query
    else:
        qps = float(values.get("result_qps_with_loadgen_overhead", math.nan))
        samples_per_s = qps * samples_per_query
    early = {"SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}.get(scenario)
    overlatency = values.get("result_overlatency_query_count")
    return LoadgenResult(
        scenario=scenario, mode=str(values.get("effective_test_mode", "")),
        valid=values.get("result_validity") == "VALID", reasons=_reasons(values, errors),
        query_count=queries, samples_per_query=samples_per_query, qps=qps, samples_per_s=samples_per_s,
        target_qps=float(values.get("effective_target_qps", math.nan)),
        percentile=math.nan if scenario == "Offline" else float(values.get("effective_target_latency_percentile",
                                                                                  math.nan)),
        target_latency_ms=_ms(values.get("effective_target_latency_ns")) if scenario == "Server" else math.nan,
        latency_ms=latency, early_stopping_ms=_ms(values.get(early)) if early else math.nan,
        early_stopping=_one_line(values.get("early_stopping_result")),
        overlatency_queries=int(overlatency) if overlatency is not None else None,
        overlatency_allowed=(overlatency_allowed(queries, float(values.get("effective_target_latency_percentile", 0.9)))
                             if scenario == "Server" and queries else None),
        errors=tuple(errors),
        settings={key[len("effective_"):]: value for key, value in values.items() if key.startswith("effective_")})
