"""`make gpu-check`: one prepared check of the GPU path, second edition, within a fixed budget.

    python benchmarks/gpu_check.py [--root results] [--budget 570] [--steps a,b] [--dry-run]
        [--allow-dirty] [--carry .gpu-carry]
    python benchmarks/gpu_check.py --stamp     # in the checkout, before carrying the tree over

Runs, through the CLI, with the python running this script (no set-up, nothing fetched), most
valuable first: torch parity on cuda; LoadGen Offline for ResNet-50 fp16 through every GPU
backend that runs (torch eager, torch + CUDA graphs, torch-compile) at the best closed-loop batch
of its candidates; LoadGen Server with the dynamic batcher at p99 <= 15 ms; torch-compile with
CUDA graphs (mode reduce-overhead) at batch 1 and 256, its compile time a column; ONNX Runtime's
CUDA provider, installed from wheel parts carried over beforehand (``wheel_parts.py``), its parity
(fp32 IEEE, tf32, fp16), LoadGen Offline and cells; the eager sweep; the gpu-marked tests.
Rows, fingerprint, logs, report and a summary go to ``<root>/gpu-<gpu name>/``; each summary
figure names its run folder. The MLPerf ratio is taken from LoadGen Offline only (MLPerf's
Offline is a LoadGen Offline run); closed-loop figures stand beside it, labelled.

Each step gets what is left of the budget, at most its cap; a step cut off keeps the rows it
wrote and says so in steps.json. A step whose prerequisite is missing (LoadGen, the wheel's
parts) is skipped with the reason: a finding, and the rest runs. The check refuses a tree with
uncommitted code changes unless ``--allow-dirty`` (the rows say which commit made them); a copy
without .git takes its commit from the stamp, if the code still hashes as stamped. Without a GPU:
one line on stderr, exit 2.

Sizing (15 minutes of device time in all): machine start ~3 min (START_S); carrying the 255 MB
wheel in 5 parts, back to back, ~1.5 min (CARRY_S); this check's default budget 570 s, of which
the steps get all but the report's 25 s; their expected times (EXPECTED_S, scaled from the first
run's on an H100) fill 544 of those 545 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# MLPerf publishes per system: which system each per-GPU figure is (shared REFERENCE.md).
MLPERF = {
    "h100": dict(offline=88_714, server=72_977, round="v4.0", system="DGX-H100 x1, a one-GPU system's result"),
    "h200": dict(offline=94_600, server=79_000, round="v4.1", system="an 8-GPU system's result divided by 8"),
}
RULE = ["--warmup-iters", "5", "--warmup-time", "0.1", "--min-iters", "15", "--min-time", "0.3",
        "--max-time", "1.5"]
REPORT_RESERVE_S = 25  # kept back for the report and the summary
DEFAULT_BUDGET_S = 570.0
DEVICE_S = 900  # a lent machine's 15 minutes, every start, transfer and step together
START_S = 180  # a machine's start, assumed (the first check's was not recorded)
CARRY_S = 100  # five transfers of ~56 MiB, one part each
CARRY = ".gpu-carry"  # where the wheel's parts arrive (wheel_parts.py split --out)
ORT_SITE = "site"  # under CARRY: where the joined wheel is installed (--target)
# Expected seconds per step, from the first check's steps on an H100 (parity 17 s, 32 eager cells
# 111 s, LoadGen Offline + Server 87 s, torch-compile of 2 batches 80 s, tests 51 s) scaled to these.
# Offline's third candidate batch (128) adds ~3 s of closed loop a step, the batcher's busy-lanes
# probes ~8 s (guesses at the first run's pace, not measured).
EXPECTED_S = {"parity-torch": 17, "offline-torch": 43, "offline-cuda-graphs": 43, "server-batcher": 78,
              "torch-compile-graphs": 80, "offline-torch-compile": 60, "ort-install": 15, "parity-ort-cuda": 45,
              "offline-ort-cuda": 38, "ort-cuda-cells": 20, "resnet50-eager": 55, "tests": 50}
OFFLINE_BATCHES = "64,128,256"  # Offline measures each closed loop and runs LoadGen at the best (128: the first
# check's best closed-loop batch on an H100)


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]  # after `python`
    log: str
    cells: int = 0  # timed cells (for the sizing arithmetic)
    compiles: int = 0  # inductor compiles
    cap_s: float | None = None  # at most this long, so that one slow step cannot starve the rest
    needs: str | None = None  # a module the step needs; without it the step is skipped with the reason
    needs_path: str | None = None  # a file an earlier step makes (relative to the repo); else skipped
    ort_gpu: bool = False  # runs with the carried onnxruntime-gpu first on the path
    findings: dict[int, str] = field(default_factory=dict)  # exit code -> what it means (not a failure)


def plan(out: Path, carry: Path = REPO / CARRY) -> list[Step]:
    runs, art = out / "runs", ["--artifacts", "artifacts"]

    def bench(backend: str, name: str, *args: str) -> tuple[str, ...]:
        return ("-m", "resnet_bench", "bench", "--device", "cuda", "--backends", backend, "--depths", "50",
                *RULE, *art, "--format", "json", "--out", str(runs / name), *args)

    def loadgen(backend: str, name: str, scenario: str, *args: str) -> tuple[str, ...]:
        return ("-m", "resnet_bench", "loadgen", "--depth", "50", "--backend", backend, "--precision", "fp16",
                "--device", "cuda", "--scenario", scenario, *art, "--out", str(runs / name), "--format", "json",
                *args)

    parity = ("-m", "resnet_bench", "parity", "--device", "cuda", "--depth", "50", "--out", "artifacts",
              "--format", "json")
    site = carry / ORT_SITE
    offline = ("--offline-batches", OFFLINE_BATCHES)
    return [
        Step("parity-torch", (*parity, "--backends", "torch", "--precision", "fp32,tf32,fp16,bf16"),
             "parity_cuda_torch.json", cap_s=60),
        Step("offline-torch", loadgen("torch", "offline-torch", "offline", *offline), "offline_torch.json",
             cells=2, cap_s=60, needs="mlperf_loadgen"),
        Step("offline-cuda-graphs", loadgen("torch", "offline-cuda-graphs", "offline", *offline, "--cuda-graphs"),
             "offline_cuda_graphs.json", cells=2, cap_s=50, needs="mlperf_loadgen"),
        Step("server-batcher", loadgen("torch", "server-batcher", "server", "--percentile", "99",
                                       "--latency-bound-ms", "15", "--search-steps", "6"), "server_batcher.json",
             cap_s=90, needs="mlperf_loadgen"),
        Step("torch-compile-graphs", bench("torch-compile", "torch-compile-graphs", "--batches", "1,256",
                                           "--precisions", "fp16", "--modes", "latency", "--cuda-graphs"),
             "torch_compile_graphs.json", cells=2, compiles=3, cap_s=90),  # 3: parity's chunks of 8 compile too
        Step("offline-torch-compile", loadgen("torch-compile", "offline-torch-compile", "offline",
                                              "--offline-batches", "256"), "offline_torch_compile.json",
             cells=1, compiles=1, cap_s=75, needs="mlperf_loadgen"),
        Step("ort-install", (str(REPO / "benchmarks" / "wheel_parts.py"), "join", "--from", str(carry), "--target",
                             str(site), "--install"), "ort_install.log", cap_s=60,
             findings={3: "wheel parts missing or corrupt (named in the log)"}),
        Step("parity-ort-cuda", (*parity, "--backends", "onnxruntime", "--precision", "fp32,tf32,fp16"),
             "parity_cuda_onnxruntime.json", cap_s=60, needs_path=str(site / "onnxruntime"), ort_gpu=True),
        Step("offline-ort-cuda", loadgen("onnxruntime", "offline-ort-cuda", "offline", *offline),
             "offline_ort_cuda.json", cells=2, cap_s=60, needs="mlperf_loadgen", needs_path=str(site / "onnxruntime"),
             ort_gpu=True),
        Step("ort-cuda-cells", bench("onnxruntime", "ort-cuda-cells", "--batches", "1,256", "--precisions", "fp16",
                                     "--modes", "latency"), "ort_cuda_cells.json", cells=2, cap_s=40,
             needs_path=str(site / "onnxruntime"), ort_gpu=True),
        Step("resnet50-eager", bench("torch", "resnet50-eager", "--batches", "1,8,64,256", "--precisions", "fp32,fp16",
                                     "--modes", "latency,throughput"), "resnet50-eager.json", cells=16, cap_s=80),
        Step("tests", ("-m", "pytest", "tests", "-m", "gpu or tensorrt", "-q", "-rs", "-p", "no:cacheprovider"),
             "tests.log", cap_s=60),
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


def mlperf_reference(gpu: str) -> dict | None:
    """MLPerf's per-GPU ResNet-50 figures for this GPU, and which system they are, or None (a
    GH200 is not an H200). Both are SXM systems: a PCIe card's name says so in the label."""
    name = gpu.lower()
    for key, figures in MLPERF.items():
        if re.search(rf"(?<![a-z]){key}(?![0-9])", name):
            pcie = "pcie" in name or "nvl" in name  # the H100 / H200 NVL are PCIe cards
            return {**figures, "system": figures["system"] + ("; an SXM system, this GPU is a PCIe card"
                                                              if pcie else "")}
    return None


