"""A single PyTorch CPU timing: what ``make bench`` runs until the full harness exists."""

from __future__ import annotations

import torch

from resnet_bench.architecture import PAPER_GMACS, check_input_size, count_macs
from resnet_bench.cpus import available_cpus
from resnet_bench.model import build_model, synthetic_images
from resnet_bench.timing import measure


def time_torch_cpu(depth: int, variant: str = "v1.5", batch: int = 1, input_size: int = 224,
                   weights: str | None = None) -> dict:
    if batch < 1:
        raise ValueError(f"batch size must be at least 1, got {batch}")
    check_input_size(input_size)
    threads = available_cpus()
    torch.set_num_threads(threads)
    model = build_model(depth, variant, weights=weights)
    images = synthetic_images(batch, input_size, seed=7)
    with torch.inference_mode():
        timing = measure(lambda: model(images))
    stats = timing.stats()
    gmacs = count_macs(depth, variant, input_size) / 1e9
    images_per_s = batch * 1e3 / stats["latency_ms_mean"]  # delivered rate: batch / mean latency
    return {
        "depth": depth, "variant": variant, "backend": "torch", "device": "cpu",
        "batch_size": batch, "input_size": input_size, "threads": threads, **stats,
        "images_per_s": images_per_s, "gmacs": gmacs, "paper_gmacs": PAPER_GMACS[depth],
        "achieved_gflops": 2 * gmacs * images_per_s,
        "valid": not timing.invalid_reasons(), "invalid_reasons": "; ".join(timing.invalid_reasons()),
    }
