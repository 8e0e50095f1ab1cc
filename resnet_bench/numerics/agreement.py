"""What a low-precision cell costs in accuracy, measured against PyTorch fp32 on the same images.

Error metrics (rel. L2, cosine) judge any model. Top-1 agreement needs care on the seeded
model: its top-1 margins (top-1 logit minus top-2 logit) are small, so tiny errors flip
images whose decision was a coin toss in fp32 already. So the agreement is also reported over
the images whose fp32 margin exceeds the cell's *logit noise*. Top-1 flips from class t1 to
class t2 (fp32's top two) exactly when the cell's error moves logit t2 up against logit t1 by
more than the margin: d = (out - ref)[t2] - (out - ref)[t1] > margin. So the noise that
matters is the spread of d, and the cell's logit noise is

    noise = 95th percentile over the images of |d|

An image whose margin exceeds it can flip only when its d is in the cell's worst 5% (or when
a third class overtakes, which needs a larger error still). So the figure answers: are the
disagreements only coin tosses (100%), or do some land on clear decisions (below)? By
construction at most 5% of all images can flip above the noise, so it describes, it does not
judge: the error metrics judge a seeded-model cell. The count of such images is reported
beside it; with few, the figure says little.
"""

from __future__ import annotations

import math

import numpy as np

from resnet_bench.numerics.tolerances import rel_l2, top1_agreement

NOISE_PERCENTILE = 95


def logit_noise(output: np.ndarray, reference: np.ndarray) -> float:
    """The cell's logit noise: the 95th percentile of |d|, the error in top-1 minus top-2."""
    out, ref = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    top2 = np.argsort(-ref, 1)[:, :2]
    error = np.take_along_axis(out - ref, top2, 1)
    return float(np.percentile(np.abs(error[:, 1] - error[:, 0]), NOISE_PERCENTILE))


def margins(reference: np.ndarray) -> np.ndarray:
    """Per image: top-1 logit minus top-2 logit."""
    top2 = np.sort(np.asarray(reference, np.float64), 1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def agreement(output: np.ndarray, reference: np.ndarray) -> dict:
    """Error metrics, top-1/top-5 agreement, and top-1 agreement over the images whose fp32
    margin exceeds the logit noise (None when there are none)."""
    out, ref = np.asarray(output, np.float64), np.asarray(reference, np.float64)
    cosine = np.sum(out * ref, 1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
    same = np.argmax(out, 1) == np.argmax(ref, 1)  # per image, for the confident subset
    top5 = [len(set(a) & set(b)) / 5 for a, b in zip(np.argsort(-out, 1)[:, :5], np.argsort(-ref, 1)[:, :5],
                                                       strict=True)]
    noise = logit_noise(out, ref)
    confident = margins(ref) > noise
    return {"rel_l2_err": rel_l2(out, ref), "cosine": float(cosine.min()),
            "top1_agreement": top1_agreement(out, ref),
            "top5_agreement": float(np.mean(top5)), "logit_noise": noise,
            "confident_images": int(confident.sum()), "images": len(ref),
            "confident_top1_agreement": float(same[confident].mean()) if confident.any() else None}


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, 1) == np.asarray(labels)))


# -- the precision of a proportion over the images ------------------------------------------------
Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def proportion_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (95% by default): good at small n and near 0 or 1,
    where the normal approximation's interval leaves [0, 1]."""
    if n <= 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(right_a: np.ndarray, right_b: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """b's accuracy minus a's on the same images, and its 95% interval (paired: only the images on
    which they disagree carry information; Wald's interval of a difference of paired proportions)."""
    a, b = np.asarray(right_a, bool), np.asarray(right_b, bool)
    n = len(a)
    if n == 0:
        return math.nan, math.nan, math.nan
    gained, lost = int(np.sum(~a & b)), int(np.sum(a & ~b))
    diff = (gained - lost) / n
    half = z * math.sqrt(max(0.0, gained + lost - (gained - lost) ** 2 / n)) / n
    return diff, diff - half, diff + half
