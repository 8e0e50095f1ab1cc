"""Deployment-target selection: which configuration meets my constraints, and why.

A configuration is one measured cell: machine, device, backend, precision, mode, batch, depth.
Only cells that ran (``status == ok``) and passed parity are ever recommended; noisy cells
(``valid == False``) may be, with the noise said in the reason. Latency constraints use the
upper end of the chosen percentile's 95% interval (``latency_ms_p90_high``): a cell whose
percentile the samples cannot bound (too few samples) never meets a latency budget, and the
miss says so.

Those latencies are closed-loop: one request waits for the last, so they are not the latency
a service sees at that throughput. With a latency budget, selection prefers LoadGen Server
results where a depth has them (``resnet-bench loadgen``, the full profile): the peak target
QPS LoadGen called VALID with the held percentile (p90 or p99, at least the one asked) under a
bound within the budget, "N QPS at p99 <= budget under Poisson arrivals". Without one, it says
the pick rests on closed-loop figures only. The other LoadGen rows (SingleStream, MultiStream,
Offline) are not candidates: they carry LoadGen's percentiles, not our intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from resnet_bench.report.load import is_true

PERCENTILES = (50, 90, 99)
CONFIG = ["machine", "device", "backend", "precision", "mode", "batch_size", "depth"]
CLOSED_LOOP = ("latency", "throughput")


@dataclass(frozen=True)
class Constraints:
    max_latency_ms: float | None = None
    latency_percentile: int = 90  # MLPerf SingleStream's; a p99 bound needs 368 samples
    min_throughput: float | None = None  # images/s
    max_rel_err: float | None = None
    min_top1_agreement: float | None = None  # share of images whose top-1 matches PyTorch fp32
    precisions: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    depths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.latency_percentile not in PERCENTILES:
            raise ValueError(f"latency percentile must be one of {PERCENTILES}, got {self.latency_percentile}")
        for name in ("max_latency_ms", "min_throughput", "max_rel_err"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.min_top1_agreement is not None and not 0 < self.min_top1_agreement <= 1:
            raise ValueError(f"min_top1_agreement must be in (0, 1], got {self.min_top1_agreement}")

    @property
    def latency_column(self) -> str:
        """The 95% upper bound of the chosen percentile: the latency a cell is held to."""
        return f"latency_ms_p{self.latency_percentile}_high"

    def describe(self) -> str:
        parts = []
        if self.max_latency_ms is not None:
            parts.append(f"p{self.latency_percentile} latency <= {self.max_latency_ms:g} ms (95% upper bound)")
        if self.min_throughput is not None:
            parts.append(f">= {self.min_throughput:g} images/s")
        if self.max_rel_err is not None:
            parts.append(f"rel. error <= {self.max_rel_err:g}")
        if self.min_top1_agreement is not None:
            parts.append(f"top-1 agreement >= {self.min_top1_agreement:g}")
        for name in ("precisions", "devices", "depths"):
            if getattr(self, name):
                parts.append(f"{name} {', '.join(map(str, getattr(self, name)))}")
        return "; ".join(parts) or "none"


@dataclass
class Selection:
    qualifying: pd.DataFrame  # ranked: best first
    pareto: pd.DataFrame  # per depth, the latency / throughput front of the candidates
    picks: list[dict]  # per depth: {"depth", "row", "reason", "source": "server" or "closed-loop"}
    misses: list[str]  # when nothing qualifies for a depth: which constraint, by how much
    server: pd.DataFrame | None = None  # LoadGen Server peaks that meet the constraints, best first


def _filtered(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    rows = frame[(frame.status == "ok") & (frame.parity_status == "pass")]
    if c.precisions:
        rows = rows[rows.precision.isin(c.precisions)]
    if c.devices:
        rows = rows[rows.device.isin(c.devices)]
    if c.depths:
        rows = rows[rows.depth.isin(c.depths)]
    if c.min_top1_agreement is not None:  # int8 on the seeded model passes parity by its error alone
        rows = rows[rows.top1_agreement >= c.min_top1_agreement]
    return rows


def candidates(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Closed-loop cells that ran, passed parity and fit the filters (precision, device, depth)."""
    return with_bounds(_filtered(frame[frame["mode"].isin(CLOSED_LOOP)], c), c)


