"""ONNX Runtime: CPU provider with explicit threads; CUDA provider with IO binding.

On CUDA each request stream ("lane") is its own session with its own ``user_compute_stream``,
its input and a preallocated output bound on the device: a timed call runs the graph and
allocates nothing. A session whose first provider is not CUDAExecutionProvider (ORT falls
back to CPU quietly) makes the cell unavailable with the reason.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_bench.backends.base import Backend, BackendOptions, BackendUnavailable
from resnet_bench.numerics import precision as precision_table

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(eq=False)
class Lane:
    """One session and its IO binding (device input + preallocated device output)."""

    session: Any
    binding: Any
    output: Any = None  # the bound output OrtValue
    stream: Any = None  # the torch CUDA stream the session computes on (kept alive)
    bound: Any = None  # the input OrtValue bound now


def bind_preallocated(ort: Any, session: Any, binding: Any, value: Any, device: str) -> Any:
    """Bind ``value`` as the input and a preallocated output of the right shape and dtype on
    ``device``: ORT then writes into it instead of allocating an output in every run."""
    meta_in, meta_out = session.get_inputs()[0], session.get_outputs()[0]
    if meta_out.type not in ORT_TYPES:
        raise ValueError(f"output type {meta_out.type} is not supported")
    batch = value.shape()[0]
    shape = [batch if not isinstance(d, int) else d for d in meta_out.shape]
    output = ort.OrtValue.ortvalue_from_shape_and_type(shape, ORT_TYPES[meta_out.type], device, 0)
    binding.clear_binding_inputs()
    binding.clear_binding_outputs()
    binding.bind_ortvalue_input(meta_in.name, value)
    binding.bind_ortvalue_output(meta_out.name, output)
    return output


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    target = "onnx"
    precisions = precision_table.supported("onnxruntime")

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

    def _session_options(self) -> Any:
        ort = self.ort
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3
        # ORT sizes its pool from the host's cores, not the container's quota: set it.
        session_options.intra_op_num_threads = self.threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return session_options

    def load(self, path: Path) -> None:
        import onnxruntime as ort

        self.ort, self.path = ort, path
        opts = self.options
        self.threads = self.threads_per_request()
        self.lanes: list[Lane] = []
        self.sessions: list[Any] = []
        if opts.device == "cuda":
            self.lanes = [self._cuda_lane(path) for _ in range(self.in_flight() if opts.mode == "throughput" else 1)]
            self.session, self.binding = self.lanes[0].session, self.lanes[0].binding
        else:
            # A session's intra-op pool is shared by the runs in flight on it: on a CPU each request
            # stream gets a session of its own, so each request really has threads_per_request threads.
            self.sessions = [self._cpu_session() for _ in range(self.in_flight())]
            self.session, self.binding = self.sessions[0], None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self._next_lane = 0

    def _cpu_session(self) -> Any:
        return self.ort.InferenceSession(str(self.path), self._session_options(), providers=[PROVIDERS["cpu"]])

    def _cuda_lane(self, path: Path) -> Lane:
        import torch

        spec = precision_table.require(self.name, "cuda", self.options.precision)
        cuda = {"device_id": 0, "use_tf32": int(bool(spec.tf32))}
        stream = None
        if torch.cuda.is_available():  # (unavailable_reason refuses a cell without; the check below stays)
            stream = torch.cuda.Stream()
            cuda.update(device_id=torch.cuda.current_device(), user_compute_stream=str(stream.cuda_stream))
        provider = (PROVIDERS["cuda"], cuda)
        preload = getattr(self.ort, "preload_dlls", None)  # ORT >= 1.21: CUDA and cuDNN from the nvidia-* wheels
        if preload is not None:
            with contextlib.redirect_stdout(sys.stderr):
                preload(cuda=True, cudnn=True, msvc=False)
        # ORT prints its CUDA-to-CPU fallback on stdout (breaking --format json) and warns about
        # a missing provider: keep stdout clean; the check below says what happened.
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = self.ort.InferenceSession(str(path), self._session_options(), providers=[provider])
        active = session.get_providers()[0]
        if active != PROVIDERS["cuda"]:
            raise BackendUnavailable(f"onnxruntime fell back to {active}: CUDAExecutionProvider is not active "
                                     f"(providers: {', '.join(session.get_providers())})")
        return Lane(session, session.io_binding(), stream=stream)

    def stage(self, images: np.ndarray) -> Any:
        """On CUDA: the samples in device memory (a torch tensor of the model's fp32 input), so a
        lane gathers its batch there and copies it into its bound OrtValue device to device
        (``scenarios.loadgen.sut.refill``, through DLPack), as torch's lanes do."""
        if self.binding is None:
            return images
        import torch

        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to("cuda:0")  # as prepare binds

    def prepare(self, images: np.ndarray) -> Any:
        images = np.ascontiguousarray(images, dtype=np.float32)
        self._next_lane = 0
        if self.binding is None:
            return images
        # On the GPU the input lives on the device, and the output stays there until fetch():
        # timings then cover the inference, not host copies or output allocations.
        value = self.ort.OrtValue.ortvalue_from_numpy(images, "cuda", 0)
        self._bind(self.lanes[0], value)
        return value

    def _bind(self, lane: Lane, value: Any) -> None:
        lane.output = bind_preallocated(self.ort, lane.session, lane.binding, value, "cuda")
        lane.bound = value

    def run(self, prepared: Any) -> Any:
        if self.binding is None:
            return self.session.run([self.output_name], {self.input_name: prepared})[0]
        lane = self.lanes[0]
        if lane.bound is not prepared:  # run what it is given, not what was bound last
            self._bind(lane, prepared)
        lane.session.run_with_iobinding(lane.binding)
        return lane.binding

    def worker(self, prepared: Any) -> Any:
        if self.binding is None:
            session = self.sessions[self._next_lane % len(self.sessions)]
            self._next_lane += 1
            return lambda: session.run([self.output_name], {self.input_name: prepared})[0]
        lane = self.lanes[self._next_lane % len(self.lanes)]  # one session (and stream) per request stream
        self._next_lane += 1
        binding = lane.session.io_binding()
        bind_preallocated(self.ort, lane.session, binding, prepared, "cuda")

        def work() -> Any:
            lane.session.run_with_iobinding(binding)
            binding.synchronize_outputs()
            return binding
        return work

    def sync(self) -> None:
        if self.binding is not None:
            self.binding.synchronize_outputs()

    def fetch(self, output: Any) -> np.ndarray:
        if isinstance(output, np.ndarray):
            return output
        return output.copy_outputs_to_cpu()[0]  # an IO binding: its device output, copied here

    def close(self) -> None:
        self.session = None
        self.binding = None
        self.lanes = []
        self.sessions = []

    def describe(self) -> dict:
        provider = self.session.get_providers()[0]
        precision = self.options.precision
        in_flight = self.in_flight()
        per_request = self.threads
        if self.options.device == "cuda":
            cuda = self.session.get_provider_options().get(PROVIDERS["cuda"], {})
            if precision in ("fp32", "tf32") and "use_tf32" in cuda:  # read back what the session runs
                precision = "tf32" if cuda["use_tf32"] == "1" else "fp32"
            in_flight = len(self.lanes)  # one session, one user compute stream each
        else:  # what the sessions were really given
            per_request = max(s.get_session_options().intra_op_num_threads for s in self.sessions)
        return {"device_name": self.options.device, "provider": provider,
                "compute_precision": precision, "threads": per_request * in_flight,
                "in_flight": in_flight, "threads_per_request": per_request,
                "streams": in_flight, "runtime_version": self.ort.__version__}
