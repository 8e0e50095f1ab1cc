"""Post-training INT8 quantization: calibration data, ONNX Runtime static QDQ, NNCF for OpenVINO.

The calibration set is part of an INT8 artifact's identity: its hash goes into the key, so
the same images give a cache hit and other images give another artifact. NNCF and ONNX
Runtime's quantization tools are imported only inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exporters.errors import ExportError
from resnet_bench.model.images import load_images, synthetic_images
from resnet_bench.util.errors import first_message

CALIBRATION_SEED = 101  # not the seed of the verification (11), parity (0) or timing (5) images
CALIBRATION_COUNT = 32
CALIBRATION_BATCH = 8
NNCF_PRESET = "performance"  # symmetric activations and weights: what the CPU plugin runs fastest


@dataclass(frozen=True, eq=False)
class Calibration:
    images: np.ndarray = field(repr=False)
    kind: str  # synthetic or folder
    sha256: str

    def key_fields(self) -> dict:
        """By content: the same images under another path are the same calibration."""
        return {"kind": self.kind, "count": len(self.images), "sha256": self.sha256}

    def batches(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self.images), CALIBRATION_BATCH):
            yield self.images[start:start + CALIBRATION_BATCH]


def calibration_set(size: int, count: int = CALIBRATION_COUNT, folder: str | Path | None = None,
                    seed: int = CALIBRATION_SEED) -> Calibration:
    """``count`` seeded ImageNet-normalised images, or every image in ``folder`` prepared as
    ``parity --images`` prepares them (resize, centre-crop, normalise)."""
    if folder is not None:
        images, kind = load_images(folder, size), "folder"
    else:
        if count < 1:
            raise ValueError(f"calibration needs at least 1 image, got {count}")
        images, kind = synthetic_images(count, size, seed=seed).numpy(), "synthetic"
    images = np.ascontiguousarray(images, np.float32)
    digest = hashlib.sha256(str(images.shape).encode() + images.tobytes()).hexdigest()
    return Calibration(images, kind, digest)


# -- ONNX Runtime ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrtScheme:
    """How ``quantize_static`` quantizes: types, ranges and calibration method."""

    activations: str = "u8"  # u8 or s8
    weights: str = "s8"
    reduce_range: bool = False  # 7-bit weights: avoids VPMADDUBSW saturation on AVX2 without VNNI
    symmetric_activations: bool = False
    per_channel: bool = True
    method: str = "minmax"
    quantize_bias: bool = True  # int32 bias through a DequantizeLinear (TensorRT cannot parse it)
    weight_qdq_pair: bool = False  # fp32 weights with Q->DQ (TensorRT's pattern) instead of stored int8

    def key_fields(self) -> dict:
        return asdict(self)


# u8s8: ORT's default and its fastest on x86 (VNNI or not); s8s8 runs on the same kernels after
# a shift on x86; u8s8-rr is for AVX2 CPUs without VNNI; tensorrt is symmetric int8 throughout,
# which is what TensorRT's explicit quantization accepts (zero points 0, no uint8), with float
# bias and Q->DQ pairs on fp32 weights as TensorRT's Q/DQ guide lays them out.
ORT_SCHEMES = {
    "u8s8": OrtScheme(),
    "s8s8": OrtScheme(activations="s8"),
    "u8s8-rr": OrtScheme(reduce_range=True),
    "tensorrt": OrtScheme(activations="s8", symmetric_activations=True, quantize_bias=False,
                          weight_qdq_pair=True),
}
DEFAULT_ORT_SCHEME = "u8s8"


def ort_scheme(name: str) -> OrtScheme:
    if name not in ORT_SCHEMES:
        raise ValueError(f"unknown ONNX Runtime int8 scheme {name!r}; choose from {', '.join(ORT_SCHEMES)}")
    return ORT_SCHEMES[name]


def quantize_onnx(source: Path, target: Path, calibration: Calibration, scheme: OrtScheme) -> dict:
    """Static QDQ quantization of an fp32 ONNX file; returns what the manifest records."""
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    types = {"u8": QuantType.QUInt8, "s8": QuantType.QInt8}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    input_name = _onnx_input_name(source)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = calibration.batches()

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    extra = {"ActivationSymmetric": scheme.symmetric_activations, "WeightSymmetric": True,
             "QuantizeBias": scheme.quantize_bias, "AddQDQPairToWeight": scheme.weight_qdq_pair}
    try:
        with _quiet():
            quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=scheme.per_channel, reduce_range=scheme.reduce_range,
                            activation_type=types[scheme.activations], weight_type=types[scheme.weights],
                            calibrate_method=methods[scheme.method], extra_options=extra)
    except Exception as exc:  # the quantizer raises many types; say which step failed
        raise ExportError(f"onnxruntime quantize_static failed: {first_message(exc)}") from exc
    return {"quantizer": f"onnxruntime {onnxruntime.__version__} quantize_static (QDQ)",
            "scheme": scheme.key_fields(), "qdq": qdq_summary(target)}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Quantizers print progress bars on stdout (which must stay pure JSON with --format json)
    and log advice on the root logger: send the first to stderr, hold back the second."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        root.setLevel(level)


def _onnx_input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def qdq_summary(path: Path) -> dict:
    """How many Conv/Gemm nodes read dequantized (int8) weights, and the zero points' types."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    produced_by = {out: node for node in model.graph.node for out in node.output}
    compute = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    quantized = [n for n in compute if all(getattr(produced_by.get(i), "op_type", None) == "DequantizeLinear"
                                           for i in n.input[:2])]
    initializers = {i.name: i for i in model.graph.initializer}
    zero_points = [numpy_helper.to_array(initializers[n.input[2]]) for n in model.graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in initializers]
    return {"compute_nodes": len(compute), "quantized_compute_nodes": len(quantized),
            "quantize_nodes": sum(n.op_type == "QuantizeLinear" for n in model.graph.node),
            "activation_types": sorted({str(z.dtype) for z in zero_points}),
            "activation_zero_points_all_zero": all(not z.any() for z in zero_points)}


