"""ONNX -> OpenVINO IR (``.xml`` + ``.bin``) with OpenVINO's own converter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporters.errors import ExportError


def export_openvino(onnx_path: Path, xml_path: Path, precision: str) -> None:
    """fp32 keeps fp32 weights; fp16 stores compressed fp16 weights (the runtime decompresses)."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise ExportError("openvino is not installed (pip install 'resnet-bench[cpu]')") from exc
    model = ov.convert_model(str(onnx_path))
    # save_model compresses to fp16 by default: say what we want explicitly.
    ov.save_model(model, str(xml_path), compress_to_fp16=(precision == "fp16"))


def compile_cpu(xml_path: Path):
    """Compiled for the CPU with f32 as the float precision (an int8 IR still runs int8)."""
    import openvino as ov

    return ov.Core().compile_model(str(xml_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def run_openvino(xml_path: Path, images: np.ndarray) -> np.ndarray:
    return compile_cpu(xml_path)(images)[0]
