"""How close a backend's outputs must be to PyTorch fp32, by precision: the one table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_rel_l2: float  # ||y - ref|| / ||ref|| over the whole batch of logits
    min_top1: float  # fraction of images whose top-1 class agrees with the reference


# fp32: different kernels and fused BatchNorm move a well-conditioned ResNet-152 by ~5e-6;
# 1e-4 leaves room for summation order and catches any real change (one tampered weight
# gives ~1e-2). fp16 (and fp16-compressed weights, bf16) round every weight: ~1e-2 measured.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_l2=1e-4, min_top1=0.99),
    "fp16": Tolerance(max_rel_l2=5e-2, min_top1=0.99),
    "bf16": Tolerance(max_rel_l2=1e-1, min_top1=0.99),
}


def rel_l2(output: np.ndarray, reference: np.ndarray) -> float:
    output, reference = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(output - reference) / np.linalg.norm(reference))


def top1_agreement(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(np.argmax(output, 1) == np.argmax(reference, 1)))
