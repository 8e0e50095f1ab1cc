"""The ``resnet-bench`` command line: thin; each command calls the library.

Bad input prints one line naming the problem and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet_bench import __version__, limits
from resnet_bench.architecture import DEPTHS, VARIANTS
from resnet_bench.output import FORMATS, emit, stdout_to_stderr

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage too; we want one line
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 1% or 0.01, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0% and 100%, got {text!r}")
    return value


def str_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_model_args(parser: argparse.ArgumentParser, depth_default: int | None = 18) -> None:
    parser.add_argument("--depth", type=int, default=depth_default, required=depth_default is None,
                        help=f"ResNet depth: {', '.join(map(str, DEPTHS))}")
    parser.add_argument("--variant", default="v1.5", help="v1 (paper) or v1.5 (torchvision)")
    parser.add_argument("--weights", default=None, help="torchvision-format state_dict file")


def cmd_flops(args: argparse.Namespace) -> int:
    from resnet_bench.architecture import check_input_size, check_variant
    from resnet_bench.flops import flops_rows

    variants = VARIANTS if args.variant == "both" else (check_variant(args.variant),)
    rows = flops_rows(variants, check_input_size(args.input_size))
    emit(rows, args.format, title=f"ResNet multiply-adds at {args.input_size}x{args.input_size} "
         "(convs + fc, the paper's convention)")
    return 0


def cmd_time(args: argparse.Namespace) -> int:
    from resnet_bench.quick import time_torch_cpu

    limits.require_batch(args.batch, args.input_size)
    with stdout_to_stderr():
        row = time_torch_cpu(args.depth, args.variant, args.batch, args.input_size, args.weights)
    emit([row], args.format, title="PyTorch eager, CPU, single-stream latency")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from exporters.pipeline import ExportOptions, export
    from resnet_bench.spec import ModelSpec

    spec = ModelSpec(args.depth, args.variant, args.weights, input_size=args.input_size)
    options = ExportOptions(targets=args.to, precisions=args.precision, batches=args.batches,
                            opset=args.opset, static_batch=args.static_batch, out=Path(args.out),
                            onnx=Path(args.onnx) if args.onnx else None,
                            calibration_images=Path(args.calibration_images) if args.calibration_images else None,
                            calibration_count=args.calibration_count, ort_int8=args.ort_int8)
    if args.static_batch is not None:
        limits.require_batch(args.static_batch, args.input_size, "--static-batch")
    limits.require_writable(args.out, "--out")
    with stdout_to_stderr():
        artifacts = export(spec, options)
    rows = [a.row() for a in artifacts]
    emit(rows, args.format, title=f"{spec.name} artifacts",
         columns=["target", "precision", "bytes", "export_s", "cached", "path"])
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    from exporters.pipeline import Exporter, ExportOptions
    from resnet_bench.backends import backend_class
    from resnet_bench.backends.base import BackendOptions
    from resnet_bench.parity import CHUNK, parity_images, run_parity
    from resnet_bench.precision import check_precision
    from resnet_bench.spec import ModelSpec

    spec = ModelSpec(args.depth, args.variant, args.weights, input_size=args.input_size)
    for name in args.backends:
        backend_class(name)  # unknown names are bad input, before any work
    for precision in args.precision:
        check_precision(precision)
    BackendOptions(args.device, threads=args.threads, cuda_graphs=args.cuda_graphs)  # validates them
    limits.require_device(args.device)
    if args.images is None:
        limits.require_batch(args.count, args.input_size, "--count", at_once=CHUNK)
    exporter = Exporter(spec, ExportOptions(out=limits.require_writable(args.out, "--out")))
    images = parity_images(args.input_size, args.count, folder=args.images)
    with stdout_to_stderr():
        verdicts = run_parity(exporter, args.backends, args.device, args.precision, images, args.threads,
                              cuda_graphs=args.cuda_graphs)
    rows = [v.row() for v in verdicts]
    emit(rows, args.format, title=f"{spec.name}: parity against PyTorch fp32 on {len(images)} images",
         columns=["backend", "precision", "device", "status", "rel_l2_err", "max_abs_err", "cosine",
                  "top1_agreement", "top5_agreement", "compute_precision", "threads", "reason"])
    return 1 if any(v.status in ("fail", "error") for v in verdicts) else 0


SUMMARY_COLUMNS = ["depth", "backend", "precision", "mode", "batch_size", "latency_ms_p50", "latency_ms_p50_low",
                   "latency_ms_p50_high", "latency_ms_p90_high", "images_per_s", "roofline_fraction", "threads",
                   "streams", "parity_status", "valid", "status"]


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from resnet_bench import harness

    if args.resume:
        run_dir = Path(args.resume)
        config = harness.resume(run_dir)
        _require_machine(config, "--resume", run_dir)
    else:
        given = {"warmup_iters": args.warmup_iters, "warmup_s": args.warmup_time,
                 "min_iters": args.min_iters, "min_s": args.min_time, "max_s": args.max_time,
                 "target_precision": args.target_precision}
        config = harness.SweepConfig.from_profile(
            args.profile, args.device, depths=args.depths, batches=args.batches, backends=args.backends,
            precisions=args.precisions, modes=args.modes, input_size=args.input_size, threads=args.threads,
            artifacts=args.artifacts, cuda_graphs=args.cuda_graphs, weights=args.weights, variant=args.variant,
            images=args.images,
            rule_overrides={k: v for k, v in given.items() if v is not None})
        _require_machine(config, "--out", Path(args.out))
        run_dir = harness.new_run_dir(Path(args.out), config.device)
        harness.start(config, run_dir)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as progress:
        sweep = harness.Sweep(config, run_dir)
        todo = sweep.todo()
        task = progress.add_task("peak GEMM, exports, parity...", total=len(todo))

        def on_cell(row: dict) -> None:
            label = (f"resnet{row['depth']} {row['backend']} {row['precision']} {row['mode']} "
                     f"b{row['batch_size']}: {row['status']}")
            progress.update(task, advance=1, description=label)

        sweep.on_cell = on_cell
        with stdout_to_stderr():
            writer = sweep.run()
    rows = [{**row, "run_dir": str(run_dir)} for row in writer.rows]
    emit(rows, args.format, title=f"run {run_dir.name}", columns=SUMMARY_COLUMNS)
    print(run_dir, file=sys.stdout if args.format == "table" else sys.stderr)  # JSON / CSV: stdout is data
    return 0


LOADGEN_COLUMNS = ["scenario", "backend", "precision", "batch_size", "target_qps", "qps", "latency_ms_p50",
                   "latency_ms_p90", "latency_ms_p99", "early_stopping_ms", "loadgen_valid", "closed_loop_images_per_s",
                   "closed_loop_latency_ms_p90", "parity_status", "status"]


def cmd_loadgen(args: argparse.Namespace) -> int:
    import math

    from resnet_bench import fingerprint, harness
    from resnet_bench.parity import image_files
    from resnet_bench.results import RunWriter
    from resnet_bench.scenarios.loadgen import MULTISTREAM_SAMPLES, loadgen_version
    from resnet_bench.scenarios.loadgen_run import LoadgenConfig, read_labels, run_cell

    config = LoadgenConfig(depth=args.depth, backend=args.backend, precision=args.precision, device=args.device,
                           scenarios=args.scenario, duration=args.duration, percentile=args.percentile,
                           latency_bound_ms=args.latency_bound_ms, server_qps=args.server_qps,
                           server_mode=args.server_mode, offline_batches=args.offline_batches, variant=args.variant,
                           weights=args.weights, input_size=args.input_size, threads=args.threads,
                           artifacts=args.artifacts, images=args.images, labels=args.labels,
                           accuracy_count=args.count)
    if loadgen_version() == "?":
        raise ValueError("LoadGen is not installed: pip install mlcommons-loadgen")
    limits.require_device(config.device)
    limits.require_batch(max(MULTISTREAM_SAMPLES, *config.plan().offline_batches), config.input_size,
                         "--offline-batches")
    if config.images:
        image_files(config.images)
    if config.labels:
        read_labels(config.labels, config.images)
    limits.require_writable(args.out, "--out")
    limits.require_writable(config.artifacts, "--artifacts")
    run_dir = harness.new_run_dir(Path(args.out), config.device)
    harness.start(config, run_dir)
    writer = RunWriter(run_dir)

    def progress(row: dict) -> None:
        print(f"loadgen: resnet{row['depth']} {row['backend']} {row['scenario']}: {row['status']}, "
              f"LoadGen {'VALID' if row.get('loadgen_valid') else 'INVALID'}", file=sys.stderr)

    with stdout_to_stderr():
        run_cell(config, run_dir, writer, fingerprint.collect()["fingerprint_id"], on_row=progress)
    writer.finish()
    rows = [{key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
            | {"run_dir": str(run_dir)} for row in writer.rows]
    emit(rows, args.format, title=f"LoadGen run {run_dir.name} ({config.plan().span.rules(config.plan().bound_ms)})",
         columns=LOADGEN_COLUMNS)
    print(run_dir, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def _require_machine(config, out_flag: str, out: Path) -> None:
    """Refuse, before anything is measured, a sweep this machine cannot run or record."""
    limits.require_device(config.device)
    limits.require_batch(max(config.batches), config.input_size, "--batches")
    limits.require_writable(out, out_flag)
    limits.require_writable(config.artifacts, "--artifacts")


def cmd_report(args: argparse.Namespace) -> int:
    from resnet_bench.report import build_report
    from resnet_bench.selection import Constraints

    constraints = Constraints(max_latency_ms=args.max_latency_ms, latency_percentile=args.latency_percentile,
                              min_throughput=args.min_throughput, max_rel_err=args.max_rel_err,
                              min_top1_agreement=args.min_top1_agreement, precisions=args.precisions,
                              devices=args.devices, depths=args.depths)
    path = build_report(args.run_dirs, args.out, constraints)
    print(path)
    print(path.with_suffix(".html"))
    return 0


def _emit_verdicts(rows: list[dict], fmt: str, title: str, columns: list[str]) -> None:
    if fmt == "markdown":
        import pandas as pd

        frame = pd.DataFrame(rows, columns=columns)
        counts = frame.verdict.value_counts().to_dict() if len(frame) else {}
        print(f"### {title}\n\n" + ", ".join(f"{v}: {n}" for v, n in counts.items()) + "\n")
        print(frame.to_markdown(index=False, floatfmt=".4g"))
    else:
        emit(rows, fmt, title=title, columns=columns)


COMPARE_COLUMNS = ["cell_id", "verdict", "ratio", "p_value", "n", "base_ms", "head_ms", "parity_worse", "reason"]


def cmd_compare(args: argparse.Namespace) -> int:
    from resnet_bench.compare import compare_runs, parse_threshold

    threshold = parse_threshold(args.threshold)
    if args.baseline:
        if len(args.runs) != 1:
            raise ValueError("--baseline takes one run directory (HEAD)")
        import json
        head = Path(args.runs[0])
        fingerprint = json.loads((head / "fingerprint.json").read_text())["fingerprint_id"]
        base = Path(args.baselines) / fingerprint
        if not (base / "results.csv").is_file():
            print(f"warning: no stored baseline for fingerprint {fingerprint} under {args.baselines}",
                  file=sys.stderr)
            _emit_verdicts([], args.format, f"{head}: no stored baseline", COMPARE_COLUMNS)
            return 0
    elif len(args.runs) == 2:
        base, head = map(Path, args.runs)
    else:
        raise ValueError("compare takes BASE and HEAD run directories (or HEAD with --baseline)")
    rows = compare_runs(base, head, threshold)
    _emit_verdicts(rows, args.format, f"{head} against {base} (threshold {threshold:.0%})", COMPARE_COLUMNS)
    failed = any(r["verdict"] == "regressed" or r["parity_worse"] for r in rows)
    if args.baseline:  # a trend check between jobs: warn, never fail (see MEASURING.md)
        if failed:
            print("warning: regressions against the stored baseline (between jobs: a hint, not a verdict)",
                  file=sys.stderr)
        return 0
    return 1 if failed else 0


def cmd_gate(args: argparse.Namespace) -> int:
    import time

    from resnet_bench import gate
    from resnet_bench.compare import parse_threshold

    repo = Path(__file__).resolve().parent.parent
    head = Path(args.head).resolve() if args.head else repo
    if not (head / "resnet_bench").is_dir():
        raise ValueError(f"--head {args.head}: not a resnet-bench source tree (no resnet_bench/ folder)")
    sizes = {name: value for name, value in (("rounds", args.rounds), ("blocks", args.blocks)) if value is not None}
    config = gate.GateConfig(cells=gate.select_cells(args.cells or [], args.input_size),
                             threshold=parse_threshold(args.threshold), plan=gate.GatePlan(**sizes),
                             artifacts=Path(args.artifacts).resolve())
    ref = args.ref or gate.merge_base(repo)
    start = time.perf_counter()
    with gate.worktree(ref, repo) as base_tree, stdout_to_stderr():
        rows = gate.run_gate(base_tree, head, config, progress=lambda text: print(f"gate: {text}", file=sys.stderr))
    columns = ["depth", "backend", "batch_size", "verdict", "ratio", "low", "high", "n", "k", "base_ms", "head_ms",
               "block_mad", "reason"]
    plan = config.plan
    _emit_verdicts(rows, args.format, f"gate: {'the working tree' if head == repo else head} against {ref[:12]} "
                   f"(threshold {config.threshold:.0%}, {plan.rounds} rounds x {plan.blocks} blocks, "
                   f"{time.perf_counter() - start:.0f} s)", columns)
    for line in gate.failures(rows):
        print(f"gate: FAIL {line}", file=sys.stderr)
    return 1 if gate.failures(rows) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="resnet-bench", description="Export, check and benchmark ResNet-18..152.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("flops", help="multiply-adds and params per depth against Table 1")
    p.add_argument("--variant", default="both", help="v1, v1.5 or both")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("time", help="time one depth with PyTorch eager on the CPU")
    _add_model_args(p)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_time)

    p = sub.add_parser("export", help="export to ONNX / OpenVINO IR / TensorRT engine (cached)")
    _add_model_args(p, depth_default=50)
    p.add_argument("--to", type=str_list, default=("onnx",), help="onnx,openvino,tensorrt")
    p.add_argument("--precision", type=str_list, default=("fp32",), help="fp32,fp16,int8")
    p.add_argument("--calibration-images", default=None, metavar="DIR",
                   help="int8: calibrate on these images (default: seeded synthetic ones)")
    p.add_argument("--calibration-count", type=int, default=32, help="int8: seeded calibration images")
    p.add_argument("--ort-int8", default="u8s8", help="int8 ONNX scheme: u8s8, s8s8, u8s8-rr, tensorrt")
    p.add_argument("--batches", type=int_list, default=(1,),
                   help="batch sizes the TensorRT profile must cover (min/opt/max)")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--static-batch", type=int, default=None, help="fix the batch axis (default: dynamic)")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--onnx", default=None, help="convert this ONNX file instead of exporting the model")
    p.add_argument("--out", default="artifacts", help="artifact store folder")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("parity", help="compare every backend x precision with PyTorch fp32")
    _add_model_args(p, depth_default=50)
    p.add_argument("--backends", type=str_list, default=("torch", "onnxruntime", "openvino"))
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", type=str_list, default=("fp32",), help="fp32,fp16,bf16")
    p.add_argument("--images", default=None, help="folder of real images (resize 256, crop 224)")
    p.add_argument("--count", type=int, default=32, help="seeded synthetic images when no --images")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the CPUs we may use)")
    p.add_argument("--cuda-graphs", action="store_true", help="torch on cuda: replay captured CUDA graphs")
    p.add_argument("--out", default="artifacts", help="artifact store folder")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("bench", help="the sweep: latency and throughput per depth x batch x backend")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--profile", default="quick", help="quick (ResNet-18/50, batch 1/8) or full")
    p.add_argument("--depths", type=int_list, default=None)
    p.add_argument("--batches", type=int_list, default=None)
    p.add_argument("--backends", type=str_list, default=None)
    p.add_argument("--precisions", type=str_list, default=None)
    p.add_argument("--modes", type=str_list, default=None, help="latency,throughput")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--artifacts", default=None, help="artifact store folder (default: artifacts)")
    p.add_argument("--out", default="results/runs", help="where run directories go")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="run only the cells missing there")
    p.add_argument("--warmup-iters", type=int, default=None, help="untimed calls per shape (default 20)")
    p.add_argument("--warmup-time", type=float, default=None, help="untimed seconds per shape (default 1)")
    p.add_argument("--min-iters", type=int, default=None, help="timed calls at least (default 36)")
    p.add_argument("--min-time", type=float, default=None, help="timed seconds at least (default 2)")
    p.add_argument("--max-time", type=float, default=None,
                   help="timed seconds at most (default: quick 30, full 20)")
    p.add_argument("--target-precision", type=_fraction, default=None,
                   help="stop once the median's 95%% interval is within ± this (1%% or 0.01; default: quick 2%%, "
                        "full 1%%); a cell that misses it by --max-time is marked invalid")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="torch on cuda: time CUDA graph replays (latency mode)")
    p.add_argument("--variant", default=None, help="v1 (paper) or v1.5 (torchvision, default)")
    p.add_argument("--weights", default=None, help="torchvision-format state_dict file (default: seeded)")
    p.add_argument("--images", default=None, help="parity on this folder of real images (default: seeded)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("loadgen", help="latency under load: MLPerf LoadGen scenarios for one depth x backend")
    _add_model_args(p, depth_default=50)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--scenario", type=str_list, default=("singlestream", "multistream", "offline", "server"),
                   help="singlestream,multistream,offline,server")
    p.add_argument("--latency-bound-ms", type=float, default=None,
                   help="Server's bound on the held percentile (default: 15 on cuda, 100 on cpu)")
    p.add_argument("--duration", default="quick", help="quick (seconds) or mlperf (600 s and the official counts)")
    p.add_argument("--percentile", type=int, default=None,
                   help="MultiStream's and Server's held percentile, 90 or 99 (default: quick 90, mlperf 99)")
    p.add_argument("--server-qps", type=float, default=None, help="one Server run at this QPS (default: peak search)")
    p.add_argument("--server-mode", default=None,
                   help="Server's instance: latency or throughput (default: latency on cpu, throughput on cuda)")
    p.add_argument("--offline-batches", type=int_list, default=None,
                   help="Offline runs the one of most images/s (default: 1,8 on cpu; 8,32,128 on cuda)")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--images", default=None, help="accuracy-run images (default: 32 seeded synthetic images)")
    p.add_argument("--labels", default=None, help="'file label' lines for --images: top-1 accuracy too")
    p.add_argument("--count", type=int, default=32, help="seeded accuracy images when no --images")
    p.add_argument("--artifacts", default="artifacts", help="artifact store folder")
    p.add_argument("--out", default="results/runs", help="where run directories go")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_loadgen)

    p = sub.add_parser("report", help="report.md / report.html / plots from one or more runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="results/report", help="output folder")
    p.add_argument("--max-latency-ms", type=float, default=None)
    p.add_argument("--latency-percentile", type=int, default=90, help="50, 90 or 99")
    p.add_argument("--min-throughput", type=float, default=None, help="images/s")
    p.add_argument("--max-rel-err", type=float, default=None, help="relative L2 error against PyTorch fp32")
    p.add_argument("--min-top1-agreement", type=float, default=None,
                   help="share of images whose top-1 class matches PyTorch fp32 (e.g. 0.99)")
    p.add_argument("--precisions", type=str_list, default=None)
    p.add_argument("--devices", type=str_list, default=None)
    p.add_argument("--depths", type=int_list, default=None)
    p.set_defaults(func=cmd_report)

    verdict_formats = (*FORMATS, "markdown")
    p = sub.add_parser("compare", help="BASE and HEAD runs: regressed / improved / unchanged / inconclusive")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="BASE HEAD (or HEAD with --baseline)")
    p.add_argument("--threshold", default="10%")
    p.add_argument("--baseline", action="store_true", help="against results/baselines/<fingerprint>: warn only")
    p.add_argument("--baselines", default="results/baselines")
    p.add_argument("--format", choices=verdict_formats, default="table")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("gate", help="PR gate: base ref and working tree over fresh processes, one job")
    p.add_argument("--ref", default=None, help="base git ref (default: merge-base with main)")
    p.add_argument("--head", default=None, help="source tree to test (default: this checkout's working tree)")
    p.add_argument("--rounds", type=int, default=None, help="fresh processes per side (default 8; a fixed plan)")
    p.add_argument("--blocks", type=int, default=None, help="blocks per process and cell (default 3)")
    p.add_argument("--threshold", default="10%")
    p.add_argument("--cells", type=str_list, default=None, help="depth/backend/batch,... (default: all gated)")
    p.add_argument("--input-size", type=int, default=None, help="image size of every cell (default: 224)")
    p.add_argument("--artifacts", default="artifacts")
    p.add_argument("--format", choices=verdict_formats, default="table")
    p.set_defaults(func=cmd_gate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # every validation error in the library is a ValueError
        sys.stderr.write(f"resnet-bench: error: {exc}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    except Exception as exc:  # an allocation failed: a batch or input size the estimate let through
        if not limits.is_out_of_memory(exc):
            raise
        first = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        sys.stderr.write(f"resnet-bench: error: out of memory, try a smaller batch or input size ({first})\n")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
