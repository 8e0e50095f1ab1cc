"""The report's plots: one colour per backend, one line style per mode, one marker per precision,
small multiples per depth with one legend beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_bench.report.load import peak_search_of


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(out: Path, name: str, draw) -> str:
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


def interval_errors(rows: pd.DataFrame, column: str):
    """Matplotlib's yerr from a column's ``_low`` / ``_high`` interval (None where there is none)."""
    low, high = rows.get(f"{column}_low"), rows.get(f"{column}_high")
    if low is None or high is None:
        return None
    import numpy as np

    value = rows[column].to_numpy(float)
    below = np.nan_to_num(value - low.to_numpy(float), nan=0.0).clip(min=0)
    above = np.nan_to_num(high.to_numpy(float) - value, nan=0.0, posinf=0.0).clip(min=0)
    return np.vstack([below, above])


def colour(backend: str) -> str:
    return BACKEND_COLOURS.get(backend, "#7f7f7f")


def legend(backends, modes, precisions) -> list:
    """The legend: what each colour, line style and marker means (drawn outside the panels)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour(b), linewidth=2.5, label=b) for b in sorted(backends)]
    handles += [Line2D([], [], color="black", linestyle=MODE_STYLES.get(m, "-"), label=m) for m in modes]
    handles += [Line2D([], [], color="grey", linestyle="none", marker=PRECISION_MARKERS.get(p, "x"), label=p)
                for p in sorted(precisions)]
    return handles


def panels(out: Path, name: str, depths: list[int], draw, title: str, xlabel: str, ylabel: str, key: list) -> str:
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


def load_plot(server: pd.DataFrame, out: Path) -> str:
    """Latency at the held percentile against offered load: each search's steps (Poisson), and
    the closed-loop figure of the same instance as a point."""
    def draw(ax, depth):
        for _, row in server[server.depth == depth].iterrows():
            held = f"latency_ms_p{row.loadgen_percentile:g}"
            tint, marker = colour(row.backend), PRECISION_MARKERS.get(row.precision, "x")
            search = peak_search_of(row)
            steps = sorted(search["steps"], key=lambda s: s["target_qps"]) if search else []
            if steps:
                ax.plot([s["target_qps"] for s in steps], [s.get(held) for s in steps], color=tint,
                        linestyle=MODE_STYLES["Poisson arrivals (LoadGen Server)"])
                for step in steps:  # VALID steps filled, INVALID ones crossed
                    ax.plot([step["target_qps"]], [step.get(held)], color=tint, markersize=5,
                            marker=marker if step["valid"] else "x")
            else:
                ax.plot([row.target_qps], [row[held]], color=tint, marker=marker)
            closed = row.get(f"closed_loop_{held}")
            if pd.notna(closed):
                ax.plot([0, row.closed_loop_images_per_s], [closed, closed], color=tint,
                        linestyle=MODE_STYLES["closed loop (same instance)"])
                ax.plot([row.closed_loop_images_per_s], [closed], color=tint, marker=marker, fillstyle="none")
            ax.axhline(row.latency_bound_ms, color="grey", linewidth=0.8, linestyle="-.")
        ax.set_yscale("log")
        ax.set_xlim(left=0)

    modes = ["Poisson arrivals (LoadGen Server)", "closed loop (same instance)"]
    key = legend(set(server.backend), modes, set(server.precision))
    from matplotlib.lines import Line2D

    key += [Line2D([], [], color="grey", linestyle="none", marker="x", label="INVALID step"),
            Line2D([], [], color="grey", linestyle="none", marker="o", fillstyle="none", label="closed loop"),
            Line2D([], [], color="grey", linewidth=0.8, linestyle="-.", label="latency bound")]
    return panels(out, "under_load.png", sorted(set(server.depth)), draw,
                   "Latency at the held percentile against throughput", "target QPS (Poisson) / images/s (closed loop)",
                   "latency at the held percentile (ms, log)", key)
