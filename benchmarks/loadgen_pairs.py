"""LoadGen against our closed loop, back to back on one instance: where does a difference come from?

For each depth x backend (CPU, fp32, 224 px): a latency-mode instance runs ``--reps`` times, in
this order,

* ``latency``: our latency mode (the backend's ``run`` on an input prepared once);
* ``direct``: the same closed loop over what LoadGen's SingleStream calls per query (prepare
  the image, run, sync, fetch the logits: ``scenarios.loadgen.direct_runner``), no LoadGen;
* ``singlestream``: LoadGen's SingleStream (performance run only, quick rules);
* ``after``: our latency mode again, so SingleStream is bracketed (its p90 is divided by the
  mean of the two windows around it; ``direct`` sits between the first and SingleStream, so
  three quarters of a steady drift cancel) and ``after / latency`` is the A/A ratio: how far two
  windows of the *same* loop differ, two windows apart;

then a throughput-mode instance ``--reps`` times: our throughput mode, then LoadGen's Offline at
``--offline-batch``.

Adjacent measurements share the machine's mood, so each LoadGen figure is divided by the
closed-loop figures measured just before it, and the spread over the repetitions says how far
a single pair can be trusted. Writes ``--out`` (markdown).

    python benchmarks/loadgen_pairs.py [--depths 18,50] [--backends onnxruntime,openvino] [--reps 3]
        [--offline-batch 1] [--seconds S] [--artifacts artifacts] [--out results/loadgen-pairs.md]

``--seconds S`` makes every closed-loop window last S seconds and every LoadGen run at least S (default:
the reference rule's 2-8 s and LoadGen's quick 5 s): a p90 from a longer window moves less.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench import scenarios
from resnet_bench.backends import BackendOptions
from resnet_bench.backends.open import open_backend
from resnet_bench.machine import fingerprint
from resnet_bench.measure.timing import RULES, StopRule, measure, order_ranks
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.scenarios.loadgen.cell import OFFLINE_MARGIN
from resnet_bench.scenarios.loadgen.settings import QUICK, Duration, Load, loadgen_version
from resnet_bench.scenarios.loadgen.sut import SystemUnderTest as SUT
from resnet_bench.scenarios.loadgen.sut import direct_runner, lane_runners, run_loadgen


def p90(measured) -> float:
    return float(measured.stats["latency_ms_p90"])


def windows(seconds: float | None) -> tuple[StopRule, Duration]:
    """The closed loop's stop rule and LoadGen's duration: the defaults, or S seconds each."""
    if seconds is None:
        return RULES["loadgen_reference"], QUICK
    rule = StopRule(warmup_iters=10, warmup_s=0.5, min_iters=36, min_s=seconds, max_s=seconds)
    return rule, Duration("quick", min_duration_s=seconds)


def latency_pairs(backend, images: np.ndarray, reps: int, logs: Path, seconds: float | None = None) -> list[dict]:
    prepared = backend.prepare(images[:1])
    run = direct_runner(backend)
    rule, length = windows(seconds)
    rows = []
    for rep in range(reps):
        ours = scenarios.run("latency", backend, prepared, 1, rule)
        direct = measure(lambda: run(images[:1]), rule)
        expected = ours.stats["latency_ms_mean"] / 1e3
        lg = run_loadgen(SUT(images, inline=run), Load("singlestream", expected_s=expected), length,
                         logs / f"singlestream-{rep}").result
        after = scenarios.run("latency", backend, prepared, 1, rule)
        rows.append({"rep": rep + 1, "latency_p90": p90(ours), "after_p90": p90(after),
                     "direct_p90": float(np.percentile(direct.samples_ms, 90)),
                     "singlestream_p90": lg.latency_ms["p90"], "valid": lg.valid,
                     "latency_p50": float(ours.stats["latency_ms_p50"]),
                     "singlestream_p50": lg.latency_ms["p50"]})
    return rows


def bracket(row: dict) -> float:
    return row["singlestream_p90"] / ((row["latency_p90"] + row["after_p90"]) / 2)


def offline_pairs(backend, images: np.ndarray, batch: int, reps: int, logs: Path) -> list[dict]:
    shape = tuple(images.shape[1:])
    rows = []
    for rep in range(reps):
        ours = scenarios.run("throughput", backend, backend.prepare(images[:batch]), batch, RULES["loadgen_reference"])
        lanes = lane_runners(backend, backend.in_flight(), batch, shape)
        lg = run_loadgen(SUT(backend.stage(images), lanes=lanes, batch=batch),
                         Load("offline", target_qps=OFFLINE_MARGIN * ours.images_per_s), QUICK,
                         logs / f"offline-{rep}").result
        rows.append({"rep": rep + 1, "throughput_ips": ours.images_per_s, "offline_ips": lg.samples_per_s,
                     "valid": lg.valid})
    return rows


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def median_interval(values: list[float], confidence: float = 0.95) -> str:
    """The median with its distribution-free interval (order statistics, as timing's percentile
    intervals): no assumption on how a shared machine's slow stretches are distributed. The
    coverage printed is the ranks' own (97.9% for 10 values at a 95% request)."""
    from scipy.stats import binom

    x, n = sorted(values), len(values)
    low, high = order_ranks(n, 0.5, confidence)
    if low is None or high is None:
        return f"{statistics.median(x):.3f} (too few repetitions for a {confidence:.0%} interval)"
    cover = 1 - 2 * binom.cdf(low - 1, n, 0.5)  # ranks symmetric about the median: high = n + 1 - low
    return f"{statistics.median(x):.3f} ({cover:.0%} CI {x[low - 1]:.3f}-{x[high - 1]:.3f})"


