"""Accuracy: what a cell gets right on real labelled images, beside PyTorch fp32, judged by the
user's budget. The question low precision must answer before it is picked.

Three cases, by what the user gave:

* weights and labelled images (class folders, or a labels file): each precision's top-1
  accuracy with its 95% interval over the images (Wilson's), beside fp32's, and the relative
  drop with its interval (paired: the images the two disagree on). Judged by MLPerf's rule:
  a cell keeps at least ``1 - max_drop`` of fp32's top-1 (default 99%).
* weights and unlabelled real images: top-1 agreement with fp32 (interval) against a floor
  (``min_agreement``, default the precision's ``min_real_top1``).
* the seeded model (or synthetic images): there is no accuracy to keep. Precisions whose
  tolerance says they need an accuracy judgement (bf16, int8) are ``not established``: timed
  and shown, never picked. The others (fp32, tf32, fp16) are judged by parity alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from resnet_bench.numerics.agreement import paired_difference, proportion_interval
from resnet_bench.numerics.tolerances import TOLERANCES

STATUSES = ("pass", "fail", "not established", "not needed")
NOT_ESTABLISHED = ("accuracy not established: the seeded model on synthetic images has no accuracy to keep "
                   "(give --weights and labelled --images)")


@dataclass(frozen=True)
class AccuracyBudget:
    """How much accuracy the user gives up for speed."""

    max_drop: float = 0.01  # relative top-1 drop against fp32 (MLPerf: keep at least 99%)
    min_agreement: float | None = None  # unlabelled images: top-1 agreement floor (None: the precision's)

    def __post_init__(self) -> None:
        if not 0 < self.max_drop < 1:
            raise ValueError(f"--max-accuracy-drop must be between 0% and 100% (exclusive), got {self.max_drop:g}")
        if self.min_agreement is not None and not 0 < self.min_agreement <= 1:
            raise ValueError(f"top-1 agreement floor must be in (0, 1], got {self.min_agreement:g}")


def needs_accuracy(precision: str) -> bool:
    """Whether a precision is picked only on an established accuracy (its tolerance says so)."""
    tolerance = TOLERANCES.get(precision)
    return bool(tolerance and tolerance.needs_accuracy)


CLOSED_LOOP = ("latency", "throughput")  # the modes a pick compares (LoadGen rows are judged apart)


def accuracy_clause(row, max_drop: float | None = None) -> str:
    """'' when a result row (dict or pandas row) may be picked on accuracy, else why not, as one
    clause. ``max_drop``: a budget stricter (or looser) than the one the run judged with."""
    status = row.get("accuracy_status")
    status = status if isinstance(status, str) else ""
    drop = row.get("accuracy_drop")
    if max_drop is not None and isinstance(drop, float) and not math.isnan(drop):
        return "" if drop <= max_drop else f"its top-1 drops {drop:.1%}, over the {max_drop:.1%} allowed"
    if status == "fail":
        reason = row.get("accuracy_reason")
        return f"its accuracy failed ({reason})" if isinstance(reason, str) and reason else "its accuracy failed"
    if not needs_accuracy(row.get("precision")) or status == "pass":
        return ""
    return ("its accuracy is not established (the seeded model on synthetic images: give --weights and labelled "
            "--images)" if status in ("not established", "") else f"its accuracy is {status}")


def is_finalist(row, max_drop: float | None = None, max_rel_err: float | None = None,
                min_throughput: float | None = None) -> bool:
    """Whether a closed-loop result row makes its backend x precision a finalist: it ran, passed
    parity, may be picked on accuracy and meets every constraint but the latency budget (which
    the Server search decides). The one definition the sweep (which finalists get LoadGen) and
    the selection (whose Server peaks are compared) share."""
    def number(key: str) -> float:
        value = row.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan

    return (row.get("mode") in CLOSED_LOOP and row.get("status") == "ok" and row.get("parity_status") == "pass"
            and accuracy_clause(row, max_drop) == ""
            and (max_rel_err is None or number("rel_l2_err") <= max_rel_err)
            and (min_throughput is None or number("images_per_s") >= min_throughput))


def accuracy_columns(output: np.ndarray, reference: np.ndarray, labels: np.ndarray | None, precision: str,
                     budget: AccuracyBudget = AccuracyBudget(), real: bool = True) -> dict:
    """A row's accuracy columns for a cell's logits on the accuracy images, against PyTorch fp32's
    logits on the same images: agreement always; with labels, accuracy and drop; the verdict."""
    out, ref = np.asarray(output), np.asarray(reference)
    n = len(ref)
    agree = np.argmax(out, 1) == np.argmax(ref, 1)
    low, high = proportion_interval(int(agree.sum()), n)
    columns = {"accuracy_images": n, "top1_agreement": float(agree.mean()) if n else math.nan,
               "top1_agreement_low": low, "top1_agreement_high": high}
    if not real:
        needed = needs_accuracy(precision)
        return {**columns, "accuracy_status": "not established" if needed else "not needed",
                "accuracy_reason": NOT_ESTABLISHED if needed else ""}
    if labels is None:
        floor = budget.min_agreement if budget.min_agreement is not None else TOLERANCES[precision].min_real_top1
        ok = columns["top1_agreement"] >= floor
        reason = "" if ok else (f"top-1 agreement with fp32 {columns['top1_agreement']:.1%} ({low:.1%}-{high:.1%}) "
                                f"< {floor:.0%} on {n} unlabelled images")
        return {**columns, "accuracy_status": "pass" if ok else "fail", "accuracy_reason": reason}
    labels = np.asarray(labels)
    ref_right, out_right = np.argmax(ref, 1) == labels, np.argmax(out, 1) == labels
    fp32, top1 = float(ref_right.mean()), float(out_right.mean())
    top1_low, top1_high = proportion_interval(int(out_right.sum()), n)
    diff, diff_low, diff_high = paired_difference(ref_right, out_right)
    drop = -diff / fp32 if fp32 > 0 else math.nan
    drop_low, drop_high = (-diff_high / fp32, -diff_low / fp32) if fp32 > 0 else (math.nan, math.nan)
    ok = fp32 > 0 and top1 >= (1 - budget.max_drop) * fp32
    reason = "" if ok else (f"top-1 {top1:.1%} ({top1_low:.1%}-{top1_high:.1%}) against fp32's {fp32:.1%}: a drop "
                            f"of {drop:.1%} (95% interval {drop_low:.1%} to {drop_high:.1%}) over the "
                            f"{budget.max_drop:.1%} allowed, on {n} labelled images")
    return {**columns, "accuracy_top1": top1, "accuracy_top1_low": top1_low, "accuracy_top1_high": top1_high,
            "reference_accuracy_top1": fp32, "accuracy_drop": drop, "accuracy_drop_low": drop_low,
            "accuracy_drop_high": drop_high, "accuracy_status": "pass" if ok else "fail", "accuracy_reason": reason}


def check_inputs(classes: int, images: str | None, labels: str | None = None, calibration: str | None = None) -> None:
    """Bad input, before anything is measured: labels without images, labels naming images that
    are not there or classes the weights do not have, calibration images that are evaluation
    images too."""
    from resnet_bench.model.images import image_paths, labels_of, require_disjoint, require_labels_fit

    if labels is not None and images is None:
        raise ValueError("--labels needs --images (the labelled images)")
    if calibration is not None:
        image_paths(calibration)
    if images is None:
        return
    image_paths(images)  # a missing folder, or one without images, is bad input now
    found = labels_of(images, labels)
    if found is not None:
        require_labels_fit(found, classes, labels or f"{images} (class folders)")
    if calibration is not None:
        require_disjoint(calibration, images)
