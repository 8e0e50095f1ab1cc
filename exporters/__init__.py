"""Exporters: a model spec into verified, cached artifacts. ``pipeline`` is the one entry
(``Exporter``: ONNX, OpenVINO IR and TensorRT engines per precision, each verified against
PyTorch before it is stored); ``onnx_export``, ``openvino_export`` and ``tensorrt_export`` are
the converters; ``quantize`` and ``tensorrt_int8`` make INT8 artifacts (calibration, ONNX
Runtime QDQ, NNCF, explicit TensorRT quantization); ``store`` is the content-addressed artifact
store. Nothing here imports the sweep, the gate, the report or the CLI."""
