"""Export every depth to ONNX and OpenVINO (fp32, fp16), then again from the cache.

Prints a markdown table: per artifact, the verification errors against PyTorch fp32 at
batch 1 and 3 (from the manifest, measured by the artifact's own runtime), the export time,
and the time of the second (cached) export as a fraction of the first.

    python benchmarks/export_all_depths.py [--out artifacts] [--depths 18,34,50,101,152]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from exporters.pipeline import ExportOptions, export
from resnet_bench.model.spec import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="artifacts")
    parser.add_argument("--depths", default="18,34,50,101,152")
    args = parser.parse_args()
    options = ExportOptions(targets=("onnx", "openvino"), precisions=("fp32", "fp16"), out=Path(args.out))
    print("| depth | target | precision | MB | export s | rel L2 b1 | rel L2 b3 | top-1 b3 |")
    print("|---|---|---|---|---|---|---|---|")
    timings = []
    for depth in map(int, args.depths.split(",")):
        spec = ModelSpec(depth)
        start = time.perf_counter()
        first = export(spec, options)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        second = export(spec, options)
        warm = time.perf_counter() - start
        assert all(a.cached for a in second)
        timings.append((depth, cold, warm, any(a.cached for a in first)))
        for a in first:
            b = a.manifest["verify"]["batches"]
            b1, b3 = b["1"], b["3"]
            print(f"| {depth} | {a.target} | {a.precision} | {a.bytes / 1e6:.1f} | {a.export_s:.1f} "
                  f"| {b1['rel_l2_err']:.2e} | {b3['rel_l2_err']:.2e} | {b3['top1_agreement']:.0%} |",
                  flush=True)
    print("\n| depth | first export s | cached export s | ratio |\n|---|---|---|---|")
    for depth, cold, warm, was_cached in timings:
        note = " (first was already cached)" if was_cached else ""
        print(f"| {depth} | {cold:.1f} | {warm:.2f} | {warm / cold:.1%}{note} |")


if __name__ == "__main__":
    main()
