"""Turn result runs into report.md, a self-contained report.html and PNG plots.

Runs from several machines merge: every row keeps its run's fingerprint as ``machine``.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from resnet_bench.flops import flops_rows
from resnet_bench.results import load
from resnet_bench.selection import Constraints, is_true, select, with_bounds


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # PNG file names in the output folder


def load_runs(run_dirs: list[str | Path]) -> tuple[pd.DataFrame, dict[str, dict]]:
    """All rows, with a ``machine`` column naming each run's fingerprint; fingerprints by id."""
    frames, fingerprints = [], {}
    for run_dir in map(Path, run_dirs):
        frame = load(run_dir)
        try:
            fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{run_dir} has no readable fingerprint.json") from exc
        what = fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or "?"
        machine = f"{fingerprint['fingerprint_id'][:6]} {what} x{fingerprint.get('cpus_available')}"
        fingerprints[machine] = fingerprint
        frames.append(frame.assign(machine=machine, run_dir=str(run_dir)))
    return pd.concat(frames, ignore_index=True), fingerprints


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(out: Path, name: str, draw) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    draw(axes)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / name)
    plt.close(figure)
    return name


# One colour per backend, one line style per mode, one marker per precision, in every small-multiples plot.
BACKEND_COLOURS = {"torch": "#1f77b4", "torch-compile": "#17becf", "onnxruntime": "#ff7f0e", "openvino": "#2ca02c",
                   "tensorrt": "#d62728"}
MODE_STYLES = {"latency": "-", "throughput": "--", "Poisson arrivals (LoadGen Server)": "-",
               "closed loop (same instance)": ":"}
PRECISION_MARKERS = {"fp32": "o", "tf32": "D", "fp16": "s", "bf16": "^", "int8": "v"}


def _colour(backend: str) -> str:
    return BACKEND_COLOURS.get(backend, "#7f7f7f")


