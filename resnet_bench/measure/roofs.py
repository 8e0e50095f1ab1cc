"""The roofs: what the hardware reaches in each precision, measured in the same run on the same
threads, that a cell's achieved FLOP/s are divided by (``peaks``, by the precision table's roof key).

A cell's fraction of peak must be over the peak of the precision it ran in: VNNI and AMX move
the int8 and bf16 peaks by an order of magnitude over fp32. On a CPU:

- fp32: the fastest of torch, ONNX Runtime and OpenVINO's fp32 matrix products and OpenVINO's
  3x3 convolution (``FP32_GEMMS``, ``fp32_gflops``): a roof that the network beats is no roof;
- int8: an 8-bit x 8-bit -> s32 product, the operation int8 convolutions are made of, through
  whichever runtime reaches most here (``INT8_GEMMS``), counted as 2 n^3 ops. On a 2-core
  AVX512-VNNI Zen 4 (n=2048): torch._int_mm ~850 GOP/s, ONNX Runtime MatMulInteger ~800,
  OpenVINO's int8 MatMul ~500 (it requantizes its input first): 4.6x the fp32 GEMM (184);
- bf16: torch.mm in bfloat16 (oneDNN: AVX512-BF16 or AMX where the CPU has them): ~417
  GFLOP/s there, as OpenVINO's bf16 MatMul (~415). The int8 and bf16 roofs are matrix products
  only; the fp32 roof includes a convolution.

On a GPU: torch.mm in fp32 with TF32 off (IEEE, what fp32 cells run), tf32, fp16 and bf16.
The fastest sample counts, not the median: noise only ever slows a sample down.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from resnet_bench.machine.isa import bf16_unavailable_reason
from resnet_bench.measure.timing import RULES, measure

DEFAULT_N = 2048


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
            timing = measure(lambda: torch.mm(a, b), RULES["roof"])
        else:
            # fp32_precision, not the legacy allow_tf32 flag: torch refuses to read settings made by a mix.
            previous = torch.backends.cuda.matmul.fp32_precision
            torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
            try:
                timing = measure(lambda: torch.mm(a, b), RULES["roof_gpu"], torch.cuda.synchronize)
            finally:
                torch.backends.cuda.matmul.fp32_precision = previous
    finally:
        torch.set_num_threads(previous_threads)
    return 2 * n**3 / (timing.stats()["latency_ms_min"] * 1e-3) / 1e9


def peaks(device: str, threads: int, keys: tuple[str, ...] = ("fp32",)) -> dict[str, float]:
    """Peak GFLOP/s (GOP/s for int8) per roof key of the precision table
    (``numerics.precision.PrecisionSpec.roof``), on ``threads`` threads in total: a cell's threads in every
    mode (throughput mode splits them over its requests). CPU: fp32, and int8 / bf16
    when ``keys`` asks for them. GPU: fp32 with TF32 off (IEEE, what fp32 cells run), tf32, fp16, bf16."""
    if device == "cpu":
        previous_threads = torch.get_num_threads()
        try:  # the fastest fp32 GEMM of torch, ONNX Runtime and OpenVINO at 2048, and the 3x3 convolution
            # (at 1024 as well, as before, doubled the roof's time, 13 s a depth, for nothing on the 2-core
            # AMX Xeon: the best of all was torch at 2048, 323.8 GFLOP/s; ONNX Runtime's 1024 product, 305
            # against its 298 at 2048, was below it. A CPU whose best is a 1024 product reads a lower roof.)
            found = {"fp32": max(fp32_gflops(threads).values())}
            if "int8" in keys:  # the fastest int8 matrix product this CPU has (torch, ORT, OpenVINO)
                found["int8"] = max(int8_gops(threads).values())
            if "bf16" in keys and bf16_unavailable_reason() is None:
                found["bf16"] = bf16_gflops(threads)
        finally:
            torch.set_num_threads(previous_threads)
        return found
    return {"fp32": gemm_gflops("cuda", torch.float32, tf32=False),
            "tf32": gemm_gflops("cuda", torch.float32, tf32=True),
            "fp16": gemm_gflops("cuda", torch.float16), "bf16": gemm_gflops("cuda", torch.bfloat16)}


def _operands(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 128, (n, n), dtype=np.uint8), rng.integers(-64, 64, (n, n), dtype=np.int8)


def _torch_int_mm(n: int, threads: int) -> Callable[[], object]:
    """torch._int_mm (s8 x s8 -> s32)."""
    torch.set_num_threads(threads)
    a, b = _operands(n)
    ta, tb = torch.from_numpy(a.astype(np.int8)), torch.from_numpy(b)
    return lambda: torch._int_mm(ta, tb)


def _onnxruntime_gemm(op: str, a: np.ndarray, b: np.ndarray, threads: int) -> Callable[[], object]:
    """One ``op`` node (MatMul, MatMulInteger) with ``b`` as a constant, on ``threads`` threads."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    out = TensorProto.INT32 if op == "MatMulInteger" else TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])], f"{op}_gemm",
        [helper.make_tensor_value_info("a", helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))],
        [helper.make_tensor_value_info("y", out, [a.shape[0], b.shape[1]])],
        [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"a": a})