def step_env(carry: Path, ort_gpu: bool = False) -> dict:
    """Every step imports this checkout (run from anywhere); an ORT step the carried
    onnxruntime-gpu first, before the image's CPU build."""
    env = dict(os.environ)
    first = [str(carry / ORT_SITE)] if ort_gpu else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*first, str(REPO), env.get("PYTHONPATH")]))
    return env


def skip_reason(step: Step) -> str | None:
    if step.needs and importlib.util.find_spec(step.needs) is None:
        return f"{step.needs} is not installed"
    if step.needs_path and not Path(step.needs_path).exists():
        return f"{step.needs_path} is not there (an earlier step makes it)"
    return None


def run_step(step: Step, out: Path, seconds_left: float, tag: str = "", carry: Path = REPO / CARRY) -> dict:
    command = [sys.executable, *step.args]
    start = time.perf_counter()
    record = {"name": step.name, "command": " ".join(command), "log": tag + step.log}
    if seconds_left < 10:
        return {**record, "status": "skipped: budget spent", "seconds": 0.0}
    why = skip_reason(step)
    if why:
        print(f"gpu-check: {step.name}: skipped ({why})", file=sys.stderr)
        return {**record, "status": f"skipped: {why}", "seconds": 0.0}
    limit = min(seconds_left, step.cap_s or seconds_left)
    with open(out / (tag + step.log), "w") as stdout, open(out / f"{tag}{step.name}.stderr.log", "w") as stderr:
        try:
            rc = subprocess.run(command, stdout=stdout, stderr=stderr, timeout=limit, cwd=REPO,
                                env=step_env(carry, step.ort_gpu)).returncode
            status = "ok" if rc == 0 else f"finding: {step.findings[rc]}" if rc in step.findings else f"exit {rc}"
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


