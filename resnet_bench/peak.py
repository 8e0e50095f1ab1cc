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
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=generator).to(device, dtype)
        b = torch.randn(n, n, generator=generator).to(device, dtype)
        if device != "cuda":
            timing = measure(lambda: torch.mm(a, b), PEAK_RULE)
        else:
            # fp32_precision, not the legacy allow_tf32 flag: torch refuses to read settings made by a mix.
            previous = torch.backends.cuda.matmul.fp32_precision
            torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
            try:
                timing = measure(lambda: torch.mm(a, b), PEAK_RULE, torch.cuda.synchronize)
            finally:
                torch.backends.cuda.matmul.fp32_precision = previous
    finally:
        torch.set_num_threads(previous_threads)
    return 2 * n**3 / (timing.stats()["latency_ms_min"] * 1e-3) / 1e9

def peaks(device: str, threads: int, keys: tuple[str, ...] = ("fp32",)) -> dict[str, float]:
    """Peak GFLOP/s (GOP/s for int8) per roof key of the precision table
    (``precision.PrecisionSpec.roof``), on ``threads`` threads in total: a cell's threads in every
    mode (throughput mode splits them over its requests). CPU: fp32, and int8 / bf16 (``roofs``)
    when ``keys`` asks for them. GPU: fp32 with TF32 off (IEEE, what fp32 cells run), tf32, fp16, bf16."""
    if device == "cpu":
        from resnet_bench import roofs
        from resnet_bench.isa import bf16_unavailable_reason

        previous_threads = torch.get_num_threads()
        try:  # the fastest fp32 GEMM of torch, ONNX Runtime and OpenVINO, at 1024 and 2048
            found = {"fp32": max(max(roofs.fp32_gflops(threads, n).values()) for n in (1024, 2048))}
            if "int8" in keys:  # the fastest int8 matrix product this CPU has (torch, ORT, OpenVINO)
                found["int8"] = max(roofs.int8_gops(threads).values())
            if "bf16" in keys and bf16_unavailable_reason() is None:
                found["bf16"] = roofs.bf16_gflops(threads)
        finally:
            torch.set_num_threads(previous_threads)
        return found
    return {"fp32": gemm_gflops("cuda", torch.float32, tf32=False),
            "tf32": gemm_gflops("cuda", torch.float32, tf32=True),
            "fp16": gemm_gflops("cuda", torch.float16), "bf16": gemm_gflops("cuda", torch.bfloat16)}
