"""The precision table: per backend x device x precision, what is built, what is set, what
actually runs, how close it must be to PyTorch fp32 and which roof it is measured against.

The one place that lists the precisions. ``fp32`` on a GPU means IEEE fp32: TF32 is off in
every runtime (TensorRT's builder flag, cuDNN / cuBLAS in PyTorch, ONNX Runtime's
``use_tf32``), and each backend reads the setting back into ``compute_precision``. ``tf32`` is
its own precision: fp32 storage, convolutions and matrix products with 10-bit-mantissa inputs
and fp32 accumulation, with its own tolerance and its own roof (a TF32 GEMM).
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class PrecisionSpec:
    backend: str
    device: str
    precision: str
    artifact: str | None  # the artifact precision it runs from (ONNX / IR / engine); None: the torch model
    tf32: bool | None  # TF32 allowed (set, then read back); None: no such setting (CPU)
    compute: str  # what the runtime reports it computes in (describe()["compute_precision"])
    tolerance: str  # key of numerics.tolerances.TOLERANCES
    roof: str  # key of measure.roofs.peaks(): the GEMM this cell's achieved FLOP/s are divided by
    note: str = ""


def _torch(backend: str) -> list[PrecisionSpec]:
    S = PrecisionSpec
    return [
        S(backend, "cpu", "fp32", None, None, "fp32", "fp32", "fp32"),
        S(backend, "cpu", "bf16", None, None, "bf16", "bf16", "bf16", "the model is cast to bf16"),
        S(backend, "cuda", "fp32", None, False, "fp32", "fp32", "fp32", "fp32_precision 'ieee' (conv, matmul)"),
        S(backend, "cuda", "tf32", None, True, "tf32", "tf32", "tf32", "fp32_precision 'tf32' (conv, matmul)"),
        S(backend, "cuda", "fp16", None, False, "fp16", "fp16", "fp16", "the model is cast to fp16 (not autocast)"),
        S(backend, "cuda", "bf16", None, False, "bf16", "bf16", "bf16", "the model is cast to bf16 (not autocast)"),
    ]


TABLE: tuple[PrecisionSpec, ...] = (
    *_torch("torch"),
    *_torch("torch-compile"),
    PrecisionSpec("onnxruntime", "cpu", "fp32", "fp32", None, "fp32", "fp32", "fp32"),
    PrecisionSpec("onnxruntime", "cpu", "fp16", "fp16", None, "fp16", "fp16", "fp16", "fp16 graph, fp32 in/out"),
    PrecisionSpec("onnxruntime", "cpu", "int8", "int8", None, "int8", "int8", "int8",
                  "static QDQ (u8s8 by default, per-channel weights, MinMax calibration)"),
    PrecisionSpec("onnxruntime", "cuda", "fp32", "fp32", False, "fp32", "fp32", "fp32", "use_tf32=0"),
    PrecisionSpec("onnxruntime", "cuda", "tf32", "fp32", True, "tf32", "tf32", "tf32", "use_tf32=1"),
    PrecisionSpec("onnxruntime", "cuda", "fp16", "fp16", False, "fp16", "fp16", "fp16", "fp16 graph, use_tf32=0"),
    PrecisionSpec("openvino", "cpu", "fp32", "fp32", None, "f32", "fp32", "fp32"),
    PrecisionSpec("openvino", "cpu", "fp16", "fp16", None, "f32", "fp16", "fp32", "fp16 weights, f32 compute"),
    PrecisionSpec("openvino", "cpu", "bf16", "fp32", None, "bf16", "bf16", "bf16", "INFERENCE_PRECISION_HINT bf16"),
    PrecisionSpec("openvino", "cpu", "int8", "int8", None, "int8", "int8", "int8",
                  "NNCF post-training quantization; executed precision read back from the runtime model"),
    PrecisionSpec("tensorrt", "cuda", "fp32", "fp32", False, "fp32", "fp32", "fp32", "BuilderFlag.TF32 cleared"),
    PrecisionSpec("tensorrt", "cuda", "tf32", "fp32", True, "tf32", "tf32", "tf32", "BuilderFlag.TF32 set"),
    PrecisionSpec("tensorrt", "cuda", "fp16", "fp16", False, "fp16", "fp16", "fp16",
                  "strongly typed fp16 graph; BuilderFlag.TF32 cleared"),
)

_INDEX = {(s.backend, s.device, s.precision): s for s in TABLE}
# The precisions an artifact (ONNX, IR, engine) is stored in: what the exporters build.
ARTIFACT_PRECISIONS = tuple(dict.fromkeys(s.artifact for s in TABLE if s.artifact))
if len(_INDEX) != len(TABLE):
    raise ValueError("the precision table lists a backend x device x precision twice")


def lookup(backend: str, device: str, precision: str) -> PrecisionSpec | None:
    """The table's row, or None when this backend does not run this precision on this device."""
    return _INDEX.get((backend, device, precision))


def require(backend: str, device: str, precision: str) -> PrecisionSpec:
    spec = lookup(backend, device, precision)
    if spec is None:
        allowed = supported(backend).get(device, ())
        raise ValueError(f"{backend} on {device} runs {', '.join(allowed) or 'nothing'}, not {precision}")
    return spec


def supported(backend: str) -> dict[str, tuple[str, ...]]:
    """device -> precisions, in the table's order (what ``Backend.precisions`` is)."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in TABLE:
        if spec.backend == backend:
            out[spec.device] = (*out.get(spec.device, ()), spec.precision)
    return out


def tolerance_key(backend: str, device: str, precision: str) -> str:
    spec = lookup(backend, device, precision)
    return spec.tolerance if spec else precision


def roof_key(backend: str, device: str, precision: str) -> str:
    spec = lookup(backend, device, precision)
    return spec.roof if spec else precision


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return precision
