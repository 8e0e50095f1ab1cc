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
from resnet_bench.backends.open import open_backend
from resnet_bench.machine.cpus import available_cpus
from resnet_bench.measure.timing import StopRule, measure, measure_concurrent
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.spec import ModelSpec


class Ours:
    """The suite's backend, opened once; each call measures one block like the harness does."""

    def __init__(self, exporter: Exporter, backend: str, mode: str, batch: int) -> None:
        self.opened = open_backend(backend, BackendOptions("cpu", mode=mode), exporter)
        self.runner, self.mode, self.batch = self.opened.backend, mode, batch
        self.x = self.runner.prepare(synthetic_images(batch, 224, seed=5).numpy())

    def __call__(self, rule: StopRule) -> tuple[float, float]:
        if self.mode == "latency":
            stats = measure(lambda: self.runner.run(self.x), rule, self.runner.sync).stats()
            return stats["latency_ms_p50"], self.batch * 1e3 / stats["latency_ms_mean"]
        timing = measure_concurrent(self.runner.streams(self.x), rule)
        return timing.stats()["latency_ms_p50"], self.batch * timing.requests_per_s

    def close(self) -> None:
        self.runner.close()


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


class BareOnnxRuntime:
    """The plainest ONNX Runtime loop: a session with the same threads, session.run, perf_counter."""

    def __init__(self, path: Path, batch: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = available_cpus()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.feed = {self.session.get_inputs()[0].name: synthetic_images(batch, 224, seed=5).numpy()}
        self.batch = batch

    def __call__(self, rule: StopRule) -> tuple[float, float]:
        end = time.perf_counter() + rule.warmup_s
        for _ in range(rule.warmup_iters):
            self.session.run(None, self.feed)
        while time.perf_counter() < end:
            self.session.run(None, self.feed)
        samples, start = [], time.perf_counter()
        while len(samples) < rule.min_iters or time.perf_counter() - start < rule.min_s:
            t0 = time.perf_counter_ns()
            self.session.run(None, self.feed)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        return float(np.median(samples)), self.batch * 1e3 / float(np.mean(samples))


def interleaved(reference, ours, rule: StopRule, rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """A B B A ... blocks, so that a slow patch of a shared machine hits both sides alike;
    each side's figure is the median of its blocks' medians."""
    results: dict[str, list[tuple[float, float]]] = {"ref": [], "ours": []}
    for block in range(rounds):
        order = ("ref", "ours") if block % 2 == 0 else ("ours", "ref")
        for side in order:
            results[side].append((reference if side == "ref" else ours)(rule))
    return tuple(tuple(float(np.median(v)) for v in zip(*results[side], strict=True)) for side in ("ref", "ours"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--seconds", type=int, default=5, help="per block")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per side, interleaved A B B A")
    parser.add_argument("--artifacts", default="artifacts")
    args = parser.parse_args()
    rule = StopRule(warmup_iters=5, warmup_s=0.5, min_iters=10, min_s=args.seconds, max_s=4 * args.seconds)
    exporter = Exporter(ModelSpec(args.depth), ExportOptions(out=Path(args.artifacts)))
    xml, onnx_path = exporter.openvino("fp32").path, exporter.onnx("fp32").path
    print(f"ResNet-{args.depth}, CPU fp32, {available_cpus()} threads; {args.rounds} interleaved blocks of "
          f"~{args.seconds} s per side\n")
    print("| runtime | mode | batch | reference tool | ref median ms | ours median ms | Δ latency "
          "| ref img/s | ours img/s | Δ img/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch in map(int, args.batches.split(",")):
        for backend, mode in (("openvino", "latency"), ("openvino", "throughput"), ("onnxruntime", "latency")):
            ours = Ours(exporter, backend, mode, batch)
            if backend == "openvino":
                tool = "benchmark_app"

                def reference(rule, mode=mode, batch=batch):
                    return benchmark_app(xml, mode, batch, int(rule.min_s))
            else:
                tool, reference = "bare session.run loop", BareOnnxRuntime(onnx_path, batch)
            (ref_ms, ref_ips), (our_ms, our_ips) = interleaved(reference, ours, rule, args.rounds)
            ours.close()
            print(f"| {backend} | {mode} | {batch} | {tool} | {ref_ms:.2f} | {our_ms:.2f} "
                  f"| {our_ms / ref_ms - 1:+.1%} | {ref_ips:.1f} | {our_ips:.1f} "
                  f"| {our_ips / ref_ips - 1:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
