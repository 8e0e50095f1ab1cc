"""Do our numbers agree with the runtimes' own tools? One run, one machine, ResNet-50.

OpenVINO: the suite's latency and throughput cells next to ``benchmark_app`` with the same
hint, batch, threads and inference precision. ONNX Runtime: the suite's latency cell next to
a bare ``InferenceSession.run`` loop with the same threads. Prints a markdown table.

    python benchmarks/fidelity.py [--depth 50] [--batches 1,8] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions
from resnet_bench.cpus import available_cpus
from resnet_bench.model import synthetic_images
from resnet_bench.runner import open_backend
from resnet_bench.spec import ModelSpec
from resnet_bench.timing import StopRule, measure, measure_concurrent


def ours(exporter: Exporter, backend: str, mode: str, batch: int, rule: StopRule) -> tuple[float, float]:
    """(median latency ms, images/s) as the harness measures them."""
    opened = open_backend(backend, BackendOptions("cpu", mode=mode), exporter)
    with opened.backend as runner:
        x = runner.prepare(synthetic_images(batch, 224, seed=5).numpy())
        if mode == "latency":
            timing = measure(lambda: runner.run(x), rule, runner.sync)
            p50 = timing.stats()["latency_ms_p50"]
            return p50, batch * 1e3 / p50
        timing = measure_concurrent([runner.worker(x) for _ in range(runner.in_flight())], rule)
        return timing.stats()["latency_ms_p50"], batch * timing.requests_per_s


def benchmark_app(xml: Path, mode: str, batch: int, seconds: int) -> tuple[float, float]:
    # benchmark_app refuses -nthreads next to -hint; the same settings go in through -load_config.
    config = {"CPU": {"PERFORMANCE_HINT": mode.upper(), "INFERENCE_NUM_THREADS": str(available_cpus()),
                      "INFERENCE_PRECISION_HINT": "f32"}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    command = [tool, "-m", str(xml), "-d", "CPU", "-hint", mode, "-shape", f"[{batch},3,224,224]",
               "-load_config", handle.name, "-t", str(seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink()
    median = float(re.search(r"Median:\s+([\d.]+) ms", out).group(1))
    fps = float(re.search(r"Throughput:\s+([\d.]+) FPS", out).group(1))
    return median, fps


def bare_onnxruntime(path: Path, batch: int, rule: StopRule) -> tuple[float, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cpus()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: synthetic_images(batch, 224, seed=5).numpy()}
    end = time.perf_counter() + max(rule.warmup_s, 1.0)
    for _ in range(rule.warmup_iters):
        session.run(None, feed)
    while time.perf_counter() < end:
        session.run(None, feed)
    samples = []
    start = time.perf_counter()
    while len(samples) < rule.min_iters or time.perf_counter() - start < rule.min_s:
        t0 = time.perf_counter_ns()
        session.run(None, feed)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    p50 = float(np.median(samples))
    return p50, batch * 1e3 / p50


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--artifacts", default="artifacts")
    args = parser.parse_args()
    rule = StopRule(warmup_iters=20, warmup_s=2.0, min_iters=30, min_s=args.seconds, max_s=4 * args.seconds)
    exporter = Exporter(ModelSpec(args.depth), ExportOptions(out=Path(args.artifacts)))
    xml, onnx_path = exporter.openvino("fp32").path, exporter.onnx("fp32").path
    print(f"ResNet-{args.depth}, CPU fp32, {available_cpus()} threads, ~{args.seconds} s per measurement\n")
    print("| runtime | mode | batch | reference tool | ref median ms | ours median ms | Δ latency "
          "| ref img/s | ours img/s | Δ img/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch in map(int, args.batches.split(",")):
        cases = [("openvino", "latency", "benchmark_app"), ("openvino", "throughput", "benchmark_app"),
                 ("onnxruntime", "latency", "bare session.run loop")]
        for backend, mode, tool in cases:
            if backend == "openvino":
                ref_ms, ref_ips = benchmark_app(xml, mode, batch, args.seconds)
            else:
                ref_ms, ref_ips = bare_onnxruntime(onnx_path, batch, rule)
            our_ms, our_ips = ours(exporter, backend, mode, batch, rule)
            print(f"| {backend} | {mode} | {batch} | {tool} | {ref_ms:.2f} | {our_ms:.2f} "
                  f"| {our_ms / ref_ms - 1:+.1%} | {ref_ips:.1f} | {our_ips:.1f} "
                  f"| {our_ips / ref_ips - 1:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
