"""PyTorch eager (``torch``) and inductor (``torch-compile``)."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from resnet_bench import precision as precision_table
from resnet_bench.backends.base import Backend, BackendOptions

# fp16 / bf16 cast the model's weights and inputs (no autocast); tf32 is fp32 storage.
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def set_tf32(enabled: bool) -> None:
    """TF32 for cuDNN convolutions and cuBLAS matrix products, with torch's fp32_precision API
    (the legacy allow_tf32 flags must not be mixed with it: torch then refuses to read them)."""
    mode = "tf32" if enabled else "ieee"
    torch.backends.cudnn.conv.fp32_precision = mode
    torch.backends.cuda.matmul.fp32_precision = mode


def tf32_state() -> dict[str, bool]:
    """What the convolution and matmul fp32 settings are now (read back, not assumed)."""
    return {"conv": torch.backends.cudnn.conv.fp32_precision == "tf32",
            "matmul": torch.backends.cuda.matmul.fp32_precision == "tf32"}


class TorchBackend(Backend):
    name = "torch"
    target = None
    # CPU fp16 convolutions are a slow reference path in PyTorch, not a deployment option.
    precisions = precision_table.supported("torch")

    def __init__(self, options: BackendOptions, channels_last: bool = True,
                 cuda_graphs: bool = False) -> None:
        super().__init__(options)
        self.channels_last = channels_last
        self.cuda_graphs = (cuda_graphs or options.cuda_graphs) and options.device == "cuda"
        self.device = torch.device(options.device)
        self.dtype = DTYPES[options.precision]
        self.threads = self.threads_per_request()
        if options.mode == "throughput":
            self.cuda_graphs = False  # graphs replay on one stream; throughput uses several
        self.compile_s: dict[int, float] = {}  # first call per batch size (compiling backends)
        self._graphs: dict[tuple, tuple[Any, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        if options.device == "cuda" and not torch.cuda.is_available():
            return "no CUDA device is visible to torch"
        return super().unavailable_reason(options)

    def _cuda_settings(self) -> None:
        """Process-wide settings, so set again before every untimed prepare(): cuDNN autotunes
        its convolutions (as ORT and TensorRT do), TF32 as the precision table says."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            set_tf32(bool(precision_table.require(self.name, "cuda", self.options.precision).tf32))

    def load(self, model: torch.nn.Module) -> None:
        torch.set_num_threads(self.threads)
        self._cuda_settings()
        model = copy.deepcopy(model).eval().to(self.device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = self._wrap(model)

    def _wrap(self, model: torch.nn.Module) -> Any:
        return model

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        self._cuda_settings()
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device, self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.cuda_graphs:
            self._capture(x)
        return x

    def _capture(self, x: torch.Tensor) -> None:
        """Record one CUDA graph per input shape; run() then replays it (no launch overhead)."""
        key = tuple(x.shape)
        if key in self._graphs:
            return
        static_in = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):  # warm-up on a side stream, as the CUDA graphs docs ask
                self.model(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            static_out = self.model(static_in)
        self._graphs[key] = (graph, static_in, static_out)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self.cuda_graphs:
            graph, static_in, static_out = self._graphs[tuple(x.shape)]
            if static_in.data_ptr() != x.data_ptr():
                static_in.copy_(x)
            graph.replay()
            return static_out
        with torch.inference_mode():
            return self.model(x)

    def worker(self, prepared: torch.Tensor) -> Any:
        if self.device.type != "cuda":
            return super().worker(prepared)
        stream = torch.cuda.Stream(self.device)  # one CUDA stream per request stream

        def work() -> torch.Tensor:
            with torch.cuda.stream(stream), torch.inference_mode():
                output = self.model(prepared)
            stream.synchronize()
            return output
        return work

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()

    def fetch(self, output: torch.Tensor) -> np.ndarray:
        return output.float().cpu().numpy()

    def close(self) -> None:
        self.model = None
        self._graphs.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def compute_precision(self) -> str:
        """What runs, read back: fp32 storage on CUDA is tf32 if either TF32 setting is on."""
        if self.device.type == "cuda" and self.dtype == torch.float32:
            return "tf32" if any(tf32_state().values()) else "fp32"
        return self.options.precision

    def describe(self) -> dict:
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return {"device_name": device, "provider": f"torch {torch.__version__} eager",
                "compute_precision": self.compute_precision(), "threads": torch.get_num_threads(),
                "streams": self.in_flight() if self.options.mode == "throughput" else 1,
                "channels_last": self.channels_last, "cuda_graphs": self.cuda_graphs}


class TorchCompileBackend(TorchBackend):
    name = "torch-compile"

    def _wrap(self, model: torch.nn.Module) -> Any:
        # One graph per batch size (dynamic=False): the fastest kernels; each new shape
        # compiles once, in prepare(), never inside a timed call.
        return torch.compile(model, dynamic=False)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        x = super().prepare(images)
        batch = x.shape[0]
        if batch not in self.compile_s:
            start = time.perf_counter()
            self.run(x)
            self.sync()
            self.compile_s[batch] = time.perf_counter() - start
        return x

    def describe(self) -> dict:
        return {**super().describe(), "provider": f"torch {torch.__version__} inductor",
                "compile_s": dict(self.compile_s)}
