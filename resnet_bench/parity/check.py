"""One configuration's parity and accuracy on a loaded backend, as a row's columns: what the sweep
and ``select`` both check before anything is timed."""

from __future__ import annotations

import numpy as np

from resnet_bench.model.images import EvaluationSet
from resnet_bench.parity.accuracy import AccuracyBudget, accuracy_columns
from resnet_bench.parity.verdict import Verdict, check_runner


def check(runner, backend: str, evaluation: EvaluationSet, reference: np.ndarray, budget: AccuracyBudget,
          real_weights: bool, calibration_sha256: str | None = None) -> tuple[Verdict, dict]:
    """The verdict on this instance, and the row's parity and accuracy columns. ``real_weights``:
    the model's weights were given (accuracy is judged only on real weights and real images)."""
    verdict = check_runner(runner, backend, evaluation.images, reference)
    columns = dict(parity_status=verdict.status, rel_l2_err=verdict.rel_l2_err,
                   top1_agreement=verdict.top1_agreement, images_sha256=evaluation.sha256,
                   calibration_sha256=calibration_sha256)
    if verdict.output is not None:
        columns.update(accuracy_columns(verdict.output, reference, evaluation.labels, runner.options.precision,
                                        budget, real=real_weights and evaluation.real))
    return verdict, columns