def server_candidates(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """LoadGen Server peaks that fit the filters and the constraints, best (most QPS) first: VALID,
    held to a percentile at least the one asked, under a bound within the budget."""
    if "scenario" not in frame or c.max_latency_ms is None:
        return frame.iloc[0:0]
    rows = _filtered(frame[frame.scenario == "server"], c)
    rows = rows[is_true(rows.loadgen_valid)]
    rows = rows[(rows.loadgen_percentile >= c.latency_percentile) & (rows.latency_bound_ms <= c.max_latency_ms)]
    if c.min_throughput is not None:
        rows = rows[rows.target_qps >= c.min_throughput]
    if c.max_rel_err is not None:
        rows = rows[rows.rel_l2_err <= c.max_rel_err]
    return rows.sort_values(["depth", "target_qps"], ascending=[True, False])


def _server_reason(row: pd.Series, closed: str) -> str:
    steps = int(row.server_search_steps) if pd.notna(row.get("server_search_steps")) else 0
    how = f"the peak of a {steps}-step search" if steps else "one run at that rate"
    return (f"ResNet-{row.depth}: {row.backend} {row.precision} on {row.device} serves {row.target_qps:.3g} QPS "
            f"at p{row.loadgen_percentile:g} <= {row.latency_bound_ms:g} ms under Poisson arrivals (LoadGen Server, "
            f"VALID, {how}; measured p99 {row.latency_ms_p99:.1f} ms){closed}.")


def with_bounds(rows: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Rows written before intervals existed (results schema 1) have no bound: NaN, said why."""
    if c.latency_column in rows:
        return rows
    return rows.assign(**{c.latency_column: math.nan, "unbounded": "results schema 1 rows have no intervals"})


def unbounded_reason(row: pd.Series, c: Constraints) -> str:
    """Why the cell's chosen percentile has no upper bound (from its ``unbounded`` column)."""
    said = row.get("unbounded")
    parts = said.split("; ") if isinstance(said, str) else []
    mine = [part for part in parts if part.startswith(f"p{c.latency_percentile}:")]
    return (mine or parts or [f"p{c.latency_percentile} has no upper bound"])[0]


def violations(row: pd.Series, c: Constraints) -> dict[str, float]:
    """How far a cell misses each constraint, as a fraction (0 when it meets it; inf when its
    latency percentile is unbounded)."""
    miss = {}
    if c.max_latency_ms is not None:
        bound = row[c.latency_column]
        miss["latency"] = math.inf if pd.isna(bound) else max(0.0, bound / c.max_latency_ms - 1)
    if c.min_throughput is not None:
        miss["throughput"] = max(0.0, c.min_throughput / row.images_per_s - 1)
    if c.max_rel_err is not None:
        miss["rel_err"] = max(0.0, row.rel_l2_err / c.max_rel_err - 1)
    return miss


def pareto_front(rows: pd.DataFrame, latency: str) -> pd.DataFrame:
    """The cells no other cell beats on both latency (lower) and throughput (higher); cells
    without a latency bound are not on it."""
    rows = rows[rows[latency].notna()]
    ordered = rows.sort_values([latency, "images_per_s"], ascending=[True, False])
    front, best = [], -1.0
    for index, row in ordered.iterrows():
        if row.images_per_s > best:
            front.append(index)
            best = row.images_per_s
    return rows.loc[front].sort_values(latency)


def _label(row: pd.Series) -> str:
    return (f"{row.backend} {row.precision} {row['mode']} batch {row.batch_size} on {row.device}"
            + (f" ({row.machine})" if "machine" in row and isinstance(row.machine, str) else ""))


def _miss_sentence(row: pd.Series, c: Constraints, miss: dict[str, float]) -> str:
    texts = {
        "latency": lambda: (f"p{c.latency_percentile} unbounded ({unbounded_reason(row, c)})"
                            if math.isinf(miss["latency"]) else
                            f"p{c.latency_percentile} latency up to {row[c.latency_column]:.1f} ms (95% bound) is "
                            f"{miss['latency']:.0%} over {c.max_latency_ms:g} ms"),
        "throughput": lambda: f"{row.images_per_s:.1f} images/s is {miss['throughput']:.0%} short of "
                              f"{c.min_throughput:g}",
        "rel_err": lambda: f"rel. error {row.rel_l2_err:.1e} is {miss['rel_err']:.0%} over {c.max_rel_err:g}",
    }
    failing = [texts[k]() for k, v in miss.items() if v > 0]
    return "; ".join(failing)


def select(frame: pd.DataFrame, c: Constraints) -> Selection:
    rows = candidates(frame, c)
    if "machine" not in rows:
        rows = rows.assign(machine=rows.get("fingerprint_id", "this machine"))
    qualifying_mask = rows.apply(lambda r: not any(violations(r, c).values()), axis=1) if len(rows) else []
    qualifying = rows[qualifying_mask] if len(rows) else rows
    qualifying = qualifying.sort_values(["depth", "images_per_s", c.latency_column],
                                        ascending=[True, False, True])
    fronts = [pareto_front(group, c.latency_column) for _, group in rows.groupby("depth")]
    pareto = pd.concat(fronts) if fronts else rows.iloc[0:0]
    picks, misses = [], []
    server = server_candidates(frame, c)
    has_server = set(frame[frame.get("scenario", pd.Series(index=frame.index, dtype=object)) == "server"].depth)
    depths = sorted(set(c.depths or frame.depth.unique()))
    for depth in depths:
        mine = qualifying[qualifying.depth == depth]
        served = server[server.depth == depth]
        if len(served):
            closed = (f"; closed loop alone would pick {_label(mine.iloc[0])} at {mine.iloc[0].images_per_s:.1f} "
                      "images/s" if len(mine) else "")
            picks.append({"depth": depth, "row": served.iloc[0], "source": "server",
                          "reason": _server_reason(served.iloc[0], closed)})
            continue
        if len(mine):
            best = mine.iloc[0]
            noisy = "" if best.valid in (True, "True") else f" (not a valid cell: {best.invalid_reasons})"
            limit = (f", within the p{c.latency_percentile} budget of {c.max_latency_ms:g} ms"
                     if c.max_latency_ms is not None else "")
            at = (f"p{c.latency_percentile} unbounded" if pd.isna(best[c.latency_column])
                  else f"p{c.latency_percentile} <= {best[c.latency_column]:.1f} ms (95% bound)")
            reason = (f"ResNet-{depth}: {_label(best)} gives {best.images_per_s:.1f} images/s at "
                      f"{at}, the highest throughput of {len(mine)} qualifying configurations{limit}{noisy}.")
            if c.max_latency_ms is not None:
                reason += (" Closed-loop figures only: LoadGen Server results exist but none is VALID within the "
                           "budget." if depth in has_server else " Closed-loop figures only (no LoadGen Server run): "
                           "the latency of one request at a time, not under load.")
            picks.append({"depth": depth, "row": best, "reason": reason, "source": "closed-loop"})
            continue
        pool = rows[rows.depth == depth]
        if not len(pool):
            misses.append(f"ResNet-{depth}: no cell ran, passed parity and fits the filters "
                          f"({c.describe()}).")
            continue
        scored = sorted(((max(violations(r, c).values(), default=0.0), i) for i, r in pool.iterrows()))
        closest = [pool.loc[i] for _, i in scored[:3]]
        details = "; ".join(f"{_label(r)}: {_miss_sentence(r, c, violations(r, c))}" for r in closest)
        misses.append(f"ResNet-{depth}: nothing meets {c.describe()}. Closest: {details}.")
    return Selection(qualifying, pareto, picks, misses, server)
