"""The roof: a large GEMM on the same device and threads, measured in the same run."""

from __future__ import annotations

import torch

from resnet_bench.timing import StopRule, measure

PEAK_RULE = StopRule(warmup_iters=3, warmup_s=0.5, min_iters=10, min_s=1.0, max_s=10.0)


def gemm_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32, n: int | None = None,
                threads: int | None = None, tf32: bool = False) -> float:
    """Best GFLOP/s of an n x n x n matrix product (2 n^3 FLOPs).

    A roof is what the hardware can reach, and on a shared machine noise only ever slows a
    sample down: so the fastest sample, not the median (which put ONNX Runtime's convolutions
    at 1.1x "peak" here)."""
    n = n or (2048 if device == "cpu" else 8192)
    previous_threads = torch.get_num_threads()
    if threads is not None:  # exactly the cell's threads in total, then back as they were
        torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device, dtype)
    b = torch.randn(n, n, generator=generator).to(device, dtype)
    sync = torch.cuda.synchronize if device == "cuda" else None
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        timing = measure(lambda: torch.mm(a, b), PEAK_RULE, sync)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
        torch.set_num_threads(previous_threads)
    return 2 * n**3 / (timing.stats()["latency_ms_min"] * 1e-3) / 1e9


def peaks(device: str, threads: int) -> dict[str, float]:
    """Peak GFLOP/s per compute precision, on ``threads`` threads in total: a cell's threads in
    every mode (throughput mode splits them over its requests). CPU: fp32. GPU: tf32 (what fp32
    convolutions run as by default in cuDNN) and fp16 (also the roof for bf16)."""
    if device == "cpu":
        return {"fp32": max(gemm_gflops("cpu", n=n, threads=threads) for n in (1024, 2048))}
    tf32 = gemm_gflops("cuda", torch.float32, tf32=True)
    fp16 = gemm_gflops("cuda", torch.float16)
    return {"fp32": tf32, "fp16": fp16, "bf16": fp16}
