"""Parity: does a backend compute what PyTorch fp32 computes, on the same inputs?

A cell is a verdict with its numbers (pass / fail / unavailable / error), never an exception.
Tolerances live in ``numerics.tolerances.TOLERANCES``; the precision table says which applies
to a backend x device x precision and what compute precision the backend must report.
A throughput-mode backend is checked through every one of its request streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from exporters.pipeline import Exporter
from resnet_bench.backends import Backend, BackendOptions
from resnet_bench.backends.open import open_backend
from resnet_bench.model.images import CHUNK, in_chunks
from resnet_bench.numerics import precision as precision_table
from resnet_bench.numerics.agreement import agreement
from resnet_bench.numerics.tolerances import TOLERANCES
from resnet_bench.util.errors import status_of


@dataclass(frozen=True)
class Verdict:
    backend: str
    precision: str
    device: str
    status: str  # pass / fail / unavailable / error
    max_abs_err: float | None = None
    mean_abs_err: float | None = None
    rel_l2_err: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    logit_noise: float | None = None  # accuracy.py: what top-1 agreement is judged against
    confident_images: int | None = None
    confident_top1_agreement: float | None = None
    reason: str = ""
    compute_precision: str | None = None
    threads: int | None = None
    streams: int | None = None
    provider: str | None = None
    # the logits judged (the first request stream's): accuracy is read from them, never printed
    output: np.ndarray | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "output"}


def compare(output: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(np.asarray(output, np.float64) - np.asarray(reference, np.float64))
    metrics = agreement(output, reference)
    metrics.pop("images")
    return {"max_abs_err": float(diff.max()), "mean_abs_err": float(diff.mean()), **metrics}


def judge(metrics: dict, precision: str) -> str:
    """Empty when within tolerance, else the reason in words. ``precision`` is a tolerance key."""
    tolerance = TOLERANCES[precision]
    reasons = []
    if metrics["rel_l2_err"] > tolerance.max_rel_l2:
        reasons.append(f"rel L2 {metrics['rel_l2_err']:.2e} > {tolerance.max_rel_l2:.0e}")
    if metrics["top1_agreement"] < tolerance.min_top1:
        reasons.append(f"top-1 agreement {metrics['top1_agreement']:.1%} < {tolerance.min_top1:.0%}")
    return "; ".join(reasons)


def reference_logits(exporter: Exporter, images: np.ndarray) -> np.ndarray:
    """PyTorch fp32's logits of ``images`` (the exporter's model), in chunks."""
    model = exporter.model()
    with torch.inference_mode():
        return in_chunks(lambda x: model(torch.from_numpy(x)).numpy(), images)


def failure(exc: BaseException) -> tuple[str, str]:
    """(status, reason) of a cell that could not be checked: unavailable or error (an
    allocation that failed is an error here: a verdict has no oom)."""
    status, reason = status_of(exc)
    return (status if status == "unavailable" else "error"), reason


def failed(cell: dict, exc: BaseException) -> Verdict:
    status, reason = failure(exc)
    return Verdict(**cell, status=status, reason=reason)


def check_cell(exporter: Exporter, backend: str, options: BackendOptions, images: np.ndarray,
               reference: np.ndarray) -> Verdict:
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    try:
        opened = open_backend(backend, options, exporter)
    except Exception as exc:  # a failing cell is a row, the matrix goes on
        return failed(cell, exc)
    with opened.backend as runner:
        return check_runner(runner, backend, images, reference)


def _stream_outputs(runner: Backend, images: np.ndarray) -> list[np.ndarray]:
    """The images through each of a throughput-mode backend's request streams (made as the
    throughput scenario makes them: ``Backend.streams``)."""
    per_worker: list[list[np.ndarray]] = [[] for _ in range(runner.in_flight())]
    for i in range(0, len(images), CHUNK):
        prepared = runner.prepare(images[i:i + CHUNK])
        for outputs, work in zip(per_worker, runner.streams(prepared), strict=True):
            output = work()
            if output is None:
                raise ValueError(f"{runner.name} workers return no output to check")
            outputs.append(np.array(runner.fetch(output)))
    return [np.concatenate(outputs) for outputs in per_worker]


def _worst(metrics: list[dict]) -> dict:
    worst = max(metrics, key=lambda m: m["rel_l2_err"])
    return {**worst, "top1_agreement": min(m["top1_agreement"] for m in metrics),
            "top5_agreement": min(m["top5_agreement"] for m in metrics)}


def check_runner(runner: Backend, backend: str, images: np.ndarray, reference: np.ndarray) -> Verdict:
    """The verdict for a backend already loaded (the harness times the same instance next).
    In throughput mode every worker's output is checked, and the worst one is the verdict."""
    options = runner.options
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    try:
        if options.mode == "throughput":
            outputs = _stream_outputs(runner, images)
        else:
            outputs = [in_chunks(runner.infer, images)]
    except Exception as exc:
        return failed(cell, exc)
    return judge_outputs(runner, backend, outputs, reference)


def judge_outputs(runner: Backend, backend: str, outputs: list[np.ndarray], reference: np.ndarray) -> Verdict:
    """The verdict on outputs a backend gave for the reference's images (the worst of several,
    e.g. one per request stream), with what the runtime says it ran."""
    options = runner.options
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    info = runner.describe()
    metrics = _worst([compare(output, reference) for output in outputs])
    reasons = [judge(metrics, precision_table.tolerance_key(backend, options.device, options.precision))]
    expected = precision_table.lookup(backend, options.device, options.precision)
    reported = info.get("compute_precision")
    if expected is not None and reported != expected.compute:
        reasons.append(f"runs {reported}, the precision table expects {expected.compute}")
    reason = "; ".join(r for r in reasons if r)
    return Verdict(**cell, status="fail" if reason else "pass", reason=reason, **metrics,
                   compute_precision=reported, threads=info.get("threads"),
                   streams=info.get("streams"), provider=info.get("provider"), output=outputs[0])


def run_parity(exporter: Exporter, backends: tuple[str, ...], device: str, precisions: tuple[str, ...],
               images: np.ndarray, threads: int | None = None, cuda_graphs: bool = False) -> list[Verdict]:
    reference = reference_logits(exporter, images)
    options = [BackendOptions(device, precision, threads, cuda_graphs=cuda_graphs) for precision in precisions]
    return [check_cell(exporter, backend, option, images, reference) for backend in backends for option in options]