def _key(backends, modes, precisions) -> list:
    """The legend: what each colour, line style and marker means (drawn outside the panels)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_colour(b), linewidth=2.5, label=b) for b in sorted(backends)]
    handles += [Line2D([], [], color="black", linestyle=MODE_STYLES.get(m, "-"), label=m) for m in modes]
    handles += [Line2D([], [], color="grey", linestyle="none", marker=PRECISION_MARKERS.get(p, "x"), label=p)
                for p in sorted(precisions)]
    return handles


def _panels(out: Path, name: str, depths: list[int], draw, title: str, xlabel: str, ylabel: str, key: list) -> str:
    """Small multiples: a panel per depth (at most 3 a row), one legend to the right of them all."""
    plt = _pyplot()
    columns = min(len(depths), 3)
    rows = -(-len(depths) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 3.2 * rows), dpi=110, squeeze=False)
    for ax, depth in zip(axes.flat, depths, strict=False):
        draw(ax, depth)
        ax.set_title(f"ResNet-{depth}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(depths):]:
        ax.set_visible(False)
    figure.suptitle(title, fontsize=11)
    figure.supxlabel(xlabel, fontsize=9)
    figure.supylabel(ylabel, fontsize=9)
    figure.tight_layout()
    figure.legend(handles=key, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    figure.savefig(out / name, bbox_inches="tight")
    plt.close(figure)
    return name


def closed_loop(frame: pd.DataFrame) -> pd.DataFrame:
    """The sweep's rows (latency and throughput modes), without LoadGen's."""
    return frame[frame["mode"].isin(("latency", "throughput"))]


def loadgen_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if "scenario" not in frame:
        return frame.iloc[0:0]
    return frame[frame.scenario.isin(("singlestream", "multistream", "offline", "server"))]


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

    section.plots.append(_plot(out, "latency_vs_gmacs.png", draw))
    return section


def batch_section(frame: pd.DataFrame, out: Path) -> Section:
    ok = closed_loop(frame[frame.status.isin(["ok", "parity_failed"])])
    section = Section("3. Batch scaling")
    if ok.empty:
        section.text.append("No cells ran.")
        return section
    columns = ["machine", "depth", "backend", "precision", "mode", "batch_size", "iterations", "latency_ms_p50",
               "latency_ms_p50_low", "latency_ms_p50_high", "median_precision", "latency_ms_p90_high",
               "latency_ms_p99_high", "images_per_s", "streams", "valid"]
    section.text.append("p50 with its 95% interval (`_low`, `_high`: order statistics, distribution-free) and "
                        "`median_precision`, the interval's relative half-width; p90/p99 as their 95% upper "
                        "bounds, empty where the samples cannot bound them (column `unbounded` says why).")
    section.tables.append(("", ok.sort_values(columns[:6]).reindex(columns=columns)))

    def draw(ax, depth):
        for (_, backend, precision, mode), group in ok[ok.depth == depth].groupby(
                ["machine", "backend", "precision", "mode"]):
            group = group.sort_values("batch_size")
            ax.plot(group.batch_size, group.images_per_s, color=_colour(backend), linestyle=MODE_STYLES[mode],
                    marker=PRECISION_MARKERS.get(precision, "x"), markersize=4)
        ax.set_xscale("log", base=2)
        batches = sorted(set(ok[ok.depth == depth].batch_size))
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_ylim(bottom=0)

    key = _key(set(ok.backend), sorted(set(ok["mode"])), set(ok.precision))
    section.plots.append(_panels(out, "batch_scaling.png", sorted(set(ok.depth)), draw,
                                 "Throughput against batch size", "batch size", "images/s", key))
    return section


def _search(row: pd.Series) -> dict | None:
    """The peak search behind a Server row (search.json beside its step's logs), if any."""
    if not isinstance(row.get("loadgen_log_dir"), str):
        return None
    path = Path(row.run_dir) / row.loadgen_log_dir
    for folder in (path.parent, path):
        if (folder / "search.json").is_file():
            return json.loads((folder / "search.json").read_text())
    return None


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
        section.plots.append(_load_plot(server, out))
    ratio = rows.qps / rows.closed_loop_images_per_s
    ratio = ratio.where(rows.scenario == "offline", rows.latency_ms_p90 / rows.closed_loop_latency_ms_p90)
    table = rows.assign(**{"LoadGen / closed loop": ratio.where(rows.scenario.isin(("offline", "singlestream"))),
                           "loadgen_invalid_reason": rows.loadgen_invalid_reason.fillna("")})
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


def _load_plot(server: pd.DataFrame, out: Path) -> str:
    """Latency at the held percentile against offered load: each search's steps (Poisson), and
    the closed-loop figure of the same instance as a point."""
    def draw(ax, depth):
        for _, row in server[server.depth == depth].iterrows():
            held = f"latency_ms_p{row.loadgen_percentile:g}"
            colour, marker = _colour(row.backend), PRECISION_MARKERS.get(row.precision, "x")
            search = _search(row)
            steps = sorted(search["steps"], key=lambda s: s["target_qps"]) if search else []
            if steps:
                ax.plot([s["target_qps"] for s in steps], [s.get(held) for s in steps], color=colour,
                        linestyle=MODE_STYLES["Poisson arrivals (LoadGen Server)"])
                for step in steps:  # VALID steps filled, INVALID ones crossed
                    ax.plot([step["target_qps"]], [step.get(held)], color=colour, markersize=5,
                            marker=marker if step["valid"] else "x")
            else:
                ax.plot([row.target_qps], [row[held]], color=colour, marker=marker)
            closed = row.get(f"closed_loop_{held}")
            if pd.notna(closed):
                ax.plot([0, row.closed_loop_images_per_s], [closed, closed], color=colour,
                        linestyle=MODE_STYLES["closed loop (same instance)"])
                ax.plot([row.closed_loop_images_per_s], [closed], color=colour, marker=marker, fillstyle="none")
            ax.axhline(row.latency_bound_ms, color="grey", linewidth=0.8, linestyle="-.")
        ax.set_yscale("log")
        ax.set_xlim(left=0)

    modes = ["Poisson arrivals (LoadGen Server)", "closed loop (same instance)"]
    key = _key(set(server.backend), modes, set(server.precision))
    from matplotlib.lines import Line2D

    key += [Line2D([], [], color="grey", linestyle="none", marker="x", label="INVALID step"),
            Line2D([], [], color="grey", linestyle="none", marker="o", fillstyle="none", label="closed loop"),
            Line2D([], [], color="grey", linewidth=0.8, linestyle="-.", label="latency bound")]
    return _panels(out, "under_load.png", sorted(set(server.depth)), draw,
                   "Latency at the held percentile against throughput", "target QPS (Poisson) / images/s (closed loop)",
                   "latency at the held percentile (ms, log)", key)


def parity_section(frame: pd.DataFrame) -> Section:
    columns = ["machine", "depth", "backend", "precision", "device", "parity_status", "rel_l2_err",
               "top1_agreement", "compute_precision"]
    matrix = frame[columns].drop_duplicates(["machine", "depth", "backend", "precision", "device"])
    return Section("4. Parity matrix", ["Each backend x precision against PyTorch fp32 on the same 32 seeded "
                                        "images, before timing."], [("", matrix.sort_values(columns[:5]))])


def selection_section(frame: pd.DataFrame, constraints: Constraints, out: Path) -> Section:
    selection = select(frame, constraints)
    section = Section("6. Deployment-target selection", [f"Constraints: {constraints.describe()}."])
    section.text += [pick["reason"] for pick in selection.picks] + selection.misses
    latency = constraints.latency_column
    columns = ["machine", "depth", "device", "backend", "precision", "mode", "batch_size", latency,
               "images_per_s", "rel_l2_err", "valid"]
    frame = with_bounds(closed_loop(frame), constraints)
    if selection.server is not None and not selection.server.empty:
        section.tables.append(("LoadGen Server peaks within the budget, best first", selection.server.reindex(
            columns=["machine", "depth", "device", "backend", "precision", "target_qps", "latency_bound_ms",
                     "loadgen_percentile", "latency_ms_p90", "latency_ms_p99", "rel_l2_err", "loadgen_rules"])))
    if not selection.qualifying.empty:
        section.tables.append(("Qualifying configurations, best first", selection.qualifying[columns].head(20)))
    if not selection.pareto.empty:
        section.tables.append(("Pareto front (latency against throughput) per depth", selection.pareto[columns]))
        everything = frame[frame.status == "ok"]

        def draw(ax):
            for depth, group in everything.groupby("depth"):
                ax.scatter(group[latency], group.images_per_s, s=14, alpha=0.5, label=f"ResNet-{depth} cells")
            for depth, group in selection.pareto.groupby("depth"):
                ax.plot(group[latency], group.images_per_s, marker="o", label=f"ResNet-{depth} Pareto front")
            if constraints.max_latency_ms:
                ax.axvline(constraints.max_latency_ms, color="red", linestyle=":", label="latency budget")
            ax.set_xlabel(f"p{constraints.latency_percentile} latency, 95% upper bound (ms)")
            ax.set_ylabel("images/s")
            ax.set_title("Latency against throughput")

        section.plots.append(_plot(out, "pareto.png", draw))
    return section


# Validity reasons by kind (the start of each reason the timing and the harness write).
REASON_KINDS = {
    "median known within": "median not known within the target precision",
    "median has no": "too few samples for a median interval",
    "drift": "drift between the first and last third",
    "too few iterations": "fewer iterations than the rule's minimum (max time reached)",
    "parity failed": "parity failed",
    "cv ": "CV above 5% (the rule of results schema 1)",
}


def reason_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many cells each kind of validity reason marks invalid."""
    counts: dict[str, int] = {}
    for reasons in frame.get("invalid_reasons", pd.Series(dtype=object)).dropna():
        kinds = {next((kind for start, kind in REASON_KINDS.items() if part.startswith(start)), part)
                 for part in str(reasons).split("; ") if part}
        for kind in kinds:
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
    return Section("7. Validity", text, [("Cells that are not ok and valid", bad.reindex(columns=columns)),
                                         ("Fingerprints of the runs", prints.reset_index(names="key"))])


def _markdown(sections: list[Section], title: str) -> str:
    parts = [f"# {title}\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        parts += [f"{line}\n" for line in section.text]
        for caption, table in section.tables:
            if caption:
                parts.append(f"**{caption}**\n")
            parts.append(_fmt(table).to_markdown(index=False) + "\n")
        parts += [f"![{name}]({name})\n" for name in section.plots]
    return "\n".join(parts)


def _html(sections: list[Section], title: str, out: Path) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in section.text]
        for caption, table in section.tables:
            if caption:
                body.append(f"<h3>{html.escape(caption)}</h3>")
            body.append(_fmt(table).to_html(index=False, border=0, classes="t"))
        for name in section.plots:
            data = base64.b64encode((out / name).read_bytes()).decode()
            body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table.t{border-collapse:collapse;"
             "font-size:12px;margin:1em 0}.t td,.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def build_report(run_dirs: list[str | Path], out: str | Path, constraints: Constraints | None = None) -> Path:
    constraints = constraints or Constraints()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame, fingerprints = load_runs(run_dirs)
    sections = [table1_section(), flops_section(frame, out), batch_section(frame, out), parity_section(frame),
                under_load_section(frame, out), selection_section(frame, constraints, out),
                validity_section(frame, fingerprints)]
    title = f"resnet-bench report: {len(run_dirs)} run(s), {len(fingerprints)} machine(s)"
    (out / "report.md").write_text(_markdown(sections, title))
    (out / "report.html").write_text(_html(sections, title, out))
    return out / "report.md"
