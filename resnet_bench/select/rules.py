"""Deployment-target selection: which configuration meets my constraints, and why.

A configuration is one measured cell: machine, device, backend, precision, mode, batch, depth.
Only cells that ran (``status == ok``), passed parity and whose accuracy is established within
the budget are ever recommended:

* accuracy: bf16 and int8 are picked only when their accuracy was judged on real weights and
  images and kept within the budget (``accuracy_status == pass``, or ``accuracy_drop`` within
  ``max_accuracy_drop`` when the constraint is given); on the seeded model they are timed and
  shown, never picked, and the pick says so. A cell whose real accuracy failed is never picked.
* latency: closed-loop constraints use the upper end of the chosen percentile's 95% interval
  (``latency_ms_p90_high``); a cell whose percentile the samples cannot bound never meets a
  budget, and the miss says so. Under a budget, LoadGen Server peaks (Poisson arrivals) are
  compared only like with like: when every finalist of a depth (each backend x precision that
  meets the other constraints) has a VALID Server peak at a bound within the budget, the pick is
  the largest peak; when only some have one, every finalist is compared by its closed-loop
  figures, and the pick says why.
* noise: a pick ahead of its runner-up by less than this machine's process-to-process noise is
  not a pick. A confirmation (``select.confirm``, written by ``bench`` beside the run) says
  "ahead by X% (interval)" or "tied within noise"; without one, the pick says its margin is from
  one process each and, when the two cells' own intervals overlap, that they are tied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from resnet_bench.parity.accuracy import CLOSED_LOOP, accuracy_clause, is_finalist
from resnet_bench.results.runs import is_true

PERCENTILES = (50, 90, 99)
CONFIG = ["machine", "device", "backend", "precision", "mode", "batch_size", "depth"]
FINALIST = ["machine", "device", "backend", "precision"]
SEARCH_RESOLUTION = 0.10  # LoadGen's peak search stops within 10%: closer peaks are not ranked


@dataclass(frozen=True)
class Constraints:
    max_latency_ms: float | None = None
    latency_percentile: int = 90  # MLPerf SingleStream's; a p99 bound needs 368 samples
    min_throughput: float | None = None  # images/s
    max_rel_err: float | None = None
    min_top1_agreement: float | None = None  # share of images whose top-1 matches PyTorch fp32
    max_accuracy_drop: float | None = None  # relative top-1 drop; None: each row's own verdict
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
        if self.max_accuracy_drop is not None and not 0 < self.max_accuracy_drop < 1:
            raise ValueError(f"--max-accuracy-drop must be between 0% and 100% (exclusive), "
                             f"got {self.max_accuracy_drop:g}")

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
        if self.max_accuracy_drop is not None:
            parts.append(f"top-1 drop <= {self.max_accuracy_drop:.1%}")
        for name in ("precisions", "devices", "depths"):
            if getattr(self, name):
                parts.append(f"{name} {', '.join(map(str, getattr(self, name)))}")
        return "; ".join(parts) or "none"


@dataclass
class Selection:
    qualifying: pd.DataFrame  # ranked: best first
    pareto: pd.DataFrame  # per depth, the latency / throughput front of the candidates
    picks: list[dict]  # per depth: {"depth", "row", "reason", "source": "server"/"closed-loop", "tied", "runner_up"}
    misses: list[str]  # when nothing qualifies for a depth: which constraint, by how much
    server: pd.DataFrame | None = None  # LoadGen Server peaks that meet the constraints, best first
    excluded: dict[int, str] = field(default_factory=dict)  # depth -> why low-precision cells were not picked


def _flag(values: pd.Series) -> pd.Series:
    return is_true(values) if len(values) else values.astype(bool)


def finalists(rows: pd.DataFrame, c: Constraints) -> set[tuple]:
    """The (machine, device, backend, precision) of every configuration with a cell that
    ``parity.accuracy.is_finalist`` admits under ``c``: the ones whose Server peaks are compared."""
    return {tuple(r[FINALIST]) for _, r in rows.iterrows()
            if is_finalist(r, c.max_accuracy_drop, c.max_rel_err, c.min_throughput)}


def _eligible(frame: pd.DataFrame, c: Constraints, parity: bool = True) -> pd.DataFrame:
    """Cells that ran, fit the filters and (``parity``) passed parity; ``parity=False``: the ones
    that ran and fit but failed it."""
    rows = frame[(frame.status == "ok") & (frame.parity_status == "pass") if parity else
                 (frame.status == "parity_failed")]
    if c.precisions:
        rows = rows[rows.precision.isin(c.precisions)]
    if c.devices:
        rows = rows[rows.device.isin(c.devices)]
    if c.depths:
        rows = rows[rows.depth.isin(c.depths)]
    if parity and c.min_top1_agreement is not None:  # int8 on the seeded model passes parity by its error alone
        rows = rows[rows.top1_agreement >= c.min_top1_agreement]
    return rows


def _parity_failures(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Timed cells kept out by parity, with why (and their accuracy's verdict when it failed too)."""
    rows = _eligible(frame[frame["mode"].isin(CLOSED_LOOP)], c, parity=False)
    rows = rows[pd.to_numeric(rows.get("images_per_s"), errors="coerce").notna()]  # timed ones only

    def why(row: pd.Series) -> str:
        agreement = row.get("top1_agreement")
        text = "its parity with fp32 PyTorch failed" + (
            f" (top-1 agreement {agreement:.1%})" if isinstance(agreement, float) and not math.isnan(agreement) else "")
        accuracy = accuracy_clause(row, c.max_accuracy_drop)
        return text + (f", and {accuracy}" if accuracy.startswith("its accuracy failed") or "drops" in accuracy else "")

    return rows.copy().assign(why=rows.apply(why, axis=1) if len(rows) else pd.Series(dtype=object))


