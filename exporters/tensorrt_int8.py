"""INT8 TensorRT engines by explicit quantization: a symmetric-int8 Q/DQ ONNX, strongly typed.

TensorRT deprecated implicit quantization (calibrators and the INT8 builder flag) in 10.1; an
explicitly quantized network carries its scales in QuantizeLinear/DequantizeLinear nodes, and
a strongly typed network takes them as they are. TensorRT's Q/DQ must be symmetric int8 (zero
point 0, no uint8), so the ONNX comes from ``quantize.ORT_SCHEMES["tensorrt"]``.

``check_qdq`` needs only ONNX and runs anywhere; ``build_int8_engine`` needs TensorRT and a GPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporters import tensorrt_export
from exporters.errors import ExportError


def check_qdq(onnx_path: Path) -> dict:
    """Refuse a Q/DQ graph TensorRT cannot take as explicit quantization: every zero point
    must be int8 and 0, and every Conv/Gemm must read dequantized input and weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    produced_by = {out: node for node in model.graph.node for out in node.output}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        raise ExportError(f"{onnx_path.name} has no QuantizeLinear/DequantizeLinear nodes: not a Q/DQ model")
    biases = [n for n in qdq if getattr(initializers.get(n.input[0]), "dtype", None) == np.int32]
    for node in qdq:
        zero = initializers.get(node.input[2]) if len(node.input) > 2 else None
        if node not in biases and zero is not None and (zero.dtype != np.int8 or zero.any()):
            raise ExportError(f"{onnx_path.name}: {node.name} has a {zero.dtype} zero point, not int8 0: "
                              "TensorRT needs symmetric int8")
    if biases:
        raise ExportError(f"{onnx_path.name}: {biases[0].name} dequantizes an int32 bias, which TensorRT "
                          "cannot parse: quantize without bias quantization")
    compute = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    float_nodes = [n.name for n in compute
                   if any(getattr(produced_by.get(i), "op_type", None) != "DequantizeLinear" for i in n.input[:2])]
    if float_nodes:
        raise ExportError(f"{onnx_path.name}: {len(float_nodes)} Conv/Gemm nodes read float tensors "
                          f"(first: {float_nodes[0]}); they would run in float")
    return {"qdq_nodes": len(qdq), "int8_compute_nodes": len(compute)}


def build_int8_engine(onnx_path: Path, engine_path: Path, profiles: tuple[tensorrt_export.Profile, ...],
                      input_size: int, timing_cache: Path, tf32: bool = False) -> dict:
    """Check the Q/DQ graph, then build it as any strongly typed network: TensorRT reads the
    precision from the Q/DQ nodes (there is no INT8 flag or calibrator to set)."""
    import tensorrt as trt

    qdq = check_qdq(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    network = trt.Builder(logger).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")
    kinds = [network.get_layer(i).type for i in range(network.num_layers)]
    parsed = {"quantize_layers": kinds.count(trt.LayerType.QUANTIZE),
              "dequantize_layers": kinds.count(trt.LayerType.DEQUANTIZE)}
    if not parsed["quantize_layers"]:
        raise ExportError(f"TensorRT parsed no Quantize layers from {onnx_path.name}: it would build a float engine")
    extra = tensorrt_export.build_engine(onnx_path, engine_path, profiles, input_size, timing_cache, tf32=tf32)
    return {**extra, **qdq, **parsed, "quantization": "explicit (Q/DQ), strongly typed"}