def log_sd(values: list[float]) -> float:
    return float(np.std(np.log(values), ddof=1)) if len(values) > 1 else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="18,50")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--offline-batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per instance (default: every CPU); fewer leaves a core to LoadGen's threads")
    parser.add_argument("--no-offline", action="store_true", help="SingleStream pairs only")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of every window (default: 2-8 s, LoadGen 5 s)")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="results/loadgen-pairs.md")
    args = parser.parse_args()
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds:g}")
    started = time.perf_counter()
    prints = fingerprint.collect()
    images = synthetic_images(64, 224, seed=5).numpy()
    logs = Path(tempfile.mkdtemp(prefix="loadgen-pairs-"))
    lines = ["| depth | backend | rep | latency p90 ms | direct p90 ms | SingleStream p90 ms | latency after p90 ms "
             "| SS / latency | SS / mean(latency, after) | after / latency (A/A) | SS / direct | SS p50 / latency p50 "
             "| throughput img/s | Offline img/s | Offline / throughput |", "|" + "---|" * 15]
    summary, bracketed = [], []
    for depth in map(int, args.depths.split(",")):
        exporter = Exporter(ModelSpec(depth, input_size=224),
                            ExportOptions(batches=(1, args.offline_batch), out=Path(args.artifacts)))
        for name in args.backends.split(","):
            options = BackendOptions("cpu", "fp32", threads=args.threads, mode="latency")
            with open_backend(name, options, exporter).backend as backend:
                lat = latency_pairs(backend, images, args.reps, logs / f"{depth}-{name}", args.seconds)
            off = [{"throughput_ips": math.nan, "offline_ips": math.nan, "valid": False}] * args.reps
            if not args.no_offline:
                options = BackendOptions("cpu", "fp32", threads=args.threads, mode="throughput")
                with open_backend(name, options, exporter).backend as backend:
                    off = offline_pairs(backend, images, args.offline_batch, args.reps, logs / f"{depth}-{name}")
            for a, b in zip(lat, off, strict=True):
                lines.append(f"| {depth} | {name} | {a['rep']} | {a['latency_p90']:.2f} | {a['direct_p90']:.2f} | "
                             f"{a['singlestream_p90']:.2f} | {a['after_p90']:.2f} | "
                             f"{a['singlestream_p90'] / a['latency_p90']:.3f} | {bracket(a):.3f} | "
                             f"{a['after_p90'] / a['latency_p90']:.3f} | "
                             f"{a['singlestream_p90'] / a['direct_p90']:.3f} | "
                             f"{a['singlestream_p50'] / a['latency_p50']:.3f} | "
                             + ("- | - | - |" if args.no_offline else f"{b['throughput_ips']:.2f} | "
                                f"{b['offline_ips']:.2f} | {b['offline_ips'] / b['throughput_ips']:.3f} |"))
                print(lines[-1], flush=True)
            summary.append(f"| {depth} | {name} | {spread([a['singlestream_p90'] / a['latency_p90'] for a in lat])} | "
                           f"{spread([a['singlestream_p90'] / a['direct_p90'] for a in lat])} | "
                           + ("not run | " if args.no_offline else
                              f"{spread([b['offline_ips'] / b['throughput_ips'] for b in off])} | ")
                           + f"{sum(a['valid'] for a in lat)}/{len(lat)}, "
                           + ("- |" if args.no_offline else f"{sum(b['valid'] for b in off)}/{len(off)} |"))
            ss, aa = [bracket(a) for a in lat], [a["after_p90"] / a["latency_p90"] for a in lat]
            bracketed.append(f"| {depth} | {name} | {len(lat)} | {median_interval(ss)} | {log_sd(ss):.1%} | "
                             f"{median_interval(aa)} | {log_sd(aa):.1%} | "
                             f"{median_interval([a['singlestream_p50'] / a['latency_p50'] for a in lat])} |")
    text = (f"# LoadGen against our closed loop, back to back\n\n"
            f"`python benchmarks/loadgen_pairs.py {' '.join(sys.argv[1:])}`, "
            f"{(time.perf_counter() - started) / 60:.1f} min; "
            f"{prints.get('cpu_model', 'CPU')} ({prints.get('cpus_available', '?')} CPUs), "
            f"LoadGen {loadgen_version()}, fingerprint {prints.get('fingerprint_id')}. "
            f"CPU, fp32, 224 px, threads per instance: {args.threads or 'every CPU'}; quick rules, "
            f"windows of {f'{args.seconds:g} s' if args.seconds else '2-8 s (LoadGen 5 s)'}.\n\n"
            "Ratios: median of the repetitions (lowest-highest).\n\n"
            "| depth | backend | SingleStream p90 / latency-mode p90 | SingleStream p90 / direct p90 | "
            "Offline / throughput mode | LoadGen VALID (SS, Offline) |\n|---|---|---|---|---|---|\n"
            + "\n".join(summary)
            + "\n\nSingleStream bracketed by two latency-mode windows, against the same loop's A/A ratio "
            "(median, distribution-free interval; sd of the log ratio over repetitions):\n\n"
            "| depth | backend | reps | SS p90 / mean(latency p90 before, after) | its sd | "
            "latency p90 after / before (A/A) | its sd | SS p50 / latency p50 |\n|---|---|---|---|---|---|---|---|\n"
            + "\n".join(bracketed) + "\n\nEvery pair, in the order measured:\n\n" + "\n".join(lines) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
