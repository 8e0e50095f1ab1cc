"""ONNX Runtime: CPU provider with explicit threads; CUDA provider with IO binding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnet_bench.backends.base import Backend, BackendOptions

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    target = "onnx"
    precisions = {"cpu": ("fp32", "fp16", "int8"), "cuda": ("fp32", "fp16")}  # int8: a static QDQ model

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (pip install 'resnet-bench[cpu]')"
        provider = PROVIDERS[options.device]
        if provider not in ort.get_available_providers():
            return (f"onnxruntime {ort.__version__} has no {provider} here "
                    f"(available: {', '.join(ort.get_available_providers())})")
        if options.device == "cuda":
            import torch
            if not torch.cuda.is_available():
                return "no CUDA device is visible"
        return super().unavailable_reason(options)

    def load(self, path: Path) -> None:
        import onnxruntime as ort

        self.ort = ort
        opts = self.options
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3
        # ORT sizes its pool from the host's cores, not the container's quota: set it.
        self.threads = self.threads_per_request()
        session_options.intra_op_num_threads = self.threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), session_options,
                                            providers=[PROVIDERS[opts.device]])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.binding = self.session.io_binding() if opts.device == "cuda" else None

    def prepare(self, images: np.ndarray) -> Any:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if self.binding is None:
            return images
        # On the GPU the input lives on the device, and the output stays there until fetch():
        # timings then cover the inference, not needless host copies.
        value = self.ort.OrtValue.ortvalue_from_numpy(images, "cuda", 0)
        self.binding.bind_ortvalue_input(self.input_name, value)
        self.binding.bind_output(self.output_name, "cuda", 0)
        return value

    def run(self, prepared: Any) -> Any:
        if self.binding is None:
            return self.session.run([self.output_name], {self.input_name: prepared})[0]
        self.session.run_with_iobinding(self.binding)
        return self.binding

    def worker(self, prepared: Any) -> Any:
        if self.binding is None:
            return super().worker(prepared)  # InferenceSession.run is thread-safe
        binding = self.session.io_binding()  # one binding per request stream
        binding.bind_ortvalue_input(self.input_name, prepared)
        binding.bind_output(self.output_name, "cuda", 0)

        def work() -> None:
            self.session.run_with_iobinding(binding)
            binding.synchronize_outputs()
        return work

    def sync(self) -> None:
        if self.binding is not None:
            self.binding.synchronize_outputs()

    def fetch(self, output: Any) -> np.ndarray:
        if self.binding is None:
            return output
        return self.binding.copy_outputs_to_cpu()[0]

    def close(self) -> None:
        self.session = None
        self.binding = None

    def describe(self) -> dict:
        return {"device_name": self.options.device, "provider": self.session.get_providers()[0],
                "compute_precision": self.options.precision, "threads": self.threads,
                "streams": self.in_flight() if self.options.mode == "throughput" else 1,
                "runtime_version": self.ort.__version__}
