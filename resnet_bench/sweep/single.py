"""``resnet-bench time``: one PyTorch CPU latency cell, timed as a sweep cell is."""

from __future__ import annotations

from resnet_bench.backends import BackendOptions
from resnet_bench.backends.torch_backend import TorchBackend
from resnet_bench.measure.timing import SWEEP_RULE, StopRule
from resnet_bench.model.architecture import check_input_size
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.network import build_model
from resnet_bench.results.rows import Run, measured_row
from resnet_bench.scenarios import closed_loop

# What ``time`` reports of the row, in this order (the cell's timing statistics in the middle).
HEAD = ("depth", "variant", "backend", "device", "batch_size", "input_size", "threads")
TAIL = ("images_per_s", "gmacs", "paper_gmacs", "achieved_gflops", "valid", "invalid_reasons")


def rule_with_max(max_s: float | None) -> StopRule:
    """The sweep's rule, stopped at ``max_s`` timed seconds when given."""
    return SWEEP_RULE if max_s is None else SWEEP_RULE.capped(max_s)


def time_torch_cpu(depth: int, variant: str = "v1.5", batch: int = 1, input_size: int = 224,
                   weights: str | None = None, rule: StopRule = SWEEP_RULE) -> dict:
    if batch < 1:
        raise ValueError(f"batch size must be at least 1, got {batch}")
    check_input_size(input_size)
    model = build_model(depth, variant, weights=weights)
    images = synthetic_images(batch, input_size, seed=7).numpy()
    cell = dict(depth=depth, variant=variant, backend="torch", precision="fp32", device="cpu", mode="latency",
                batch_size=batch, input_size=input_size)
    with TorchBackend(BackendOptions("cpu", "fp32")) as backend:
        backend.load(model)
        measured = closed_loop.latency(backend, backend.prepare(images), batch, rule)
        row = measured_row(cell, Run("time"), stats=measured.stats, images_per_s=measured.images_per_s,
                           reasons=measured.reasons, runtime=backend.describe())
    return {key: row[key] for key in (*HEAD, *measured.stats, *TAIL)}
