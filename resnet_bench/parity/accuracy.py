"""Accuracy with real weights and images: does a low-precision cell keep what fp32 gets right?

Top-1 agreement with PyTorch fp32 over all images (trained nets have wide margins) and, with
labels, top-1 accuracy relative to fp32's (MLPerf: a cell keeps at least 99% of it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from exporters.pipeline import Exporter
from resnet_bench.backends import BackendOptions
from resnet_bench.backends.open import open_backend
from resnet_bench.model.images import in_chunks
from resnet_bench.numerics.agreement import top1_accuracy
from resnet_bench.numerics.tolerances import MIN_RELATIVE_ACCURACY, TOLERANCES
from resnet_bench.parity.verdict import failure, reference_logits


@dataclass(frozen=True)
class AccuracyVerdict:
    """With real weights and images: top-1 agreement with PyTorch fp32 and, with labels,
    top-1 accuracy relative to fp32's (MLPerf: a cell keeps at least 99% of it)."""

    backend: str
    precision: str
    status: str  # pass / fail / unavailable / error
    images: int
    top1_agreement: float | None = None
    fp32_top1: float | None = None  # PyTorch fp32's accuracy against the labels
    top1: float | None = None  # this cell's accuracy against the labels
    relative_top1: float | None = None  # top1 / fp32_top1
    reason: str = ""

    def row(self) -> dict:
        return asdict(self)


def judge_accuracy(output: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
                   precision: str) -> dict:
    """The numbers of an AccuracyVerdict and the reason it fails ('' when it passes)."""
    tolerance = TOLERANCES[precision]
    agree = float(np.mean(np.argmax(output, 1) == np.argmax(reference, 1)))
    numbers: dict = {"top1_agreement": agree}
    reasons = []
    if agree < tolerance.min_real_top1:
        reasons.append(f"top-1 agreement {agree:.1%} < {tolerance.min_real_top1:.0%}")
    if labels is not None:
        fp32, top1 = top1_accuracy(reference, labels), top1_accuracy(output, labels)
        relative = top1 / fp32 if fp32 > 0 else None
        numbers.update(fp32_top1=fp32, top1=top1, relative_top1=relative)
        if relative is not None and relative < MIN_RELATIVE_ACCURACY:
            reasons.append(f"top-1 accuracy {top1:.1%} is {relative:.1%} of fp32's {fp32:.1%} "
                           f"(< {MIN_RELATIVE_ACCURACY:.0%})")
    return {**numbers, "reason": "; ".join(reasons)}


def accuracy_verdict(exporter: Exporter, backend: str, options: BackendOptions, images: np.ndarray,
                     labels: np.ndarray | None = None, reference: np.ndarray | None = None) -> AccuracyVerdict:
    """One backend x precision on real images against PyTorch fp32 (the exporter's weights)."""
    cell = dict(backend=backend, precision=options.precision, images=len(images))
    if reference is None:
        reference = reference_logits(exporter, images)
    try:
        opened = open_backend(backend, options, exporter)
        with opened.backend as runner:
            output = in_chunks(runner.infer, images)
    except Exception as exc:
        status, reason = failure(exc)
        return AccuracyVerdict(**cell, status=status, reason=reason)
    judged = judge_accuracy(output, reference, labels, options.precision)
    return AccuracyVerdict(**cell, status="fail" if judged["reason"] else "pass", **judged)
