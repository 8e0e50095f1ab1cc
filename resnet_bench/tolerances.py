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
#
# tf32 (a GPU's fp32 with TF32 convolutions / matrix products): the inputs of every conv and the
# fc are rounded to 10 mantissa bits (relative error <= 2^-11 = 4.9e-4 each), accumulated in fp32,
# every layer's output kept fp32. Emulated on the CPU (inputs and weights of every conv and fc
# rounded to nearest; seeded 224x224 images; tests/test_precision.py does the same at 64 px):
# rel L2 2.9e-3 / 6.3e-3 / 8.1e-3 for ResNet-18 / 50 (32 images) / 152 (16 images), top-1
# 32/32, 31/32, 15/16: near-tie images of the calibrated model flip. 2e-2 leaves 2.5x room over
# ResNet-152, stays below fp16's 5e-2 (fp16 also stores activations in 10 bits), and fails a
# broken conversion: truncating instead of rounding gave 2.4e-2 (ResNet-18) and 4.8e-2 with
# 28/32 top-1 (ResNet-50). top-1 at least 0.9: the odd near-tie flip passes, a drift does not.
# Without TF32 turned off, "fp32" on a GPU would be this, and fail the fp32 row.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_l2=1e-4, min_top1=0.99),
    "tf32": Tolerance(max_rel_l2=2e-2, min_top1=0.9),
    "fp16": Tolerance(max_rel_l2=5e-2, min_top1=0.99),
    "bf16": Tolerance(max_rel_l2=1e-1, min_top1=0.99),
}


def rel_l2(output: np.ndarray, reference: np.ndarray) -> float:
    output, reference = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(output - reference) / np.linalg.norm(reference))


def top1_agreement(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(np.argmax(output, 1) == np.argmax(reference, 1)))