OFFLINE_STEPS = {"offline-torch": "torch eager", "offline-cuda-graphs": "torch + CUDA graphs",
                 "offline-torch-compile": "torch-compile", "offline-ort-cuda": "ONNX Runtime CUDA"}


def summarize(out: Path, runs: dict[str, Path], gpu: str = "") -> str:
    import pandas as pd

    from resnet_bench.results import runs as results

    frames = [results.load(path).copy().assign(sweep=name, run_folder=str(path.relative_to(out)))
              for name, path in runs.items()]
    if not frames:
        return "no rows were written\n"
    rows = pd.concat(frames, ignore_index=True)
    rows.to_csv(out / "rows.csv", index=False)
    ref = mlperf_reference(gpu)
    of = (f"of MLPerf {ref['round']} Offline {ref['offline']:,} img/s per GPU ({ref['system']})" if ref else
          "of MLPerf (no per-GPU figure for this GPU in REFERENCE.md)")
    lines = [f"| ResNet-50 fp16 | figure | {of} | run folder |", "|---|---|---|---|"]
    ok = rows[(rows.status == "ok") & (rows.depth == 50)]
    loadgen = ok[ok["scenario"].notna()] if "scenario" in ok else ok[:0]
    for sweep, label in OFFLINE_STEPS.items():
        for _, row in loadgen[(loadgen.sweep == sweep) & (loadgen.scenario == "offline")].iterrows():
            ratio = f"{row.qps / ref['offline']:.1%}" if ref else ""
            closed = row.get("closed_loop_images_per_s")
            beside = f"; closed loop at that batch {closed:,.0f} images/s (not comparable)" if closed == closed else ""
            valid = "" if row.get("loadgen_valid") == True else " (LoadGen: INVALID)"  # noqa: E712
            lines.append(f"| {label}, LoadGen Offline, batch {row.batch_size} (quick rules){valid}{beside} | "
                         f"{row.qps:,.0f} samples/s | {ratio} | {row.run_folder} |")
    for _, row in loadgen[loadgen.scenario == "server"].iterrows():
        held = int(row.loadgen_percentile) if row.loadgen_percentile == row.loadgen_percentile else "?"
        batching = row.get("server_batching") or "one image per query"
        offline = loadgen[(loadgen.sweep == "offline-torch") & (loadgen.scenario == "offline")]
        valid = row.get("loadgen_valid") == True  # noqa: E712 (NaN-safe)
        half = (f"; {row.qps / offline.qps.iloc[0]:.0%} of its Offline (goal: 50% or more)"
                if len(offline) and valid else "")
        server = f"{row.qps / ref['server']:.1%} of Server's {ref['server']:,}" if ref and held == 99 and valid else ""
        what = "peak" if valid else f"no valid step (LoadGen: INVALID; {row.get('loadgen_invalid_reason')})"
        lines.append(f"| torch eager, LoadGen Server {what}, p{held} <= {row.latency_bound_ms:g} ms (quick rules), "
                     f"{batching}{half} | {row.qps:,.1f} QPS | {server} | {row.run_folder} |")
    timed = ok[ok["scenario"].isna()] if "scenario" in ok else ok
    for sweep, label in (("torch-compile-graphs", "torch-compile + CUDA graphs (reduce-overhead)"),
                         ("ort-cuda-cells", "ONNX Runtime CUDA"), ("resnet50-eager", "torch eager")):
        cells = timed[(timed.sweep == sweep) & (timed.precision == "fp16")]
        for _, row in cells[(cells["mode"] == "latency") & (cells.batch_size == 1)].iterrows():
            note = "" if row.valid == True else f" (not valid: {row.invalid_reasons})"  # noqa: E712
            compiled = f", compile {row.compile_s:.1f} s" if row.get("compile_s") == row.get("compile_s") and \
                row.get("compile_s") is not None else ""
            lines.append(f"| {label}: batch-1 p50, closed loop{compiled} | {row.latency_ms_p50:.3f} ms{note} | | "
                         f"{row.run_folder} |")
        valid = cells[cells.valid == True]  # noqa: E712 (NaN-safe)
        if len(valid):
            top = valid.loc[valid.images_per_s.idxmax()]
            lines.append(f"| {label}: best closed-loop images/s (batch {top.batch_size}, {top['mode']}; a closed-loop "
                         f"burst, not comparable to MLPerf) | {top.images_per_s:,.0f} | | {top.run_folder} |")
    invalid = rows[rows.valid != True]  # noqa: E712 (NaN-safe)
    lines.append(f"\n{len(rows)} rows, {int((rows.status == 'ok').sum())} ok, {len(invalid)} not valid "
                 f"(reasons in rows.csv: invalid_reasons, gpu_throttle).")
    return "\n".join(lines) + "\n"