# -- OpenVINO / NNCF ---------------------------------------------------------------------------
def quantize_openvino(source: Path, target: Path, calibration: Calibration, preset: str = NNCF_PRESET) -> dict:
    """NNCF post-training quantization of an fp32 IR; returns what the manifest records."""
    try:
        import nncf
    except ImportError as exc:
        raise ExportError("openvino int8: NNCF is not installed (pip install 'resnet-bench[cpu]')") from exc
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    model = ov.Core().read_model(str(source))
    dataset = nncf.Dataset(list(calibration.batches()))
    subset = len(calibration.images)  # every calibration image
    try:
        with _quiet():
            quantized = nncf.quantize(model, dataset, preset=presets[preset], subset_size=subset)
    except Exception as exc:
        raise ExportError(f"nncf.quantize failed: {first_message(exc)}") from exc
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    return {"quantizer": f"nncf {nncf.__version__} quantize", "preset": preset, "subset_size": subset}


def executed_precisions(compiled) -> dict[str, dict[str, int]]:
    """Per layer type, how many layers OpenVINO actually runs in each precision (from the
    compiled model's runtime graph, e.g. {"Convolution": {"i8": 52, "f32": 1}})."""
    counts: dict[str, dict[str, int]] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer, precision = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
        counts.setdefault(layer, {})
        counts[layer][precision] = counts[layer].get(precision, 0) + 1
    return counts


def conv_precision_summary(counts: dict[str, dict[str, int]]) -> str:
    """'int8 52/53 convolutions' style summary of ``executed_precisions``."""
    convs = {**counts.get("Convolution", {})}
    total = sum(convs.values())
    low = sum(n for p, n in convs.items() if p in ("i8", "u8"))
    return f"int8 {low}/{total} convolutions" if low else f"{'/'.join(sorted(convs)) or 'no'} convolutions"
