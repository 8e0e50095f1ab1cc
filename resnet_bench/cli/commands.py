"""The commands: each parses nothing (``parser`` did), checks what this machine allows, calls
the library and prints through ``output``. Bad input raises ValueError (the CLI's exit 2)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from resnet_bench.cli.output import (
    WIDTH,
    emit,
    emit_verdicts,
    race_summary,
    run_summary,
    stdout_to_stderr,
    sweep_progress,
)
from resnet_bench.machine import limits
from resnet_bench.model.architecture import VARIANTS, check_input_size, check_variant
from resnet_bench.util.files import require_repo_root


def _progress(command: str):
    """A progress line on stderr, cut to the terminal summary's 100 columns (output.WIDTH)."""
    def say(text: str) -> None:
        line = f"{command}: {text}"
        print(line if len(line) <= WIDTH else line[:WIDTH - 1] + "…", file=sys.stderr)
    return say


def cmd_flops(args: argparse.Namespace) -> int:
    from resnet_bench.model.flops import flops_rows

    variants = VARIANTS if args.variant == "both" else (check_variant(args.variant),)
    rows = flops_rows(variants, check_input_size(args.input_size))
    emit(rows, args.format, title=f"ResNet multiply-adds at {args.input_size}x{args.input_size} "
         "(convs + fc, the paper's convention)")
    return 0


def cmd_time(args: argparse.Namespace) -> int:
    from resnet_bench.sweep.single import rule_with_max, time_torch_cpu

    limits.require_batch(args.batch, args.input_size)
    rule = rule_with_max(args.max_time)
    with stdout_to_stderr():
        row = time_torch_cpu(args.depth, args.variant, args.batch, args.input_size, args.weights, rule)
    emit([row], args.format, title="PyTorch eager, CPU, single-stream latency")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from exporters.pipeline import ExportOptions, export
    from resnet_bench.model.spec import ModelSpec

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
    from resnet_bench.backends import BackendOptions, backend_class
    from resnet_bench.model.images import CHUNK, parity_images
    from resnet_bench.model.spec import ModelSpec
    from resnet_bench.numerics.precision import check_precision
    from resnet_bench.parity.verdict import run_parity

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


def _require_machine(config, out_flag: str, out: Path) -> None:
    """Refuse, before anything is measured, a sweep this machine cannot run or record."""
    limits.require_device(config.device)
    limits.require_batch(max(config.batches), config.input_size, "--batches")
    limits.require_writable(out, out_flag)
    limits.require_writable(config.artifacts, "--artifacts")