def _split_accuracy(rows: pd.DataFrame, c: Constraints) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose accuracy allows a pick, the others with their reason in ``why``)."""
    if not len(rows):
        return rows, rows.assign(why=pd.Series(dtype=object))
    why = rows.apply(lambda r: accuracy_clause(r, c.max_accuracy_drop), axis=1)
    return rows[why == ""], rows[why != ""].assign(why=why[why != ""])


def candidates(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """Closed-loop cells that ran, passed parity, fit the filters and may be picked on accuracy."""
    rows = _eligible(frame[frame["mode"].isin(CLOSED_LOOP)], c)
    return with_bounds(_split_accuracy(rows, c)[0], c)


def _server_rows(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """LoadGen Server rows that ran, passed parity, fit the filters and may be picked on accuracy,
    held to a percentile at least the one asked at a bound within the budget (VALID or not)."""
    if "scenario" not in frame or c.max_latency_ms is None:
        return frame.iloc[0:0]
    rows = _split_accuracy(_eligible(frame[frame.scenario == "server"], c), c)[0]
    return rows[(pd.to_numeric(rows.loadgen_percentile, errors="coerce") >= c.latency_percentile)
                & (pd.to_numeric(rows.latency_bound_ms, errors="coerce") <= c.max_latency_ms)]


def server_candidates(frame: pd.DataFrame, c: Constraints) -> pd.DataFrame:
    """LoadGen Server peaks that fit the filters and the constraints, best (most QPS) first: VALID,
    held to a percentile at least the one asked, under a bound within the budget."""
    rows = _server_rows(frame, c)
    if not len(rows):
        return rows
    rows = rows[_flag(rows.loadgen_valid)]
    if c.min_throughput is not None:
        rows = rows[rows.target_qps >= c.min_throughput]
    if c.max_rel_err is not None:
        rows = rows[rows.rel_l2_err <= c.max_rel_err]
    return rows.sort_values(["depth", "target_qps"], ascending=[True, False])


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


def label(row: pd.Series) -> str:
    return (f"{row.backend} {row.precision} {row['mode']} batch {row.batch_size} on {row.device}"
            + (f" ({row.machine})" if "machine" in row and isinstance(row.machine, str) else ""))


def short_label(row) -> str:
    """A configuration without its device and machine (a row of a frame or a dict): a table's
    cell, or a sentence that has named them already."""
    return f"{row['backend']} {row['precision']} {row['mode']} b{row['batch_size']}"


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


def _excluded_sentence(depth: int, excluded: pd.DataFrame) -> str:
    """One sentence: which timed configurations accuracy kept out, and why."""
    groups = excluded.groupby(["backend", "precision"]).why.first()
    reasons = sorted(set(groups))
    names = ", ".join(f"{b} {p}" for b, p in groups.index)
    if len(reasons) == 1:
        return f"ResNet-{depth}: {names} timed but not picked: {reasons[0]}."
    return f"ResNet-{depth}: " + "; ".join(f"{b} {p} not picked: {w}" for (b, p), w in groups.items()) + "."


def _closed_margin(best: pd.Series, mine: pd.DataFrame, confirmed: dict | None) -> tuple[str, bool, str | None]:
    """The pick's margin over the runner-up (the best qualifying cell of another configuration),
    across processes when a confirmation names both, else from one process each."""
    others = mine[mine.cell_id != best.cell_id] if "cell_id" in mine else mine.iloc[1:]
    if not len(others):
        return "", False, None
    runner = others.iloc[0]
    if confirmed and confirmed.get("pick") == best.get("cell_id") and any(
            m["other"] == runner.get("cell_id") for m in confirmed.get("margins", [])):
        from resnet_bench.select.confirm import Confirmation, Margin, sentence

        record = {**confirmed, "margins": tuple(Margin(**m) for m in confirmed["margins"])}
        record.pop("verdict", None)
        confirmation = Confirmation(**record)
        names = {best.cell_id: short_label(best), runner.cell_id: short_label(runner)}  # named in full just before
        return f" Across processes: {sentence(confirmation, names)}.", confirmation.verdict == "tied", runner.cell_id
    low, high = best.get("images_per_s_low"), runner.get("images_per_s_high")
    ahead = best.images_per_s / runner.images_per_s - 1
    if isinstance(low, float) and isinstance(high, float) and not math.isnan(low) and low <= high:
        return (f" It is tied with {label(runner)} within their intervals in this run ({ahead:+.1%}; one process "
                "each, not re-measured across processes).", True, runner.get("cell_id"))
    return (f" Its margin over {label(runner)} is {ahead:+.1%} from one process each (not re-measured across "
            "processes: identical code moves several percent between processes).", False, runner.get("cell_id"))


def select(frame: pd.DataFrame, c: Constraints, confirmations: dict | None = None) -> Selection:
    """The pick per depth under ``c``. ``confirmations``: depth -> a ``select.confirm`` record."""
    confirmations = confirmations or {}
    eligible = with_bounds(_eligible(frame[frame["mode"].isin(CLOSED_LOOP)], c), c)
    rows, excluded = _split_accuracy(eligible, c)
    excluded = pd.concat([excluded, _parity_failures(frame, c)]) if len(excluded) else _parity_failures(frame, c)
    if "machine" not in rows:
        rows = rows.assign(machine=rows.get("fingerprint_id", "this machine"))
    qualifying_mask = rows.apply(lambda r: not any(violations(r, c).values()), axis=1) if len(rows) else []
    qualifying = rows[qualifying_mask] if len(rows) else rows
    qualifying = qualifying.sort_values(["depth", "images_per_s", c.latency_column],
                                        ascending=[True, False, True])
    fronts = [pareto_front(group, c.latency_column) for _, group in rows.groupby("depth")]
    pareto = pd.concat(fronts) if fronts else rows.iloc[0:0]
    picks, misses, why_not, kept = [], [], {}, []
    server = server_candidates(frame, c)
    depths = sorted(set(c.depths or frame.depth.unique()))
    for depth in depths:
        left_out = excluded[excluded.depth == depth]
        if len(left_out):
            why_not[depth] = _excluded_sentence(depth, left_out)
        mine = qualifying[qualifying.depth == depth]
        final = finalists(rows[rows.depth == depth], c)
        served = server[server.depth == depth] if len(server) else server
        if len(served):
            served = served[[tuple(r) in final for r in served[FINALIST].itertuples(index=False)]]
        with_peak = {tuple(r) for r in served[FINALIST].itertuples(index=False)} if len(served) else set()
        kept.append(served)  # the finalists' peaks only: what ``cheapest`` may name
        searched = _searched(frame, depth, c) & final
        if final and with_peak and searched == final:
            picks.append(_server_pick(depth, served, final, with_peak))
            continue
        unlike = ""
        if c.max_latency_ms is not None and final and searched == final:
            unlike = (f" Every finalist's LoadGen Server search ran ({len(final)}) and none found a VALID rate that "
                      "meets the constraints within the budget: under Poisson arrivals nothing qualifies, and the "
                      "closed-loop figures are the latency of one request at a time.")
        elif c.max_latency_ms is not None and searched:
            names = ", ".join(f"{b} {p}" for _, _, b, p in sorted(searched))
            unlike = (f" LoadGen Server searches under the budget ran for {len(searched)} of {len(final)} "
                      f"finalists ({names}): every finalist is compared by its closed-loop figures instead, "
                      "like with like.")
        if len(mine):
            best = mine.iloc[0]
            noisy = "" if best.valid in (True, "True") else f" (not a valid cell: {best.invalid_reasons})"
            limit = (f", within the p{c.latency_percentile} budget of {c.max_latency_ms:g} ms"
                     if c.max_latency_ms is not None else "")
            at = (f"p{c.latency_percentile} unbounded" if pd.isna(best[c.latency_column])
                  else f"p{c.latency_percentile} <= {best[c.latency_column]:.1f} ms (95% bound)")
            margin, tied, runner = _closed_margin(best, mine, confirmations.get(int(depth)))
            reason = (f"ResNet-{depth}: {label(best)} gives {best.images_per_s:.1f} images/s at "
                      f"{at}, the highest throughput of {len(mine)} qualifying configurations{limit}{noisy}.{margin}")
            if c.max_latency_ms is not None:
                ran = "scenario" in frame and ((frame.scenario == "server") & (frame.depth == depth)).any()
                reason += unlike or (" Closed-loop figures only: LoadGen Server results exist but none is VALID "
                                     "within the budget." if ran else " Closed-loop figures only (no LoadGen Server "
                                     "run): the latency of one request at a time, not under load.")
            picks.append({"depth": depth, "row": best, "reason": reason, "source": "closed-loop", "tied": tied,
                          "runner_up": runner})
            continue
        pool = rows[rows.depth == depth]
        if not len(pool):
            misses.append(f"ResNet-{depth}: no cell ran, passed parity, kept its accuracy and fits the filters "
                          f"({c.describe()}).")
            continue
        scored = sorted(((max(violations(r, c).values(), default=0.0), i) for i, r in pool.iterrows()))
        closest = [pool.loc[i] for _, i in scored[:3]]
        details = "; ".join(f"{label(r)}: {_miss_sentence(r, c, violations(r, c))}" for r in closest)
        misses.append(f"ResNet-{depth}: nothing meets {c.describe()}. Closest: {details}.")
    server = pd.concat(kept) if kept else server.iloc[0:0]
    return Selection(qualifying, pareto, picks, misses, server, why_not)


def _searched(frame: pd.DataFrame, depth: int, c: Constraints) -> set[tuple]:
    """Configurations whose LoadGen Server peak search (not a run at one fixed rate) ran for this
    budget (``_server_rows``), whatever peak it found."""
    rows = _server_rows(frame, c)
    rows = rows[(rows.depth == depth) & (pd.to_numeric(rows.get("server_search_steps"), errors="coerce") > 0)]
    return {tuple(r) for r in rows[FINALIST].itertuples(index=False)}


def _server_pick(depth: int, served: pd.DataFrame, final: set, with_peak: set) -> dict:
    """Every finalist's Server search ran: the largest VALID peak among the finalists, and its
    margin over the runner-up's (finalists whose search found no VALID rate are named)."""
    best = served.iloc[0]
    steps = int(best.server_search_steps) if pd.notna(best.get("server_search_steps")) else 0
    how = f"the peak of a {steps}-step search" if steps else "one run at that rate"
    others = served[(served.backend != best.backend) | (served.precision != best.precision)]
    tied, margin = False, ""
    if len(others):
        runner = others.iloc[0]
        ahead = best.target_qps / runner.target_qps - 1
        tied = ahead < SEARCH_RESOLUTION
        margin = (f" {runner.backend} {runner.precision} peaks at {runner.target_qps:.3g} QPS: "
                  + ("tied within the search's 10% resolution." if tied else
                     f"{1 - runner.target_qps / best.target_qps:.0%} fewer."))
    none = sorted(final - with_peak)
    if none:
        margin += (" Searched, no VALID peak that meets the constraints within the budget: "
                   + ", ".join(f"{b} {p}" for _, _, b, p in none) + ".")
    batching = f", {best.server_batching}" if isinstance(best.get("server_batching"), str) else ""
    reason = (f"ResNet-{depth}: {best.backend} {best.precision} on {best.device} serves {best.target_qps:.3g} QPS "
              f"at p{best.loadgen_percentile:g} <= {best.latency_bound_ms:g} ms under Poisson arrivals (LoadGen "
              f"Server, VALID, {how}{batching}; measured p99 {best.latency_ms_p99:.1f} ms), the largest Server peak "
              f"of the {len(final)} finalists, each searched.{margin}")
    return {"depth": depth, "row": best, "source": "server", "reason": reason, "tied": tied, "runner_up": None}


