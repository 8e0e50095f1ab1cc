"""``resnet-bench time``: one PyTorch CPU latency cell, timed by the sweep's scenario layer."""

from __future__ import annotations

from resnet_bench import scenarios
from resnet_bench.architecture import PAPER_GMACS, check_input_size, count_macs
from resnet_bench.backends import BackendOptions
from resnet_bench.backends.torch_backend import TorchBackend
from resnet_bench.model import build_model, synthetic_images
from resnet_bench.timing import SWEEP_RULE, StopRule


def time_torch_cpu(depth: int, variant: str = "v1.5", batch: int = 1, input_size: int = 224,
                   weights: str | None = None, rule: StopRule = SWEEP_RULE) -> dict:
    if batch < 1:
        raise ValueError(f"batch size must be at least 1, got {batch}")
    check_input_size(input_size)
    model = build_model(depth, variant, weights=weights)
    images = synthetic_images(batch, input_size, seed=7).numpy()
    with TorchBackend(BackendOptions("cpu", "fp32")) as backend:
        backend.load(model)
        measured = scenarios.latency(backend, backend.prepare(images), batch, rule)
        threads = backend.describe()["threads"]
    gmacs = count_macs(depth, variant, input_size) / 1e9
    return {
        "depth": depth, "variant": variant, "backend": "torch", "device": "cpu",
        "batch_size": batch, "input_size": input_size, "threads": threads, **measured.stats,
        "images_per_s": measured.images_per_s, "gmacs": gmacs, "paper_gmacs": PAPER_GMACS[depth],
        "achieved_gflops": 2 * gmacs * measured.images_per_s,
        "valid": not measured.reasons, "invalid_reasons": "; ".join(measured.reasons),
    }
