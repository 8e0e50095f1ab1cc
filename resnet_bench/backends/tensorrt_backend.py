"""TensorRT: a serialized engine run on a CUDA stream with ``execute_async_v3``.

Device buffers are torch CUDA tensors (their pointers are bound to the engine's tensors);
the input is staged through pinned host memory. Needs TensorRT and a CUDA device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnet_bench.backends.base import Backend, BackendOptions


class TensorRtBackend(Backend):
    name = "tensorrt"
    target = "tensorrt"
    precisions = {"cuda": ("fp32", "fp16")}

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        from exporters.tensorrt_export import unavailable_reason

        return unavailable_reason() or super().unavailable_reason(options)

    def load(self, path: Path) -> None:
        import tensorrt as trt
        import torch

        self.torch, self.trt = torch, trt
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {path} (built for another GPU or version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.stream = torch.cuda.Stream()
        self.output: Any = None

    def prepare(self, images: np.ndarray) -> Any:
        torch = self.torch
        host = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).pin_memory()
        device_in = host.to("cuda", non_blocking=True)
        self.context.set_input_shape(self.input_name, tuple(device_in.shape))
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        self.output = torch.empty(out_shape, dtype=torch.float32, device="cuda")
        self.context.set_tensor_address(self.input_name, device_in.data_ptr())
        self.context.set_tensor_address(self.output_name, self.output.data_ptr())
        torch.cuda.synchronize()
        return device_in

    def worker(self, prepared: Any) -> Any:
        torch = self.torch
        context = self.engine.create_execution_context()  # one context and stream per worker
        stream = torch.cuda.Stream()
        context.set_input_shape(self.input_name, tuple(prepared.shape))
        output = torch.empty(tuple(context.get_tensor_shape(self.output_name)), device="cuda")
        context.set_tensor_address(self.input_name, prepared.data_ptr())
        context.set_tensor_address(self.output_name, output.data_ptr())

        def work() -> None:
            context.execute_async_v3(stream.cuda_stream)
            stream.synchronize()
        return work

    def run(self, prepared: Any) -> Any:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return self.output

    def sync(self) -> None:
        self.stream.synchronize()

    def fetch(self, output: Any) -> np.ndarray:
        return output.cpu().numpy()

    def close(self) -> None:
        self.context = self.engine = self.runtime = None
        self.output = None

    def describe(self) -> dict:
        return {"device_name": self.torch.cuda.get_device_name(),
                "provider": f"TensorRT {self.trt.__version__}",
                "compute_precision": self.options.precision, "threads": 1, "streams": 1}