def cheapest(selection: Selection, frame: pd.DataFrame, c: Constraints) -> list[dict]:
    """Per depth, across machines: the configuration of least cost per million images that meets
    the constraints and the accuracy rule (a Server peak within the budget, or a qualifying
    closed-loop cell), with the runner-up's cost; [] when no row has a cost."""
    if "cost_per_million" not in frame:
        return []
    pool = [selection.qualifying]
    if selection.server is not None and len(selection.server):
        pool.append(selection.server)
    rows = pd.concat(pool, ignore_index=True) if pool else frame.iloc[0:0]
    rows = rows[pd.to_numeric(rows.get("cost_per_million"), errors="coerce").notna()] if len(rows) else rows
    found = []
    for depth, group in rows.groupby("depth"):
        ordered = group.sort_values("cost_per_million")
        best = ordered.iloc[0]
        runner = ordered.iloc[1] if len(ordered) > 1 else None
        rate = "Server peak" if best.get("scenario") == "server" else "closed loop"
        wanted = c.describe()
        meets = "the cheapest" if wanted == "none" else f"the cheapest that meets {wanted}"
        text = (f"ResNet-{depth}: {meets} is {label(best)} at "
                f"{best.cost_per_million:.3g} per million images ({rate}; {best.cost_basis})")
        if runner is not None:
            text += f"; next, {label(runner)} at {runner.cost_per_million:.3g}"
        found.append({"depth": depth, "row": best, "reason": text + "."})
    return found
