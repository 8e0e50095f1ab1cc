"""PyTorch eager (``torch``) and inductor (``torch-compile``)."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from resnet_bench.backends.base import Backend, BackendOptions

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    name = "torch"
    target = None
    # CPU fp16 convolutions are a slow reference path in PyTorch, not a deployment option.
    precisions = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")}

    def __init__(self, options: BackendOptions, channels_last: bool = True,
                 cuda_graphs: bool = False) -> None:
        super().__init__(options)
        self.channels_last = channels_last
        self.cuda_graphs = cuda_graphs and options.device == "cuda"
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
        if options.device == "cpu" and options.precision == "bf16":
            from resnet_bench.isa import bf16_unavailable_reason

            reason = bf16_unavailable_reason()
            if reason:
                return reason
        return super().unavailable_reason(options)

    def load(self, model: torch.nn.Module) -> None:
        torch.set_num_threads(self.threads)
        model = copy.deepcopy(model).eval().to(self.device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = self._wrap(model)

    def _wrap(self, model: torch.nn.Module) -> Any:
        return model

    def prepare(self, images: np.ndarray) -> torch.Tensor:
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

        def work() -> None:
            with torch.cuda.stream(stream), torch.inference_mode():
                self.model(prepared)
            stream.synchronize()
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

    def describe(self) -> dict:
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return {"device_name": device, "provider": f"torch {torch.__version__} eager",
                "compute_precision": self.options.precision, "threads": torch.get_num_threads(),
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
