"""`make gpu-check`: one prepared check of the GPU path, at most 8 minutes on one GPU.

    python benchmarks/gpu_check.py [--root results] [--budget 480] [--steps a,b] [--dry-run]

Runs, through the CLI, with the python running this script (no set-up, nothing fetched):
the gpu-marked tests; parity on cuda (torch fp32/tf32/fp16/bf16, CUDA graphs, torch-compile
via its sweep) and ONNX Runtime on the CPU as a cross-check; sweeps of ResNet-50 x batch
1/8/64/256 x fp32/tf32/fp16/bf16 (eager torch, latency and throughput), ResNet-18 and -152 in
fp16, CUDA graphs and torch-compile for ResNet-50 fp16 at batch 1 and 256; then the report.
Rows, fingerprint, logs, report and a summary go to ``<root>/gpu-<gpu name>/``. Each step
gets what is left of the budget; a step cut off keeps the rows it wrote (they are written one
at a time) and says so in steps.json. Sizing: README, "The GPU check". Without a GPU: one
line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MLPERF_H100_OFFLINE = 88_714  # images/s per GPU, MLPerf Inference v4.0, ResNet-50, TensorRT INT8
MLPERF_H100_SERVER = 72_977  # queries/s per GPU, same round, Server (p99 bound 15 ms)
RULE = ["--warmup-iters", "5", "--warmup-time", "0.1", "--min-iters", "15", "--min-time", "0.3",
        "--max-time", "1.5"]
REPORT_RESERVE_S = 25  # kept back for the report and the summary


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]  # after `python -m`
    log: str
    cells: int = 0  # timed cells (for the sizing arithmetic)
    compiles: int = 0  # inductor compiles
    cap_s: float | None = None  # at most this long, so that one slow step cannot starve the rest
    needs: str | None = None  # a module the step needs; without it the step is skipped with the reason


def plan(out: Path) -> list[Step]:
    runs, art = out / "runs", ["--artifacts", "artifacts"]
    bench = ("resnet_bench", "bench", "--device", "cuda", "--backends", "torch", *RULE, *art, "--format", "json")
    parity = ("resnet_bench", "parity", "--device", "cuda", "--depth", "50", "--backends", "torch", "--out",
              "artifacts", "--format", "json")
    loadgen = ("resnet_bench", "loadgen", "--depth", "50", "--backend", "torch", "--precision", "fp16",
               "--device", "cuda", "--scenario", "offline,server", "--artifacts", "artifacts",
               "--out", str(runs / "loadgen-resnet50-fp16"), "--format", "json")
    # Most valuable first: a step cut off at the budget loses least where it is last.
    return [
        Step("parity-torch", (*parity, "--precision", "fp32,tf32,fp16,bf16"), "parity_cuda_torch.json", cap_s=90),
        Step("resnet50-eager", (*bench, "--depths", "50", "--batches", "1,8,64,256", "--precisions",
                                "fp32,tf32,fp16,bf16", "--modes", "latency,throughput",
                                "--out", str(runs / "resnet50-eager")), "resnet50-eager.json", cells=32),
        Step("resnet50-cuda-graphs", (*bench, "--depths", "50", "--batches", "1,256", "--precisions", "fp16",
                                      "--modes", "latency", "--cuda-graphs", "--out",
                                      str(runs / "resnet50-cuda-graphs")), "resnet50-cuda-graphs.json", cells=2),
        Step("loadgen-resnet50-fp16", loadgen, "loadgen_resnet50_fp16.json", cap_s=150, needs="mlperf_loadgen"),
        Step("resnet18-152-fp16", (*bench, "--depths", "18,152", "--batches", "1,8,64,256", "--precisions", "fp16",
                                   "--modes", "latency,throughput", "--out", str(runs / "resnet18-152-fp16")),
             "resnet18-152-fp16.json", cells=16),
        Step("tests", ("pytest", "tests", "-m", "gpu or tensorrt", "-q", "-rs", "-p", "no:cacheprovider"),
             "tests.log", cap_s=120),
        Step("resnet50-torch-compile", (*[a if a != "torch" else "torch-compile" for a in bench], "--depths", "50",
                                        "--batches", "1,256", "--precisions", "fp16", "--modes", "latency",
                                        "--out", str(runs / "resnet50-torch-compile")),
             "resnet50-torch-compile.json", cells=2, compiles=3),
        Step("parity-cuda-graphs", (*parity, "--precision", "fp32,fp16", "--cuda-graphs"),
             "parity_cuda_graphs.json", cap_s=60),
        Step("parity-onnxruntime-cpu", ("resnet_bench", "parity", "--device", "cpu", "--depth", "50",
                                        "--backends", "onnxruntime", "--precision", "fp32", "--out", "artifacts",
                                        "--format", "json"), "parity_cpu_onnxruntime.json", cap_s=90),
    ]


def gpu_name() -> tuple[str | None, str]:
    """The GPU's name, or None and why there is none."""
    try:
        import torch
    except ImportError:
        return None, f"torch is not installed for {sys.executable}"
    if not torch.cuda.is_available():
        return None, f"no CUDA device is visible to torch {torch.__version__} (CUDA build: {torch.version.cuda})"
    return torch.cuda.get_device_name(), ""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_step(step: Step, out: Path, seconds_left: float, tag: str = "") -> dict:
    command = [sys.executable, "-m", *step.args]
    start = time.perf_counter()
    record = {"name": step.name, "command": " ".join(command), "log": tag + step.log}
    if seconds_left < 10:
        return {**record, "status": "skipped: budget spent", "seconds": 0.0}
    if step.needs and importlib.util.find_spec(step.needs) is None:
        print(f"gpu-check: {step.name}: skipped ({step.needs} is not installed)", file=sys.stderr)
        return {**record, "status": f"skipped: {step.needs} is not installed", "seconds": 0.0}
    limit = min(seconds_left, step.cap_s or seconds_left)
    with open(out / (tag + step.log), "w") as stdout, open(out / f"{tag}{step.name}.stderr.log", "w") as stderr:
        try:
            rc = subprocess.run(command, stdout=stdout, stderr=stderr, timeout=limit).returncode
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            status = f"cut off after {limit:.0f} s (rows written so far are kept)"
    seconds = round(time.perf_counter() - start, 1)
    print(f"gpu-check: {step.name}: {status} ({seconds} s)", file=sys.stderr)
    return {**record, "status": status, "seconds": seconds}


