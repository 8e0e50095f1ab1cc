"""The report's sections, each a title, sentences, tables and plots: Table 1, speed against
FLOPs, batch scaling, the parity matrix, under load (LoadGen), deployment-target selection and
validity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from resnet_bench.measure import validity
from resnet_bench.model.flops import flops_rows
from resnet_bench.parity.accuracy import CLOSED_LOOP, accuracy_clause
from resnet_bench.report.load import closed_loop, loadgen_rows
from resnet_bench.report.plots import (
    MODE_STYLES,
    PRECISION_MARKERS,
    colour,
    interval_errors,
    legend,
    load_plot,
    panels,
    plot,
)
from resnet_bench.results.runs import is_true
from resnet_bench.select.rules import Constraints, Selection, cheapest, select, short_label, with_bounds


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # PNG file names in the output folder


def table1_section() -> Section:
    rows = pd.DataFrame(flops_rows())
    wide = rows.pivot_table(index=["depth", "params", "paper_gmacs"], columns="variant", values="gmacs")
    wide = wide.reset_index().rename(columns={"v1": "v1 GMACs (paper's block)", "v1.5": "v1.5 GMACs (torchvision)",
                                              "paper_gmacs": "paper FLOPs (x1e9 multiply-adds)"})
    return Section("1. Table 1, reproduced",
                   ["Multiply-adds of the convolutions and the fc layer per 224x224 image, counted from the "
                    "architecture (the paper's convention); v1 strides the first 1x1 conv of a bottleneck, "
                    "v1.5 the 3x3."], [("", wide)])


def flops_section(frame: pd.DataFrame, out: Path) -> Section:
    ok = frame[(frame.status.isin(["ok", "parity_failed"])) & (frame["mode"] == "latency")]
    section = Section("2. Speed against FLOPs")
    if ok.empty:
        section.text.append("No latency cells ran.")
        return section
    batch = 1 if (ok.batch_size == 1).any() else int(ok.batch_size.min())
    ok = ok[ok.batch_size == batch]
    rows = []
    # CUDA graphs change what a latency is made of: a graphed depth is never divided by an eager one.
    ok = ok.assign(cuda_graphs=ok["cuda_graphs"].fillna(False).astype(bool) if "cuda_graphs" in ok else False)
    for (machine, device, backend, precision, graphs), group in ok.groupby(
            ["machine", "device", "backend", "precision", "cuda_graphs"]):
        group = group.sort_values("depth")
        base = group.iloc[0]
        for _, row in group.iterrows():
            rows.append({"machine": machine, "device": device, "backend": backend, "precision": precision,
                         **({"cuda_graphs": graphs} if ok.cuda_graphs.any() else {}), "depth": row.depth,
                         "gmacs": row.gmacs, "p50 ms": row.latency_ms_p50,
                         "images/s": row.images_per_s,
                         f"latency / ResNet-{base.depth}": row.latency_ms_p50 / base.latency_ms_p50,
                         f"FLOPs / ResNet-{base.depth}": row.gmacs / base.gmacs,
                         "GFLOP/s": row.achieved_gflops, "of same-run peak": row.roofline_fraction})
    section.text.append(f"Single-stream latency at batch {batch}. If latency followed FLOPs, the two ratio "
                        "columns would be equal; where latency grows more slowly, the deeper nets use the "
                        "hardware better (larger per-layer work), where faster, they are memory- or "
                        "overhead-bound.")
    section.tables.append(("", pd.DataFrame(rows)))

    def draw(ax):
        for (machine, backend, precision), group in ok.groupby(["machine", "backend", "precision"]):
            group = group.sort_values("gmacs")
            ax.plot(group.gmacs, group.latency_ms_p50, marker="o", label=f"{backend} {precision} [{machine[:6]}]")
        ax.set_xlabel("GMACs per image (analytic)")
        ax.set_ylabel(f"p50 latency at batch {batch} (ms)")
        ax.set_title("Latency against multiply-adds")

    section.plots.append(plot(out, "latency_vs_gmacs.png", draw))
    return section


def batch_section(frame: pd.DataFrame, out: Path) -> Section:
    ok = closed_loop(frame[frame.status.isin(["ok", "parity_failed"])])
    section = Section("3. Batch scaling")
    if ok.empty:
        section.text.append("No cells ran.")
        return section
    columns = ["machine", "depth", "backend", "precision", "mode", "batch_size", "iterations", "latency_ms_p50",
               "latency_ms_p50_low", "latency_ms_p50_high", "median_precision", "latency_ms_p90_high",
               "latency_ms_p99_high", "images_per_s", "images_per_s_low", "images_per_s_high", "streams", "valid"]
    section.text.append("p50 with its 95% interval (`_low`, `_high`: order statistics, distribution-free) and "
                        "`median_precision`, how far the interval reaches from the median on its wider side; p90/p99 "
                        "as their 95% upper bounds, empty where the samples cannot bound them (column `unbounded` "
                        "says why). The plot's error bars are images/s's 95% intervals (batch means).")
    section.tables.append(("", ok.sort_values(columns[:6]).reindex(columns=columns)))

    def draw(ax, depth):
        for (_, backend, precision, mode), group in ok[ok.depth == depth].groupby(
                ["machine", "backend", "precision", "mode"]):
            group = group.sort_values("batch_size")
            ax.errorbar(group.batch_size, group.images_per_s, yerr=interval_errors(group, "images_per_s"),
                        color=colour(backend), linestyle=MODE_STYLES[mode], capsize=2, elinewidth=0.8,
                        marker=PRECISION_MARKERS.get(precision, "x"), markersize=4)
        ax.set_xscale("log", base=2)
        batches = sorted(set(ok[ok.depth == depth].batch_size))
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_ylim(bottom=0)

    key = legend(set(ok.backend), sorted(set(ok["mode"])), set(ok.precision))
    section.plots.append(panels(out, "batch_scaling.png", sorted(set(ok.depth)), draw,
                                 "Throughput against batch size", "batch size", "images/s", key))
    return section


def under_load_section(frame: pd.DataFrame, out: Path) -> Section:
    rows = loadgen_rows(frame[frame.status.isin(["ok", "parity_failed"])])
    rows = rows.assign(loadgen_valid=is_true(rows.loadgen_valid)) if len(rows) else rows
    section = Section("5. Under load (MLPerf LoadGen)")
    if rows.empty:
        section.text.append("No LoadGen rows (`resnet-bench loadgen`, or `make bench PROFILE=full` for Offline and "
                            "Server): every latency above is closed-loop, one request waiting for the last.")
        return section
    section.text.append(
        "Closed loop, the next request waits for the last, so a slow stretch also delays the requests that would "
        "have suffered from it (coordinated omission). LoadGen's Server sends Poisson arrivals at a target rate and "
        "counts each query's latency from its scheduled time. Per depth: the peak Server QPS LoadGen called VALID "
        "under the bound (on the held percentile), beside the closed-loop figure of the same instance in the same "
        "run, which delivers more images/s at a lower percentile.")
    server = rows[rows.scenario == "server"]
    if len(server):
        table = server.assign(
            held=server.loadgen_percentile.map(lambda q: f"p{q:g}"),
            poisson_vs_closed_p90=server.latency_ms_p90 / server.closed_loop_latency_ms_p90,
        ).rename(columns={"target_qps": "peak QPS (Poisson)", "latency_bound_ms": "bound ms",
                          "latency_ms_p90": "p90 at peak", "latency_ms_p99": "p99 at peak",
                          "closed_loop_images_per_s": "closed-loop images/s", "closed_loop_latency_ms_p90":
                          "closed-loop p90", "closed_loop_latency_ms_p99": "closed-loop p99",
                          "poisson_vs_closed_p90": "p90 Poisson / closed", "server_search_steps": "search steps"})
        columns = ["machine", "depth", "input_size", "backend", "precision", "device", "bound ms", "held",
                   "peak QPS (Poisson)", "p90 at peak", "p99 at peak", "closed-loop images/s", "closed-loop p90",
                   "closed-loop p99", "p90 Poisson / closed", "search steps", "loadgen_valid", "loadgen_rules"]
        section.tables.append(("Server peak at the bound, beside the closed loop",
                               table.sort_values(["depth", "peak QPS (Poisson)"], ascending=[True, False])
                               .reindex(columns=columns)))
        section.plots.append(load_plot(server, out))
    ratio = rows.qps / rows.closed_loop_images_per_s
    ratio = ratio.where(rows.scenario == "offline", rows.latency_ms_p90 / rows.closed_loop_latency_ms_p90)
    table = rows.assign(**{"LoadGen / closed loop": ratio.where(rows.scenario.isin(("offline", "singlestream"))),
                           "loadgen_invalid_reason": rows.loadgen_invalid_reason.astype(object).fillna("")})
    columns = ["machine", "depth", "input_size", "backend", "precision", "device", "scenario", "batch_size",
               "target_qps", "qps", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "early_stopping_ms",
               "closed_loop_images_per_s", "closed_loop_latency_ms_p90", "LoadGen / closed loop", "query_count",
               "duration_s", "loadgen_valid", "loadgen_invalid_reason"]
    section.text.append("The second table lists every LoadGen row; `LoadGen / closed loop` is Offline samples/s over "
                        "our throughput mode's images/s, and SingleStream p90 over our latency mode's p90 (same "
                        "instance, same run).")
    section.tables.append(("LoadGen scenarios", table.sort_values(["depth", "backend", "scenario"])
                           .reindex(columns=columns)))
    return section


def parity_section(frame: pd.DataFrame) -> Section:
    columns = ["machine", "depth", "backend", "precision", "device", "parity_status", "rel_l2_err",
               "top1_agreement", "compute_precision"]
    matrix = frame[columns].drop_duplicates(["machine", "depth", "backend", "precision", "device"])
    return Section("4. Parity matrix", ["Each backend x precision against PyTorch fp32 on the same 32 seeded "
                                        "images, before timing."], [("", matrix.sort_values(columns[:5]))])


def selection_section(frame: pd.DataFrame, constraints: Constraints, out: Path,
                      selection: Selection | None = None) -> Section:
    selection = selection or select(frame, constraints)
    section = Section("6. Deployment-target selection", [f"Constraints: {constraints.describe()}."])
    section.text += [pick["reason"] for pick in selection.picks] + selection.misses
    section.text += list(selection.excluded.values())
    latency = constraints.latency_column
    columns = ["machine", "depth", "device", "backend", "precision", "mode", "batch_size", latency,
               "images_per_s", "images_per_s_low", "images_per_s_high", "rel_l2_err", "accuracy_status", "valid"]
    frame = with_bounds(closed_loop(frame), constraints)
    if selection.server is not None and not selection.server.empty:
        section.tables.append(("LoadGen Server peaks within the budget, best first", selection.server.reindex(
            columns=["machine", "depth", "device", "backend", "precision", "target_qps", "latency_bound_ms",
                     "loadgen_percentile", "latency_ms_p90", "latency_ms_p99", "server_batching", "rel_l2_err",
                     "loadgen_rules"])))
    if not selection.qualifying.empty:
        section.tables.append(("Qualifying configurations, best first",
                               selection.qualifying.reindex(columns=columns).head(20)))
    if not selection.pareto.empty:
        section.tables.append(("Pareto front (latency against throughput) per depth",
                               selection.pareto.reindex(columns=columns)))
        everything = frame[frame.status == "ok"]
        picked = {pick["row"].get("cell_id") for pick in selection.picks if pick["source"] == "closed-loop"}

        def draw(ax):
            for depth, group in everything.groupby("depth"):
                ax.scatter(group[latency], group.images_per_s, s=14, alpha=0.4, label=f"ResNet-{depth} cells")
            for depth, group in selection.pareto.groupby("depth"):
                ax.errorbar(group[latency], group.images_per_s, yerr=interval_errors(group, "images_per_s"),
                            marker="o", capsize=2, label=f"ResNet-{depth} Pareto front")
                for _, row in group.iterrows():  # each point of the front says what it is
                    ax.annotate(f"{row.backend} {row.precision} {row['mode'][0]}{row.batch_size}",
                                (row[latency], row.images_per_s), fontsize=6, xytext=(3, 3),
                                textcoords="offset points")
            chosen = everything[everything.get("cell_id", pd.Series(dtype=object)).isin(picked)]
            if len(chosen):
                ax.scatter(chosen[latency], chosen.images_per_s, s=160, facecolors="none", edgecolors="red",
                           linewidths=1.5, label="the pick", zorder=5)
            if constraints.max_latency_ms:
                ax.axvline(constraints.max_latency_ms, color="red", linestyle=":", label="latency budget")
            ax.set_xlabel(f"p{constraints.latency_percentile} latency, 95% upper bound (ms)")
            ax.set_ylabel("images/s")
            ax.set_title("Latency against throughput")

        section.plots.append(plot(out, "pareto.png", draw))
    return section


def answer_section(selection: Selection, constraints: Constraints) -> Section:
    """What the reader came for, first: the pick per depth in one sentence, then one compact table
    with readable headers and units; the detail follows in the numbered sections."""
    section = Section("The answer", [f"Constraints: {constraints.describe()}."])
    rows = []
    for pick in selection.picks:
        section.text.append(pick["reason"])
        rows.append(_compact(pick["row"], constraints, "Server peak" if pick["source"] == "server" else
                             ("pick (tied)" if pick.get("tied") else "pick")))
        runner = pick.get("runner_up")
        if runner is not None and len(selection.qualifying):
            found = selection.qualifying[selection.qualifying.get("cell_id") == runner]
            if len(found):
                rows.append(_compact(found.iloc[0], constraints, "runner-up"))
    section.text += selection.misses + list(selection.excluded.values())
    if rows:
        section.tables.append(("", pd.DataFrame(rows)))
    return section


def _interval(value, low, high, digits: int = 3) -> str:
    if not isinstance(value, (int, float)) or pd.isna(value):
        return ""
    text = f"{value:.{digits}g}"
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not (pd.isna(low) or pd.isna(high)):
        text += f" ({low:.{digits}g}-{high:.{digits}g})"
    return text


def _compact(row: pd.Series, constraints: Constraints, role: str) -> dict:
    if row.get("scenario") == "server":
        return {"": role, "depth": row.depth, "configuration": f"{row.backend} {row.precision} Server",
                "p50 ms (95% interval)": "", f"p{constraints.latency_percentile} ms (upper bound)": "",
                "images/s (95% interval)": f"{row.target_qps:.3g} QPS at p{row.loadgen_percentile:g} <= "
                                           f"{row.latency_bound_ms:g} ms", "accuracy": row.get("accuracy_status", "")}
    q = constraints.latency_percentile
    return {"": role, "depth": row.depth,
            "configuration": short_label(row),
            "p50 ms (95% interval)": _interval(row.get("latency_ms_p50"), row.get("latency_ms_p50_low"),
                                               row.get("latency_ms_p50_high")),
            f"p{q} ms (upper bound)": _interval(row.get(f"latency_ms_p{q}_high"), None, None),
            "images/s (95% interval)": _interval(row.get("images_per_s"), row.get("images_per_s_low"),
                                                 row.get("images_per_s_high")),
            "accuracy": row.get("accuracy_status", "")}


def cost_section(frame: pd.DataFrame, constraints: Constraints, out: Path, selection: Selection) -> Section:
    """Across machines: the cheapest configuration per depth that meets the constraints and the
    accuracy rule, the costs of every machine kind's best, and the Pareto front of latency at the
    held percentile against cost per million images."""
    section = Section("Across machines: cost at the SLA")
    picks = cheapest(selection, frame, constraints)
    if not picks:
        cost = pd.to_numeric(frame.get("cost_per_million", pd.Series(index=frame.index, dtype=float)),
                             errors="coerce")
        unpriced = frame.get("cost_basis", pd.Series(index=frame.index, dtype=object))[cost.isna()]
        bases = sorted({b for b in unpriced.dropna() if isinstance(b, str)})
        if cost.notna().any():
            section.text.append("No row that meets the constraints has a cost.")
        else:
            section.text.append(f"No row has a cost: {' | '.join(bases)}." if bases else
                                "No row has a cost: run the fleet with --prices FILE.")
        return section
    section.text += [pick["reason"] for pick in picks]
    kinds = frame.get("machine_kind", pd.Series(index=frame.index, dtype=object))
    basis = frame.get("cost_basis", pd.Series(index=frame.index, dtype=object)).astype(str)
    unpriced = sorted(set(kinds[basis.str.startswith("no price for machine kind")].dropna()))  # not: no rate
    if unpriced:
        section.text.append(f"No price for {', '.join(unpriced)}: left out of the cost ranking "
                            "(add the kind to the price file).")
    section.text.append("Cost per million images = price per hour / 3600 / images per second x 1e6, at the LoadGen "
                        "Server peak under the latency bound where a row has one, else at the closed loop's rate (the "
                        "basis column says which). Prices change: each carries its basis, date and source.")
    latency = constraints.latency_column
    costed = with_bounds(frame[pd.to_numeric(frame.get("cost_per_million"), errors="coerce").notna()
                               & (frame.status == "ok")], constraints)
    columns = ["machine_kind", "depth", "backend", "precision", "mode", "batch_size", latency, "images_per_s",
               "target_qps", "cost_per_million", "energy_per_image_j", "accuracy_status", "cost_basis"]
    best = costed.sort_values("cost_per_million").groupby(["machine_kind", "depth"], as_index=False).head(3)
    section.tables.append(("The three cheapest rows per machine kind and depth",
                           best.sort_values(["depth", "cost_per_million"]).reindex(columns=columns)))
    closed = costed[costed["mode"].isin(CLOSED_LOOP)]

    def draw(ax):
        for (kind, depth), group in closed.groupby(["machine_kind", "depth"]):
            ax.scatter(group[latency], group.cost_per_million, s=16, alpha=0.6, label=f"{kind} ResNet-{depth}")
        for depth, group in closed.groupby("depth"):
            front = group[group[latency].notna()].sort_values([latency, "cost_per_million"])
            keep, least = [], float("inf")
            for index, row in front.iterrows():
                if row.cost_per_million < least:
                    keep.append(index)
                    least = row.cost_per_million
            ax.plot(front.loc[keep, latency], front.loc[keep, "cost_per_million"], marker="o",
                    label=f"ResNet-{depth} front")
        if constraints.max_latency_ms:
            ax.axvline(constraints.max_latency_ms, color="red", linestyle=":", label="latency budget")
        ax.set_xlabel(f"p{constraints.latency_percentile} latency, 95% upper bound (ms)")
        ax.set_ylabel("cost per million images")
        ax.set_title("Latency against cost, across machines")

    if len(closed):
        section.plots.append(plot(out, "cost.png", draw))
    return section


LOW_PRECISIONS = ("tf32", "fp16", "bf16", "int8")


def low_precision_section(frame: pd.DataFrame, c: Constraints | None = None) -> Section:
    """Per runtime and depth: each lower precision against fp32 of the same runtime, at the mode and
    batch where fp32 does the most images/s (or, where the lower precision did not run there, its
    own best cell against fp32's): the speed-up with its interval (from the two cells' images/s
    intervals: the ratio of a low end over a high end and back, a conservative interval), the
    accuracy cost with its interval, and the verdict. Cells that failed parity are rows too."""
    section = Section("7. What low precision buys")
    timed = closed_loop(frame[frame.status.isin(("ok", "parity_failed"))])
    timed = timed[pd.to_numeric(timed.get("images_per_s"), errors="coerce").notna()]
    rows = []
    for (machine, device, backend, depth), group in timed.groupby(["machine", "device", "backend", "depth"]):
        fp32 = group[(group.precision == "fp32") & (group.parity_status == "pass")]
        if fp32.empty:
            continue
        base = fp32.sort_values("images_per_s", ascending=False).iloc[0]
        for precision in LOW_PRECISIONS:
            mine = group[group.precision == precision].sort_values("images_per_s", ascending=False)
            if (mine.parity_status == "pass").any():  # a cell that passed parity speaks for the precision
                mine = mine[mine.parity_status == "pass"]
            if mine.empty:
                continue
            same = mine[(mine["mode"] == base["mode"]) & (mine.batch_size == base.batch_size)]
            cell = (same if len(same) else mine).iloc[0]
            at = f"{base['mode']} b{base.batch_size}" + (
                "" if len(same) else f" (fp32) / {cell['mode']} b{cell.batch_size} ({precision})")
            rows.append({"machine": machine, "device": device, "runtime": backend, "depth": depth,
                         "precision": precision, "at": at, **_buys(base, cell, c or Constraints())})
    if not rows:
        section.text.append("No lower-precision cell ran beside an fp32 cell of the same runtime.")
        return section
    section.text.append("Each lower precision against fp32 of the same runtime and depth, at the mode and batch of "
                        "fp32's most images/s. Speed-up interval: conservative, from the two cells' 95% intervals. "
                        "Top-1 drop: relative to fp32's accuracy on the labelled images, paired 95% interval; "
                        "'not established' on the seeded model, where such a cell is never picked.")
    section.tables.append(("", pd.DataFrame(rows)))
    return section


def _buys(base: pd.Series, cell: pd.Series, c: Constraints) -> dict:
    """One row of what a lower precision buys: the figures and the verdict, against fp32's cell;
    the accuracy verdict is the selection's own (``accuracy_clause`` under the report's budget)."""
    speedup = cell.images_per_s / base.images_per_s
    low = _ratio(cell.get("images_per_s_low"), base.get("images_per_s_high"))
    high = _ratio(cell.get("images_per_s_high"), base.get("images_per_s_low"))
    status = cell.get("accuracy_status") if isinstance(cell.get("accuracy_status"), str) else ""
    drop = cell.get("accuracy_drop")
    dropped = isinstance(drop, float) and not pd.isna(drop)  # judged on labelled images
    cost = (_interval(100 * drop, 100 * cell.get("accuracy_drop_low"), 100 * cell.get("accuracy_drop_high"), 2)
            + " %" if dropped else status or "not judged")
    if pd.isna(low) or pd.isna(high):
        speed = "speed-up without an interval (rows without images/s intervals)"
    elif low > 1:
        speed = "faster"
    elif high < 1:
        speed = "slower"
    else:
        speed = "not faster beyond the intervals"
    why_not = accuracy_clause(cell, c.max_accuracy_drop)
    if cell.get("parity_status") != "pass":
        verdict = "parity with fp32 failed: never picked"
    elif why_not:
        verdict = f"{speed}; {why_not.removeprefix('its ')}: never picked"
    else:
        kept = "accuracy kept" if status == "pass" or dropped else "parity holds (no accuracy judgement needed)"
        verdict = f"{speed}, {kept}"
    return {"fp32 images/s": f"{base.images_per_s:.3g}", "images/s": f"{cell.images_per_s:.3g}",
            "speed-up (interval)": _interval(speedup, low, high), "top-1 drop (interval)": cost, "verdict": verdict}


def _ratio(a, b) -> float:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not (pd.isna(a) or pd.isna(b)) and b > 0:
        return float(a / b)
    return float("nan")


def reason_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many cells each kind of validity reason marks invalid (by code, ``measure.validity``)."""
    counts: dict[str, int] = {}
    for reasons in frame.get("invalid_reasons", pd.Series(dtype=object)).dropna():
        for code in validity.codes(reasons):
            kind = validity.describe(code)
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def validity_section(frame: pd.DataFrame, fingerprints: dict[str, dict]) -> Section:
    bad = frame[(frame.status != "ok") | (frame.valid.astype(str) != "True")]
    columns = ["machine", "depth", "backend", "precision", "device", "mode", "batch_size", "status",
               "iterations", "median_precision", "drift", "cv", "invalid_reasons", "error"]
    keys = ["fingerprint_id", "cpu_model", "cpus_available", "cpu_quota", "gpu_name", "gpu_compute_capability",
            "gpu_driver", "cuda", "torch", "onnxruntime", "openvino", "tensorrt", "python", "git_commit",
            "git_dirty"]
    prints = pd.DataFrame({machine: {k: fp.get(k) for k in keys} for machine, fp in fingerprints.items()})
    ran = frame[frame.status.isin(["ok", "parity_failed"])]
    text = [f"{len(bad)} of {len(frame)} cells are failed, unavailable or invalid; none is dropped.",
            "A cell is valid when its median is known within the target precision (the relative half-width "
            "of its 95% interval), the medians of its first and last third of samples differ by at most 3x "
            "that target (no drift), it reached the rule's minimum iterations and it passed parity. CV is shown, "
            "not judged: it describes the machine, not the estimate."]
    counts = reason_counts(ran[ran.valid.astype(str) != "True"])
    if counts:
        text.append("Invalid cells that ran, by reason (a cell may have several): "
                    + "; ".join(f"{kind}: {count}" for kind, count in counts.items()) + ".")
    return Section("8. Validity", text, [("Cells that are not ok and valid", bad.reindex(columns=columns)),
                                         ("Fingerprints of the runs", prints.reset_index(names="key"))])