def parity_lines(out: Path, tag: str = "") -> list[str]:
    """One line per parity verdict the check wrote (torch and ONNX Runtime CUDA)."""
    lines = []
    for name in ("parity_cuda_torch.json", "parity_cuda_onnxruntime.json"):
        try:
            verdicts = json.loads((out / (tag + name)).read_text())
        except (OSError, ValueError):
            continue
        for v in verdicts if isinstance(verdicts, list) else []:
            lines.append(f"- parity {v.get('backend')} {v.get('precision')}: {v.get('status')}, rel L2 "
                         f"{v.get('rel_l2_err', float('nan')):.2e}, top-1 agreement {v.get('top1_agreement')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="results", help="the check's folder goes to ROOT/gpu-<gpu name>/")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds in all (default 570)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its size, run nothing")
    parser.add_argument("--steps", default=None, help="only these steps, comma-separated (a rerun of what was cut off)")
    parser.add_argument("--allow-dirty", action="store_true", help="run on uncommitted code changes (the rows say so)")
    parser.add_argument("--carry", default=str(REPO / CARRY), help="where the wheel's parts were carried")
    parser.add_argument("--stamp", action="store_true", help="write the checkout's provenance for a copy without .git")
    args = parser.parse_args(argv)
    from resnet_bench.machine.fingerprint import provenance, stamp

    if args.stamp:
        print(stamp())
        return 0
    carry = Path(args.carry).resolve()  # the steps run in the checkout: their paths must not depend on ours
    names = [step.name for step in plan(Path(args.root), carry)]
    chosen = names if args.steps is None else [name.strip() for name in args.steps.split(",")]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(f"gpu-check: no step named {', '.join(unknown)} (steps: {', '.join(names)})", file=sys.stderr)
        return 2
    if args.dry_run:
        steps = [step for step in plan(Path(args.root) / "gpu-<name>", carry) if step.name in chosen]
        for step in steps:
            print(f"{step.name} (cap {step.cap_s:g} s): python {' '.join(step.args)}")
        expected = sum(EXPECTED_S[s.name] for s in steps)
        print(f"timed cells: {sum(s.cells for s in steps)}, inductor compiles: {sum(s.compiles for s in steps)}, "
              f"expected {expected} s of a {args.budget:g} s budget; device time: start {START_S} s + carry "
              f"{CARRY_S} s + budget = {START_S + CARRY_S + args.budget:g} of {DEVICE_S} s")
        return 0
    name, reason = gpu_name()
    if name is None:
        print(f"gpu-check: {reason}; run it on a machine with an NVIDIA GPU", file=sys.stderr)
        return 2
    origin = provenance()
    if origin["git_dirty"] and not args.allow_dirty:
        print(f"gpu-check: the code has uncommitted changes (at {origin['git_commit']}): commit them, or pass "
              "--allow-dirty", file=sys.stderr)
        return 2
    if origin["git_commit"] is None and not args.allow_dirty:
        print("gpu-check: which commit this code is is unknown (no .git, and no .provenance.json whose code hash "
              "matches): run --stamp in the checkout and carry .provenance.json, or pass --allow-dirty",
              file=sys.stderr)
        return 2
    out = Path(args.root).resolve() / f"gpu-{slug(name)}"  # absolute: the steps run in the checkout
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + args.budget
    tag = "" if args.steps is None else time.strftime("rerun-%Y%m%d-%H%M%S-")  # a rerun keeps the first call's logs
    records = []
    for step in (step for step in plan(out, carry) if step.name in chosen):
        records.append(run_step(step, out, deadline - time.perf_counter() - REPORT_RESERVE_S, tag, carry))
        (out / f"{tag}steps.json").write_text(json.dumps({"provenance": origin, "steps": records}, indent=2))
    runs = run_dirs(out)
    if runs:
        first = next(iter(runs.values()))
        (out / "fingerprint.json").write_text((first / "fingerprint.json").read_text())
        report = [sys.executable, "-m", "resnet_bench", "report", *map(str, runs.values()),
                  "--out", str(out / "report")]
        try:
            made = subprocess.run(report, capture_output=True, text=True, cwd=REPO, env=step_env(carry),
                                  timeout=max(10.0, deadline - time.perf_counter()))
            if made.returncode != 0:
                print(f"gpu-check: report failed (exit {made.returncode}): {made.stderr.strip()[-300:]}",
                      file=sys.stderr)
        except subprocess.TimeoutExpired:
            print("gpu-check: report cut off at the budget", file=sys.stderr)
    summary = summarize(out, runs, name)
    steps = "\n".join(f"| {r['name']} | {r['status']} | {r['seconds']} |" for r in records)
    commit = (f"commit {origin['git_commit']}" + (" with uncommitted changes (--allow-dirty)" if origin["git_dirty"]
                                                  else "") if origin["git_commit"] else "commit unknown")
    (out / f"{tag}summary.md").write_text(f"# GPU check on {name}\n\n{commit}\n\n{summary}\n"
                                          + "\n".join(parity_lines(out, tag)) +
                                          f"\n\n| step | status | seconds |\n|---|---|---|\n{steps}\n")
    print(summary)
    print(out)
    return 0 if all(r["status"] == "ok" or r["status"].startswith(("finding", "skipped")) for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