def run_dirs(out: Path) -> dict[str, Path]:
    found = {}
    for root in sorted((out / "runs").glob("*")):
        dirs = sorted(p for p in root.glob("*") if (p / "results.csv").is_file())
        if dirs:
            found[root.name] = dirs[-1]
    return found


def summarize(out: Path, runs: dict[str, Path]) -> str:
    import pandas as pd

    from resnet_bench.results import runs as results

    frames = [results.load(path).assign(sweep=name) for name, path in runs.items()]
    if not frames:
        return "no rows were written\n"
    rows = pd.concat(frames, ignore_index=True)
    rows.to_csv(out / "rows.csv", index=False)
    ok = rows[(rows.status == "ok") & (rows.depth == 50) & (rows.precision == "fp16")]
    valid = ok[ok.valid == True]  # noqa: E712 (NaN-safe)
    lines = ["| figure | value | of MLPerf v4.0 H100 (TensorRT INT8) |", "|---|---|---|"]

    def best(sweep: str, label: str) -> None:
        """The most images/s among the valid rows (an invalid row's figure is not known well enough)."""
        cells = valid[valid.sweep == sweep]
        if len(cells):
            top = cells.loc[cells.images_per_s.idxmax()]
            lines.append(f"| {label}: best images/s (batch {top.batch_size}, {top['mode']}) | "
                         f"{top.images_per_s:,.0f} | {top.images_per_s / MLPERF_H100_OFFLINE:.1%} of Offline's "
                         f"{MLPERF_H100_OFFLINE:,} |")
        elif len(ok[ok.sweep == sweep]):
            lines.append(f"| {label}: best images/s | no valid row | |")

    def p50(sweep: str, label: str) -> None:
        cells = ok[(ok.sweep == sweep) & (ok["mode"] == "latency") & (ok.batch_size == 1)]
        if len(cells):
            row = cells.iloc[0]
            note = "" if row.valid == True else f" (not valid: {row.invalid_reasons})"  # noqa: E712
            lines.append(f"| {label}: batch-1 p50 latency | {row.latency_ms_p50:.3f} ms{note} | |")

    best("resnet50-eager", "ResNet-50 fp16, torch eager")
    best("resnet50-cuda-graphs", "ResNet-50 fp16, torch + CUDA graphs")
    best("resnet50-torch-compile", "ResNet-50 fp16, torch-compile (goal: 25% or more)")
    p50("resnet50-eager", "ResNet-50 fp16, torch eager")
    p50("resnet50-cuda-graphs", "ResNet-50 fp16, torch + CUDA graphs")
    p50("resnet50-torch-compile", "ResNet-50 fp16, torch-compile")
    loadgen = rows[(rows.sweep == "loadgen-resnet50-fp16") & (rows.status == "ok")] if "scenario" in rows else rows[:0]
    for _, row in loadgen[loadgen.scenario == "offline"].iterrows():
        lines.append(f"| ResNet-50 fp16, torch eager, LoadGen Offline (samples/s, quick rules) | {row.qps:,.0f} | "
                     f"{row.qps / MLPERF_H100_OFFLINE:.1%} of Offline's {MLPERF_H100_OFFLINE:,} |")
    for _, row in loadgen[loadgen.scenario == "server"].iterrows():
        held = int(row.loadgen_percentile) if row.loadgen_percentile == row.loadgen_percentile else "?"
        comparable = held == 99
        lines.append(f"| ResNet-50 fp16, torch eager, LoadGen Server (peak QPS, p{held} <= "
                     f"{row.latency_bound_ms:g} ms, one image per query) | {row.qps:,.1f} | "
                     + (f"{row.qps / MLPERF_H100_SERVER:.2%} of Server's {MLPERF_H100_SERVER:,} |" if comparable else
                        f"not comparable: MLPerf's Server ({MLPERF_H100_SERVER:,}) holds p99 |"))
    invalid = rows[rows.valid != True]  # noqa: E712 (NaN-safe)
    lines.append(f"\n{len(rows)} rows, {int((rows.status == 'ok').sum())} ok, {len(invalid)} not valid "
                 f"(reasons in rows.csv: invalid_reasons, gpu_throttle).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="results", help="the check's folder goes to ROOT/gpu-<gpu name>/")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds in all (default 480)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its size, run nothing")
    parser.add_argument("--steps", default=None, help="only these steps, comma-separated (a rerun of what was cut off)")
    args = parser.parse_args(argv)
    names = [step.name for step in plan(Path(args.root))]
    chosen = names if args.steps is None else [name.strip() for name in args.steps.split(",")]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(f"gpu-check: no step named {', '.join(unknown)} (steps: {', '.join(names)})", file=sys.stderr)
        return 2
    if args.dry_run:
        steps = [step for step in plan(Path(args.root) / "gpu-<name>") if step.name in chosen]
        for step in steps:
            print(f"{step.name}: python -m {' '.join(step.args)}")
        print(f"timed cells: {sum(s.cells for s in steps)}, inductor compiles: {sum(s.compiles for s in steps)}")
        return 0
    name, reason = gpu_name()
    if name is None:
        print(f"gpu-check: {reason}; run it on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2
    out = Path(args.root) / f"gpu-{slug(name)}"
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + args.budget
    tag = "" if args.steps is None else time.strftime("rerun-%Y%m%d-%H%M%S-")  # a rerun keeps the first call's logs
    records = []
    for step in (step for step in plan(out) if step.name in chosen):
        records.append(run_step(step, out, deadline - time.perf_counter() - REPORT_RESERVE_S, tag))
        (out / f"{tag}steps.json").write_text(json.dumps(records, indent=2))
    runs = run_dirs(out)
    if runs:
        first = next(iter(runs.values()))
        (out / "fingerprint.json").write_text((first / "fingerprint.json").read_text())
        report = [sys.executable, "-m", "resnet_bench", "report", *map(str, runs.values()),
                  "--out", str(out / "report")]
        try:
            subprocess.run(report, capture_output=True, timeout=max(10.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            print("gpu-check: report cut off at the budget", file=sys.stderr)
    summary = summarize(out, runs)
    steps = "\n".join(f"| {r['name']} | {r['status']} | {r['seconds']} |" for r in records)
    (out / "summary.md").write_text(f"# GPU check on {name}\n\n{summary}\n| step | status | seconds |\n|---|---|---|\n"
                                    f"{steps}\n")
    print(summary)
    print(out)
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
