"""PyTorch -> ONNX with ``torch.onnx.export(dynamo=True)`` (the torch.export-based exporter).

Dynamic batch by default. Every export is verified: ``check_model(full_check=True)`` (which
runs strict shape inference) and, where ONNX Runtime is installed, a run at a batch size other
than the export example's, since this exporter has been known to fix the batch at 1.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from exporters.errors import ExportError
from resnet_bench.util.errors import first_message

# Opset 18 is the exporter's minimum and is read by ONNX Runtime 1.14+, OpenVINO 2023+ and
# TensorRT 8.6+.
DEFAULT_OPSET = 18
EXPORTER = "torch.onnx.export(dynamo=True)"
INPUT_NAME, OUTPUT_NAME = "images", "logits"
EXAMPLE_BATCH = 2  # torch.export specialises a dimension of size 1, so never export with 1


class _Float16(nn.Module):
    """fp16 weights and activations inside, fp32 at the boundary (two Cast nodes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


def export_onnx(model: nn.Module, path: Path, input_size: int, precision: str = "fp32",
                opset: int = DEFAULT_OPSET, static_batch: int | None = None) -> None:
    """Write ``model`` (not modified) as ONNX to ``path``."""
    import copy

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"...
    module = copy.deepcopy(model).eval()
    if precision == "fp16":
        module = _Float16(module).eval()
    batch = static_batch or EXAMPLE_BATCH
    example = torch.zeros(batch, model.conv1.in_channels, input_size, input_size)
    dynamic = None if static_batch else {"x": {0: torch.export.Dim("batch", min=1, max=4096)}}
    try:
        with warnings.catch_warnings():
            # torch 2.13's exporter pickles its own pytree specs through an API it deprecated
            # ("isinstance(treespec, LeafSpec) is deprecated", FutureWarning from copyreg): torch's
            # code calling torch's, nothing a caller can change; every other warning still shows.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*", category=FutureWarning)
            program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=dynamic,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        opset_version=opset, verbose=False)
    except Exception as exc:  # the exporter raises many types; say which step failed
        raise ExportError(f"torch.onnx.export failed: {first_message(exc)}") from exc
    program.save(str(path))


def read_onnx(path: str | Path) -> onnx.ModelProto:
    """Check an ONNX file (full check, the path form) and load it; ExportError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX file not found: {path}")
    try:
        onnx.checker.check_model(str(path), full_check=True)
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError, ValidationError, InferenceError...
        raise ExportError(f"cannot read ONNX file {path}: {first_message(exc)}") from exc


def batch_dim(model: onnx.ModelProto) -> int | str:
    """The first input's batch dimension: a number when fixed, its name when dynamic."""
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else dim.dim_param


def run_onnxruntime(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]
