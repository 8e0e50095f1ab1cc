"""How close a backend's outputs must be to PyTorch fp32, by precision: the one table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_rel_l2: float  # ||y - ref|| / ||ref|| over the whole batch of logits
    min_top1: float  # fraction of images whose top-1 class agrees with the reference
    # with real weights and images: top-1 agreement over all images (parity.accuracy)
    min_real_top1: float = 0.99
    # picked only on an established accuracy (real weights and images): its error alone says
    # nothing of what it gets wrong (bf16, int8); the others are judged by parity
    needs_accuracy: bool = False


# fp32: different kernels and fused BatchNorm move a well-conditioned ResNet-152 by ~5e-6;
# 1e-4 leaves room for summation order and catches any real change (one tampered weight
# gives ~1e-2). fp16 (and fp16-compressed weights) round every weight: ~1e-2 measured.
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
#
# bf16 and int8 are judged on the seeded model by their error, not by top-1: its top-1 margins
# are so small that a rounding error flips many decisions that were coin tosses in fp32. The
# agreement over the images whose margin exceeds the cell's logit noise (numerics.agreement) is
# reported beside it; with real weights and images, parity.accuracy judges by top-1.
# Measured on 32 seeded images at 224x224 (AMD EPYC Zen 4, AVX512-BF16/VNNI):
# - bf16 (torch, OpenVINO): rel L2 0.027-0.031 (ResNet-18), 0.056-0.065 (ResNet-50); top-1
#   over all images 0.91-0.97, over the 19-26 images above the noise 1.0. bf16 keeps 8 bits of
#   mantissa (fp16: 11), so ~8x fp16's error; 0.1 leaves 1.5x margin over ResNet-50.
# - int8 (ORT QDQ u8s8/s8s8/u8s8-rr, symmetric TensorRT QDQ, NNCF): rel L2 0.10-0.15
#   (ResNet-18), 0.23-0.31 (ResNet-50), cosine >= 0.94; top-1 0.72-0.88 and 0.50-0.56, over
#   the images above the noise (8-14 and 2-5 of 32) 1.0 and 0.8-1.0. 0.5 is 1.6x the worst
#   measured; a calibration that misses the activations' range (tests: calibrated on blank
#   images) fails it.
# With real weights and images (min_real_top1): trained nets have wide margins, so agreement is
# judged over all images; published int8 ResNet-50s agree with fp32 on ~97-99% of ImageNet
# (not measured here: no real weights offline), bf16 on more. With labels, accuracy must also
# stay >= 99% of fp32's (MLPerf's closed-division rule), which is the verdict that matters.
# fp16 top-1 at least 0.9, not 0.99 (as tf32): the seeded model's near-tie images flip under any
# rounding; ONNX fp16 at ResNet-152 flipped 1 of 32 (96.9%) at rel. L2 1.25e-2, 4x inside its
# limit. With 0.99 every GPU fp16 cell with one such flip would fail parity and never be picked.
MIN_RELATIVE_ACCURACY = 0.99
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_rel_l2=1e-4, min_top1=0.99),
    "tf32": Tolerance(max_rel_l2=2e-2, min_top1=0.9),
    "fp16": Tolerance(max_rel_l2=5e-2, min_top1=0.9),
    "bf16": Tolerance(max_rel_l2=1e-1, min_top1=0.0, min_real_top1=0.98, needs_accuracy=True),
    "int8": Tolerance(max_rel_l2=5e-1, min_top1=0.0, min_real_top1=0.95, needs_accuracy=True),
}


def rel_l2(output: np.ndarray, reference: np.ndarray) -> float:
    output, reference = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(output - reference) / np.linalg.norm(reference))


def top1_agreement(output: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean(np.argmax(output, 1) == np.argmax(reference, 1)))
