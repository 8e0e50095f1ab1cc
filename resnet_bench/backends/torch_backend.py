"""PyTorch eager (``torch``) and inductor (``torch-compile``)."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import numpy as np
import torch

from resnet_bench.backends.base import Backend, BackendOptions
from resnet_bench.machine.isa import bf16_unavailable_reason
from resnet_bench.numerics import precision as precision_table

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
        self.worker_threads: list[int] = []  # torch.get_num_threads() in each throughput worker thread
        if options.mode == "throughput":
            self.cuda_graphs = False  # graphs replay on one stream; throughput uses several
        self.compile_s: dict[int, float] = {}  # first call per batch size (compiling backends)
        self._graphs: dict[tuple, tuple[Any, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        if options.device == "cuda" and not torch.cuda.is_available():
            return "no CUDA device is visible to torch"
        if options.device == "cpu" and options.precision == "bf16":
            reason = bf16_unavailable_reason()
            if reason:
                return reason
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

    def stage(self, images: np.ndarray) -> Any:
        """On CUDA: the samples in device memory, in the model's dtype (MLPerf's GPU harnesses
        keep ResNet-50's samples there too); a request then gathers its batch on the device."""
        if self.device.type != "cuda":
            return images
        staged = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device, self.dtype)
        return staged.contiguous(memory_format=torch.channels_last) if self.channels_last else staged

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
            return self._cpu_worker(prepared)
        stream = torch.cuda.Stream(self.device)  # one CUDA stream per request stream

        def work() -> torch.Tensor:
            with torch.cuda.stream(stream), torch.inference_mode():
                output = self.model(prepared)
            stream.synchronize()
            return output
        return work

    def _cpu_worker(self, prepared: torch.Tensor) -> Any:
        """torch's intra-op pool (OpenMP) is sized per calling thread: load() set it to
        threads_per_request for this thread, and each worker thread sets its own on its first
        call and records what torch then reports, for describe()."""
        def work() -> torch.Tensor:
            if not getattr(local, "set", False):
                torch.set_num_threads(self.threads)
                local.set = True
                self.worker_threads.append(torch.get_num_threads())
            return self.run(prepared)

        local = threading.local()
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
        per_request = max(self.worker_threads, default=torch.get_num_threads())
        return {"device_name": device, "provider": f"torch {torch.__version__} eager",
                "compute_precision": self.compute_precision(), "threads": per_request * self.in_flight(),
                "in_flight": self.in_flight(), "threads_per_request": per_request, "streams": self.in_flight(),
                "channels_last": self.channels_last, "cuda_graphs": self.cuda_graphs}


def _dynamo_counts() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return {"graphs": counters["stats"]["unique_graphs"], "graph_breaks": sum(counters["graph_break"].values())}


def _set_recompile_limit(limit: int) -> None:
    """Compiled graphs kept per code object before dynamo falls back to eager: our sweeps compile
    one graph per batch size. torch >= 2.6 names it recompile_limit, older ones cache_size_limit."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, limit)
    if hasattr(config, "accumulated_recompile_limit"):
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, limit)
    if hasattr(config, "fail_on_recompile_limit_hit"):  # raise rather than run eager, silently
        config.fail_on_recompile_limit_hit = True


class TorchCompileBackend(TorchBackend):
    """One graph per batch size (dynamic=False): the fastest kernels; each new shape compiles
    once, in prepare(), never inside a timed call. A cell must time what its label says: each
    new batch size must add a compiled graph, or prepare() raises (dynamo fell back to eager)."""

    name = "torch-compile"
    compiler = "inductor"  # tests use dynamo's "eager" compiler: the same capture, no code generation
    recompile_limit = 64  # far above the batch sizes of any sweep; the default (8) was hit at ResNet-34
    resets = 0  # torch._dynamo.reset() calls in this process: a reset drops every backend's graphs

    def __init__(self, options: BackendOptions, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self.counts = {"compile_graphs": 0, "graph_breaks": 0}
        self.compiled_at = 0  # dynamo's graph count after the last compile in prepare()
        # CUDA graphs the compiler's own way: inductor's "reduce-overhead" records them (cudagraph
        # trees) at the first calls of each shape, inside prepare(); our capture is not used on top.
        self.compile_mode = "reduce-overhead" if self.cuda_graphs and self.compiler == "inductor" else None
        if self.compile_mode:
            self.cuda_graphs = False

    def _wrap(self, model: torch.nn.Module) -> Any:
        torch._dynamo.reset()  # fresh compile state per model: no cache entries left by earlier models
        TorchCompileBackend.resets += 1
        self.reset_seen = TorchCompileBackend.resets
        _set_recompile_limit(self.recompile_limit)
        if self.compile_mode:
            return torch.compile(model, dynamic=False, backend=self.compiler, mode=self.compile_mode)
        return torch.compile(model, dynamic=False, backend=self.compiler)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self.compile_mode == "reduce-overhead":  # each call a new step: the last output may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
            with torch.inference_mode():
                return self.model(x).clone()
        return super().run(x)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        if self.reset_seen != TorchCompileBackend.resets:  # another model reset dynamo: compile again
            self.compile_s.clear()
            self.reset_seen = TorchCompileBackend.resets
        x = super().prepare(images)
        batch = x.shape[0]
        if batch not in self.compile_s:
            before = _dynamo_counts()
            start = time.perf_counter()
            for _ in range(3 if self.compile_mode else 1):  # cudagraph trees record at the third call
                self.run(x)
            self.sync()
            self.compile_s[batch] = time.perf_counter() - start
            after = _dynamo_counts()
            graphs = after["graphs"] - before["graphs"]
            if graphs == 0:
                raise RuntimeError(f"torch-compile compiled no graph for batch {batch}: dynamo fell back to "
                                   f"eager (recompile limit {self.recompile_limit}?)")
            self.counts["compile_graphs"] += graphs
            self.counts["graph_breaks"] += after["graph_breaks"] - before["graph_breaks"]
            self.compiled_at = after["graphs"]
        return x

    def describe(self) -> dict:
        # Graphs compiled after prepare() were compiled inside timed or warm-up calls: recompiles.
        recompiles = _dynamo_counts()["graphs"] - self.compiled_at if self.compile_s else 0
        return {**super().describe(), "provider": f"torch {torch.__version__} {self.compiler}",
                "compile_s": dict(self.compile_s), "compile_mode": self.compile_mode or "default", **self.counts,
                "recompiles": recompiles}
