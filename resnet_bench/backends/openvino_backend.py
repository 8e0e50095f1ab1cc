"""OpenVINO: the performance hint set explicitly, and what the compiled model chose read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from exporters.quantize import conv_precision_summary, executed_precisions
from resnet_bench.backends.base import Backend, BackendOptions
from resnet_bench.numerics import precision as precision_table
from resnet_bench.util.versions import package_version

# fp16 on the CPU means fp16-compressed weights, computed in f32 (the runtime decompresses).
# bf16 is computed in bf16 and needs a CPU with bf16 support (AVX512-BF16 / AMX).
# int8 is an NNCF-quantized IR: its quantized layers run int8, the rest f32.
COMPUTE = {"fp32": "f32", "fp16": "f32", "bf16": "bf16", "int8": "f32"}
OV_DEVICE = {"cpu": "CPU"}


class OpenVinoBackend(Backend):
    name = "openvino"
    target = "openvino"
    precisions = precision_table.supported("openvino")

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        try:
            import openvino as ov
        except ImportError:
            return "openvino is not installed (pip install 'resnet-bench[cpu]')"
        reason = super().unavailable_reason(options)
        if reason:
            return reason
        if options.precision == "bf16":
            capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in capabilities:
                return f"this CPU has no bf16 support (OpenVINO capabilities: {', '.join(capabilities)})"
        if options.precision == "int8":
            if package_version("nncf") is None:
                return "int8 needs NNCF to quantize the IR, and it is not installed (pip install nncf)"
        return None

    def load(self, path: Path) -> None:
        import openvino as ov

        self.ov = ov
        opts = self.options
        config = {
            "PERFORMANCE_HINT": opts.mode.upper(),  # LATENCY or THROUGHPUT, never the default
            "INFERENCE_PRECISION_HINT": COMPUTE[opts.precision],  # else it may pick bf16 itself
            "INFERENCE_NUM_THREADS": self.total_threads(),  # in total: its streams share them
        }
        if opts.streams is not None:
            config["NUM_STREAMS"] = opts.streams
        self.compiled = ov.Core().compile_model(str(path), OV_DEVICE[opts.device], config)
        self.request = self.compiled.create_infer_request()

    def in_flight(self) -> int:
        if self.options.mode == "latency":
            return 1
        # The THROUGHPUT hint chooses its streams within the threads; it says how many requests
        # keep them busy.
        return int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def threads_per_request(self) -> int:
        """Read back: the threads OpenVINO took (it caps them at the physical cores) over its streams."""
        get = self.compiled.get_property
        return max(1, int(get("INFERENCE_NUM_THREADS")) // int(get("NUM_STREAMS")))

    def _bind(self, request: Any, images: np.ndarray) -> np.ndarray:
        # Bind the input once, sharing the array's memory: a timed call is then only the
        # inference, as in benchmark_app, not a copy into the request.
        images = np.ascontiguousarray(images, dtype=np.float32)
        request.set_input_tensor(self.ov.Tensor(images, shared_memory=True))
        return images

    def prepare(self, images: np.ndarray) -> np.ndarray:
        return self._bind(self.request, images)

    def worker(self, prepared: np.ndarray) -> Any:
        request = self.compiled.create_infer_request()  # one request per stream of work
        self._bind(request, prepared)

        def work() -> Any:
            request.start_async()
            request.wait()
            return request
        return work

    def run(self, prepared: np.ndarray) -> Any:
        self.request.start_async()
        self.request.wait()
        return self.request

    def fetch(self, output: Any) -> np.ndarray:
        return np.array(output.get_output_tensor(0).data)  # a copy: the next call reuses the buffer

    def close(self) -> None:
        self.request = None
        self.compiled = None

    def describe(self) -> dict:
        get = self.compiled.get_property
        version = self.ov.get_version().split("-")[0]
        hint = get("INFERENCE_PRECISION_HINT").to_string()
        counts = executed_precisions(self.compiled)  # what really ran, per layer type
        executed = conv_precision_summary(counts)
        convs = counts.get("Convolution", {})
        all_int8 = bool(convs) and set(convs) <= {"i8", "u8"}
        # int8 only when every convolution ran in int8; else the summary, which the table refuses
        compute = ("int8" if all_int8 else executed) if self.options.precision == "int8" else hint
        return {"device_name": self.options.device, "provider": f"OpenVINO {version} CPU",
                "compute_precision": compute,
                "executed_precision": executed,
                "threads": int(get("INFERENCE_NUM_THREADS")), "streams": int(get("NUM_STREAMS")),
                "in_flight": self.in_flight(), "threads_per_request": self.threads_per_request(),
                "performance_hint": str(get("PERFORMANCE_HINT"))}