def cmd_bench(args: argparse.Namespace) -> int:
    import pandas as pd

    from resnet_bench.report.load import confirmations
    from resnet_bench.results.runs import RunWriter, new_run_dir, start
    from resnet_bench.select.confirm import ConfirmPlan
    from resnet_bench.select.pick import confirm_run
    from resnet_bench.select.rules import Constraints, select
    from resnet_bench.sweep.config import SweepConfig, resume
    from resnet_bench.sweep.sweep import Sweep

    if args.resume:
        run_dir = Path(args.resume)
        config = resume(run_dir)
        _require_machine(config, "--resume", run_dir)
    else:
        given = {"warmup_iters": args.warmup_iters, "warmup_s": args.warmup_time,
                 "min_iters": args.min_iters, "min_s": args.min_time, "max_s": args.max_time,
                 "target_precision": args.target_precision}
        config = SweepConfig.from_profile(
            args.profile, args.device, depths=args.depths, batches=args.batches, backends=args.backends,
            precisions=args.precisions, modes=args.modes, input_size=args.input_size, threads=args.threads,
            artifacts=args.artifacts, cuda_graphs=args.cuda_graphs, weights=args.weights, variant=args.variant,
            images=args.images, labels=args.labels, calibration_images=args.calibration_images,
            max_accuracy_drop=args.max_accuracy_drop, min_top1_agreement=args.min_top1_agreement,
            roofs=False if args.no_roofs else None,
            rule_overrides={k: v for k, v in given.items() if v is not None})
        _require_machine(config, "--out", Path(args.out))
        run_dir = new_run_dir(Path(args.out), config.device)
        start(config, run_dir)
    constraints = Constraints(max_latency_ms=args.max_latency_ms, latency_percentile=args.latency_percentile)
    if args.confirm_s < 0:
        raise ValueError(f"--confirm-s must be 0 (skip) or more, got {args.confirm_s:g}")
    sweep = Sweep(config, run_dir)
    with sweep_progress(len(sweep.todo())) as on_cell:
        sweep.on_cell = on_cell
        with stdout_to_stderr():
            writer = sweep.run()
    if args.confirm_s > 0:
        with stdout_to_stderr():
            confirm_run(run_dir, constraints, ConfirmPlan(budget_s=args.confirm_s), Path(config.artifacts).resolve(),
                        progress=_progress("confirm"))
        writer = RunWriter(run_dir)
    rows = [{**row, "run_dir": str(run_dir)} for row in writer.rows]
    if args.format != "table":  # JSON / CSV: stdout is the data, every row and column
        emit(rows, args.format)
        print(run_dir, file=sys.stderr)
        return 0
    picked = select(pd.DataFrame(writer.rows).assign(machine="this machine"), constraints,
                    confirmations([run_dir]))
    run_summary(writer.rows, run_dir, [pick["reason"] for pick in picked.picks] + picked.misses
                + list(picked.excluded.values()))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from rich.console import Console

    from resnet_bench.results.runs import RunWriter, new_run_dir, start
    from resnet_bench.select.pick import SelectConfig, answer, select_target
    from resnet_bench.select.race import Limits

    config = SelectConfig(device=args.device, depth=args.depth, max_latency_ms=args.max_latency_ms,
                          latency_percentile=args.latency_percentile, min_throughput=args.min_throughput,
                          max_accuracy_drop=args.max_accuracy_drop, precisions=args.precisions, backends=args.backends,
                          batches=args.batches, modes=args.modes, budget_s=args.budget_s, input_size=args.input_size,
                          variant=args.variant, weights=args.weights, images=args.images, labels=args.labels,
                          calibration_images=args.calibration_images, threads=args.threads, artifacts=args.artifacts)
    config.candidates()  # a filter that leaves nothing is bad input, before anything is measured
    _require_machine(config.sweep(), "--out", Path(args.out))
    run_dir = new_run_dir(Path(args.out), config.device)
    start(config, run_dir)
    with stdout_to_stderr():
        ended = select_target(config, run_dir, progress=_progress("select"))
    rows = RunWriter(run_dir).rows
    if args.format != "table":
        emit(rows, args.format)
        print(run_dir, file=sys.stderr)
        return 0
    console = Console(width=WIDTH)
    console.print(answer(rows, ended, Limits(config.max_latency_ms, config.latency_percentile,
                                             config.min_throughput)))
    race_summary(console, rows, ended["rounds"], config.latency_percentile)
    console.print(f"run folder: {run_dir}")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    import time

    from resnet_bench.fleet.cluster import ray_module
    from resnet_bench.fleet.run import FleetConfig, run_fleet
    from resnet_bench.results.runs import RunWriter
    from resnet_bench.sweep.config import SweepConfig

    ray_module()  # without Ray: one line, exit 2, before anything else
    given = {"max_s": args.max_time, "min_iters": args.min_iters}
    sweep = SweepConfig.from_profile(args.profile, args.device, depths=args.depths, batches=args.batches,
                                     backends=args.backends, precisions=args.precisions, modes=args.modes,
                                     input_size=args.input_size, roofs=False if args.no_roofs else None,
                                     rule_overrides={k: v for k, v in given.items() if v is not None})
    out = Path(args.resume) if args.resume else Path(args.out) / time.strftime("%Y%m%d-%H%M%S-fleet")
    if args.resume and not (out / "fleet.json").is_file():
        raise ValueError(f"--resume {out}: not a fleet folder (no fleet.json)")
    limits.require_writable(out.parent, "--out")
    config = FleetConfig(args.address, sweep, out, args.prices, args.node_artifacts, args.node_ip)
    with stdout_to_stderr():
        run_fleet(config, progress=_progress("fleet"), resume=bool(args.resume))
    rows = [row for folder in sorted(out.iterdir()) if (folder / "results.csv").is_file()
            for row in RunWriter(folder).rows]
    if args.format != "table":
        emit(rows, args.format)
    else:
        for kind in sorted({r.get("machine_kind") for r in rows}):
            run_summary([r for r in rows if r.get("machine_kind") == kind], f"{out} ({kind})")
    print(out, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


LOADGEN_COLUMNS = ["scenario", "backend", "precision", "batch_size", "target_qps", "qps", "latency_ms_p50",
                   "latency_ms_p90", "latency_ms_p99", "early_stopping_ms", "loadgen_valid", "closed_loop_images_per_s",
                   "closed_loop_latency_ms_p90", "parity_status", "status"]


def cmd_loadgen(args: argparse.Namespace) -> int:
    from resnet_bench.machine import fingerprint
    from resnet_bench.results.runs import RunWriter, new_run_dir, start
    from resnet_bench.scenarios.loadgen.cell import LoadgenConfig, run_cell
    from resnet_bench.scenarios.loadgen.settings import MULTISTREAM_SAMPLES, loadgen_version

    config = LoadgenConfig(depth=args.depth, backend=args.backend, precision=args.precision, device=args.device,
                           scenarios=args.scenario, duration=args.duration, percentile=args.percentile,
                           latency_bound_ms=args.latency_bound_ms, server_qps=args.server_qps,
                           server_mode=args.server_mode, offline_batches=args.offline_batches, variant=args.variant,
                           weights=args.weights, input_size=args.input_size, threads=args.threads,
                           artifacts=args.artifacts, images=args.images, labels=args.labels,
                           calibration_images=args.calibration_images, max_accuracy_drop=args.max_accuracy_drop,
                           accuracy_count=args.count, batching=not args.no_batching, cuda_graphs=args.cuda_graphs,
                           max_steps=args.search_steps)
    if loadgen_version() == "?":
        raise ValueError("LoadGen is not installed: pip install mlcommons-loadgen")
    limits.require_device(config.device)
    limits.require_batch(max(MULTISTREAM_SAMPLES, *config.plan().offline_batches), config.input_size,
                         "--offline-batches")
    limits.require_writable(args.out, "--out")
    limits.require_writable(config.artifacts, "--artifacts")
    run_dir = new_run_dir(Path(args.out), config.device)
    start(config, run_dir)
    writer = RunWriter(run_dir)

    def progress(row: dict) -> None:
        print(f"loadgen: resnet{row['depth']} {row['backend']} {row['scenario']}: {row['status']}, "
              f"LoadGen {'VALID' if row.get('loadgen_valid') else 'INVALID'}", file=sys.stderr)

    with stdout_to_stderr():
        run_cell(config, run_dir, writer, fingerprint.collect(), on_row=progress)
    writer.finish()
    rows = [{key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
            | {"run_dir": str(run_dir)} for row in writer.rows]
    emit(rows, args.format, title=f"LoadGen run {run_dir.name} ({config.plan().span.rules(config.plan().bound_ms)})",
         columns=LOADGEN_COLUMNS)
    print(run_dir, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from resnet_bench.report import build_report
    from resnet_bench.select.rules import Constraints

    constraints = Constraints(max_latency_ms=args.max_latency_ms, latency_percentile=args.latency_percentile,
                              min_throughput=args.min_throughput, max_rel_err=args.max_rel_err,
                              min_top1_agreement=args.min_top1_agreement, max_accuracy_drop=args.max_accuracy_drop,
                              precisions=args.precisions,
                              devices=args.devices, depths=args.depths)
    path = build_report(args.run_dirs, args.out, constraints)
    print(path)
    print(path.with_suffix(".html"))
    return 0


COMPARE_COLUMNS = ["cell_id", "verdict", "ratio", "low", "high", "n", "base_ms", "head_ms", "parity_worse", "reason"]


def cmd_compare(args: argparse.Namespace) -> int:
    from resnet_bench.gate.compare import compare_runs, stored_baseline
    from resnet_bench.gate.statistics import ONE_PROCESS_WARNING, parse_threshold

    threshold = parse_threshold(args.threshold)
    if args.baseline:
        if len(args.runs) != 1:
            raise ValueError("--baseline takes one run directory (HEAD)")
        head = Path(args.runs[0])
        fingerprint, base = stored_baseline(head, args.baselines)
        if base is None:
            print(f"warning: no stored baseline for fingerprint {fingerprint} under {args.baselines}",
                  file=sys.stderr)
            emit_verdicts([], args.format, f"{head}: no stored baseline", COMPARE_COLUMNS)
            return 0
    elif len(args.runs) == 2:
        base, head = map(Path, args.runs)
    else:
        raise ValueError("compare takes BASE and HEAD run directories (or HEAD with --baseline)")
    rows = compare_runs(base, head, threshold)
    emit_verdicts(rows, args.format, f"{head} against {base} (threshold {threshold:.0%})", COMPARE_COLUMNS)
    timed = [r["verdict"] for r in rows if r["verdict"] in ("slower", "faster", "within")]
    if timed:  # a difference, never a timing verdict
        print(f"warning: {timed.count('slower')} cell(s) slower and {timed.count('faster')} faster by more than "
              f"{threshold:.0%}, {timed.count('within')} within; {ONE_PROCESS_WARNING}", file=sys.stderr)
    worse = [r["cell_id"] for r in rows if r["parity_worse"]]
    if worse and args.baseline:  # a trend check between jobs: warn, never fail (see MEASURING.md)
        print(f"warning: parity got worse against the stored baseline in {len(worse)} cell(s)", file=sys.stderr)
        return 0
    return 1 if worse else 0


GATE_COLUMNS = ["depth", "backend", "batch_size", "verdict", "ratio", "low", "high", "n", "k", "base_ms", "head_ms",
                "block_mad", "reason"]


def cmd_gate(args: argparse.Namespace) -> int:
    from resnet_bench.gate import git
    from resnet_bench.gate import run as gate
    from resnet_bench.gate.statistics import parse_threshold

    repo = require_repo_root("gate")
    head = Path(args.head).resolve() if args.head else repo
    if not (head / "resnet_bench").is_dir():
        raise ValueError(f"--head {args.head}: not a resnet-bench source tree (no resnet_bench/ folder)")
    sizes = {"blocks": args.blocks} if args.blocks is not None else {}
    plan = gate.GatePlan.fixed(args.rounds, **sizes) if args.rounds is not None else gate.GatePlan(**sizes)
    config = gate.GateConfig(cells=gate.select_cells(args.cells or [], args.input_size),
                             threshold=parse_threshold(args.threshold), plan=plan,
                             artifacts=Path(args.artifacts).resolve())
    ref = args.ref or git.merge_base(repo)
    begin = time.perf_counter()
    with git.worktree(ref, repo) as base_tree, stdout_to_stderr():
        base, tip = git.tree_provenance(base_tree), git.tree_provenance(head)
        rows = gate.run_gate(base_tree, head, config, progress=_progress("gate"))
    for row in rows:  # what each side was: the dirtiness is said, never refused
        row.update(base_commit=base["commit"], base_dirty=base["dirty"], head_commit=tip["commit"],
                   head_dirty=tip["dirty"])
    plan = config.plan
    tip_text = (f"{tip['commit'][:12]}{' with uncommitted changes' if tip['dirty'] else ''}" if tip["commit"]
                else "a tree outside git")
    emit_verdicts(rows, args.format, f"gate: {'the working tree' if head == repo else head} ({tip_text}) against "
                  f"{ref[:12]} ({(base['commit'] or '?')[:12]}) (threshold {config.threshold:.0%}, looks at "
                  f"{','.join(map(str, plan.looks))} rounds x {plan.blocks} blocks, "
                  f"{time.perf_counter() - begin:.0f} s)", GATE_COLUMNS)
    for line in gate.failures(rows):
        print(f"gate: FAIL {line}", file=sys.stderr)
    return 1 if gate.failures(rows) else 0


__all__ = ["cmd_bench", "cmd_compare", "cmd_export", "cmd_flops", "cmd_gate", "cmd_loadgen", "cmd_parity",
           "cmd_report", "cmd_time"]
