"""LoadGen against our closed loop, back to back on one instance: where does a difference come from?

For each depth x backend (CPU, fp32, 224 px): a latency-mode instance runs ``--reps`` times, in
this order,

* ``latency``: our latency mode (the backend's ``run`` on an input prepared once);
* ``direct``: the same closed loop over what LoadGen's SingleStream calls per query (prepare
  the image, run, sync, fetch the logits: ``scenarios.loadgen.direct_runner``), no LoadGen;
* ``singlestream``: LoadGen's SingleStream (performance run only, quick rules);

then a throughput-mode instance ``--reps`` times: our throughput mode, then LoadGen's Offline at
``--offline-batch``.

Adjacent measurements share the machine's mood, so each LoadGen figure is divided by the
closed-loop figures measured just before it, and the spread over the repetitions says how far
a single pair can be trusted. Writes ``--out`` (markdown).

    python benchmarks/loadgen_pairs.py [--depths 18,50] [--backends onnxruntime,openvino] [--reps 3]
        [--offline-batch 1] [--artifacts artifacts] [--out results/loadgen-pairs.md]
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
from resnet_bench import fingerprint, scenarios
from resnet_bench.backends import BackendOptions
from resnet_bench.model import synthetic_images
from resnet_bench.runner import open_backend
from resnet_bench.scenarios.loadgen import QUICK, Load, direct_runner, lane_runners, loadgen_version, run_loadgen
from resnet_bench.scenarios.loadgen import SystemUnderTest as SUT
from resnet_bench.scenarios.loadgen_run import OFFLINE_MARGIN, REFERENCE_RULE
from resnet_bench.spec import ModelSpec
from resnet_bench.timing import measure


def p90(measured) -> float:
    return float(measured.stats["latency_ms_p90"])


def latency_pairs(backend, images: np.ndarray, reps: int, logs: Path) -> list[dict]:
    prepared = backend.prepare(images[:1])
    run = direct_runner(backend)
    rows = []
    for rep in range(reps):
        ours = scenarios.run("latency", backend, prepared, 1, REFERENCE_RULE)
        direct = measure(lambda: run(images[:1]), REFERENCE_RULE)
        expected = ours.stats["latency_ms_mean"] / 1e3
        lg = run_loadgen(SUT(images, inline=run), Load("singlestream", expected_s=expected), QUICK,
                         logs / f"singlestream-{rep}").result
        rows.append({"rep": rep + 1, "latency_p90": p90(ours),
                     "direct_p90": float(np.percentile(direct.samples_ms, 90)),
                     "singlestream_p90": lg.latency_ms["p90"], "valid": lg.valid})
    return rows


def offline_pairs(backend, images: np.ndarray, batch: int, reps: int, logs: Path) -> list[dict]:
    shape = tuple(images.shape[1:])
    rows = []
    for rep in range(reps):
        ours = scenarios.run("throughput", backend, backend.prepare(images[:batch]), batch, REFERENCE_RULE)
        lanes = lane_runners(backend, backend.in_flight(), batch, shape)
        lg = run_loadgen(SUT(backend.stage(images), lanes=lanes, batch=batch),
                         Load("offline", target_qps=OFFLINE_MARGIN * ours.images_per_s), QUICK,
                         logs / f"offline-{rep}").result
        rows.append({"rep": rep + 1, "throughput_ips": ours.images_per_s, "offline_ips": lg.samples_per_s,
                     "valid": lg.valid})
    return rows


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="18,50")
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--offline-batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per instance (default: every CPU); fewer leaves a core to LoadGen's threads")
    parser.add_argument("--no-offline", action="store_true", help="SingleStream pairs only")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="results/loadgen-pairs.md")
    args = parser.parse_args()
    started = time.perf_counter()
    prints = fingerprint.collect()
    images = synthetic_images(64, 224, seed=5).numpy()
    logs = Path(tempfile.mkdtemp(prefix="loadgen-pairs-"))
    lines = ["| depth | backend | rep | latency p90 ms | direct p90 ms | SingleStream p90 ms | SS / latency | "
             "SS / direct | throughput img/s | Offline img/s | Offline / throughput |", "|" + "---|" * 11]
    summary = []
    for depth in map(int, args.depths.split(",")):
        exporter = Exporter(ModelSpec(depth, input_size=224),
                            ExportOptions(batches=(1, args.offline_batch), out=Path(args.artifacts)))
        for name in args.backends.split(","):
            options = BackendOptions("cpu", "fp32", threads=args.threads, mode="latency")
            with open_backend(name, options, exporter).backend as backend:
                lat = latency_pairs(backend, images, args.reps, logs / f"{depth}-{name}")
            off = [{"throughput_ips": math.nan, "offline_ips": math.nan, "valid": False}] * args.reps
            if not args.no_offline:
                options = BackendOptions("cpu", "fp32", threads=args.threads, mode="throughput")
                with open_backend(name, options, exporter).backend as backend:
                    off = offline_pairs(backend, images, args.offline_batch, args.reps, logs / f"{depth}-{name}")
            for a, b in zip(lat, off, strict=True):
                lines.append(f"| {depth} | {name} | {a['rep']} | {a['latency_p90']:.2f} | {a['direct_p90']:.2f} | "
                             f"{a['singlestream_p90']:.2f} | {a['singlestream_p90'] / a['latency_p90']:.3f} | "
                             f"{a['singlestream_p90'] / a['direct_p90']:.3f} | {b['throughput_ips']:.2f} | "
                             f"{b['offline_ips']:.2f} | {b['offline_ips'] / b['throughput_ips']:.3f} |")
                print(lines[-1], flush=True)
            summary.append(f"| {depth} | {name} | {spread([a['singlestream_p90'] / a['latency_p90'] for a in lat])} | "
                           f"{spread([a['singlestream_p90'] / a['direct_p90'] for a in lat])} | "
                           f"{spread([b['offline_ips'] / b['throughput_ips'] for b in off])} | "
                           f"{sum(a['valid'] for a in lat)}/{len(lat)}, {sum(b['valid'] for b in off)}/{len(off)} |")
    text = (f"# LoadGen against our closed loop, back to back\n\n"
            f"`python benchmarks/loadgen_pairs.py {' '.join(sys.argv[1:])}`, "
            f"{(time.perf_counter() - started) / 60:.1f} min; "
            f"{prints.get('cpu_model', 'CPU')} ({prints.get('cpus_available', '?')} CPUs), "
            f"LoadGen {loadgen_version()}, fingerprint {prints.get('fingerprint_id')}. "
            f"CPU, fp32, 224 px, threads per instance: {args.threads or 'every CPU'}; quick rules.\n\n"
            "Ratios: median of the repetitions (lowest-highest).\n\n"
            "| depth | backend | SingleStream p90 / latency-mode p90 | SingleStream p90 / direct p90 | "
            "Offline / throughput mode | LoadGen VALID (SS, Offline) |\n|---|---|---|---|---|---|\n"
            + "\n".join(summary) + "\n\nEvery pair, in the order measured:\n\n" + "\n".join(lines) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