def _onnxruntime_matmulinteger(n: int, threads: int) -> Callable[[], object]:
    """ONNX Runtime MatMulInteger (u8 x s8 -> s32, MLAS)."""
    return _onnxruntime_gemm("MatMulInteger", *_operands(n), threads)


def _openvino_request(model, x: np.ndarray, threads: int) -> Callable[[], object]:
    """``model`` compiled for the CPU on ``threads`` threads (LATENCY hint, f32 inference
    precision), ``x`` bound as its input (a copy: the array may go out of scope)."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                      "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x))
    return lambda: request.infer()


def _openvino_int8_matmul(n: int, threads: int) -> Callable[[], object]:
    """OpenVINO: u8 input and s8 weights with dequantization scales (the pattern NNCF
    writes), which the CPU plugin runs as an int8 oneDNN inner product."""
    a, b = _operands(n)
    return _openvino_request(_openvino_int8_model(a, b), a, threads)


def _openvino_int8_model(a: np.ndarray, b: np.ndarray):
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter(list(a.shape), ov.Type.u8, name="a")
    xf = ops.multiply(ops.convert(x, ov.Type.f32), ops.constant(np.float32(0.01)))
    w = ops.multiply(ops.convert(ops.constant(b.T.copy()), ov.Type.f32), ops.constant(np.float32(0.01)))
    return ov.Model([ops.matmul(xf, w, False, True)], [x], "int8_gemm")


def _fp32_operands(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)


def _onnxruntime_matmul_fp32(n: int, threads: int) -> Callable[[], object]:
    """ONNX Runtime MatMul in fp32 (MLAS's SGEMM, its own AVX-512 / AVX2 kernels)."""
    return _onnxruntime_gemm("MatMul", *_fp32_operands(n), threads)


def _openvino_matmul_fp32(n: int, threads: int) -> Callable[[], object]:
    """OpenVINO MatMul in f32 (its oneDNN inner product with constant weights)."""
    import openvino as ov
    from openvino import opset13 as ops

    a, b = _fp32_operands(n)
    x = ops.parameter([n, n], ov.Type.f32, name="a")
    model = ov.Model([ops.matmul(x, ops.constant(b.T.copy()), False, True)], [x], "fp32_gemm")
    return _openvino_request(model, a, threads)


def _torch_mm_fp32(n: int, threads: int) -> Callable[[], object]:
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    return lambda: torch.mm(a, b)


# The fp32 roof is the fastest of these: torch's CPU GEMM is not every CPU's fastest (on a 2-core
# AVX-512 Zen 4, torch.mm reached 198 GFLOP/s while OpenVINO's convolutions ran at 213, i.e. a
# "fraction of peak" of 1.08 against torch alone).
FP32_GEMMS: dict[str, Callable[[int, int], Callable[[], object]]] = {
    "torch.mm": _torch_mm_fp32,
    "onnxruntime MatMul": _onnxruntime_matmul_fp32,
    "openvino MatMul": _openvino_matmul_fp32,
}

INT8_GEMMS: dict[str, Callable[[int, int], Callable[[], object]]] = {
    "torch._int_mm": _torch_int_mm,
    "onnxruntime MatMulInteger": _onnxruntime_matmulinteger,
    "openvino int8 MatMul": _openvino_int8_matmul,
}


def _gops(fn: Callable[[], object], n: int) -> float:
    timing = measure(fn, RULES["roof"])
    return 2 * n**3 / (timing.stats()["latency_ms_min"] * 1e-3) / 1e9


def _best(gemms: dict, threads: int, n: int, implementations: tuple[str, ...] | None) -> dict[str, float]:
    result = {}
    for name in implementations or tuple(gemms):
        try:
            fn = gemms[name](n, threads)
        except ImportError:  # that runtime is not installed: left out
            continue
        result[name] = _gops(fn, n)
    return result


def int8_gops(threads: int, n: int = DEFAULT_N, implementations: tuple[str, ...] | None = None) -> dict[str, float]:
    """Best int8 GOP/s per implementation (an unavailable runtime is left out), and OpenVINO's int8
    3x3 convolution: the fp32 roof has its convolution, so the int8 roof has one too (a network's
    int8 convolutions are not matrix products of square operands either)."""
    found = _best(INT8_GEMMS, threads, n, implementations)
    if implementations is None:
        try:
            fn, ops = _openvino_conv3x3(threads, int8=True)
        except ImportError:
            return found
        found["openvino int8 Conv 3x3"] = ops / (measure(fn, RULES["roof"]).stats()["latency_ms_min"] * 1e-3) / 1e9
    return found


def fp32_gflops(threads: int, n: int = DEFAULT_N, implementations: tuple[str, ...] | None = None) -> dict[str, float]:
    """Best fp32 GFLOP/s per implementation (an unavailable runtime is left out), and OpenVINO's
    3x3 convolution: on a 2-core AVX-512 Zen 4 the square GEMMs reached 183-188 GFLOP/s while a
    512-channel 14x14 3x3 convolution reached 231 (of ~237 at 32 FLOP/cycle and 3.7 GHz) and
    ResNet-18 in OpenVINO 216: a roof that the network beats is no roof."""
    found = _best(FP32_GEMMS, threads, n, implementations)
    if implementations is None:
        try:
            fn, flops = _openvino_conv3x3(threads)
        except ImportError:
            return found
        timing = measure(fn, RULES["roof"])
        found["openvino Conv 3x3"] = flops / (timing.stats()["latency_ms_min"] * 1e-3) / 1e9
    return found


def _openvino_conv3x3(threads: int, channels: int = 512, size: int = 14, batch: int = 8,
                      int8: bool = False) -> tuple[Callable, int]:
    """A ResNet stage-4 3x3 convolution (``channels`` in and out, ``size`` x ``size``), f32; with
    ``int8``, its input and weights behind FakeQuantize nodes as NNCF writes them (u8 activations,
    s8 weights), which the CPU plugin runs as an int8 convolution."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([batch, channels, size, size], ov.Type.f32, name="x")
    w = ops.constant(rng.standard_normal((channels, channels, 3, 3), dtype=np.float32) * 0.01)
    source, weights = x, w
    if int8:
        def fake_quantize(node, low: float, high: float, levels: int):
            lo, hi = ops.constant(np.float32(low)), ops.constant(np.float32(high))
            return ops.fake_quantize(node, lo, hi, lo, hi, levels)

        source, weights = fake_quantize(x, 0.0, 4.0, 256), fake_quantize(w, -0.04, 0.04, 255)
    model = ov.Model([ops.convolution(source, weights, [1, 1], [1, 1], [1, 1], [1, 1])], [x],
                     "int8_conv3x3" if int8 else "conv3x3")
    run = _openvino_request(model, rng.standard_normal((batch, channels, size, size), dtype=np.float32), threads)
    return run, 2 * channels * channels * 9 * size * size * batch


def bf16_gflops(threads: int, n: int = DEFAULT_N) -> float:
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(torch.bfloat16)
    b = torch.randn(n, n, generator=generator).to(torch.bfloat16)
    return _gops(lambda: torch.mm(a, b), n)
