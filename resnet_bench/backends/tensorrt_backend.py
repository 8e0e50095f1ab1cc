"""TensorRT: a serialized engine run on CUDA streams with ``execute_async_v3``.

One execution context per request stream ("lane"): one in latency mode, one per request in
flight in throughput mode, each with its own CUDA stream and its own optimization profiles
(TensorRT lets a profile serve one context at a time). For each batch a lane uses the profile
whose opt shape is that batch (see ``exporters.tensorrt_export.plan_profiles``). Every
TensorRT call that reports failure by its return value is checked. Device buffers are torch
CUDA tensors of the engine's own tensor dtypes. Needs TensorRT and a CUDA device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exporters.tensorrt_export import Profile, profile_index
from exporters.tensorrt_export import unavailable_reason as tensorrt_unavailable_reason
from resnet_bench.backends.base import Backend, BackendOptions
from resnet_bench.numerics import precision as precision_table


@dataclass(eq=False)
class Prepared:
    """An input batch on the device; lanes bind it (shape, profile, addresses) before running it."""

    input: Any
    batch: int


@dataclass(eq=False)
class Lane:
    context: Any
    stream: Any
    profile: int = -1
    bound: Prepared | None = None
    output: Any = None
    outputs: dict = field(default_factory=dict)  # batch -> output buffer of this lane


def torch_dtype(trt: Any, torch: Any, dtype: Any) -> Any:
    """The torch dtype of a TensorRT tensor dtype (``ICudaEngine.get_tensor_dtype``)."""
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
             trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32, trt.DataType.INT8: torch.int8}
    if dtype not in table:
        raise ValueError(f"TensorRT tensor dtype {dtype} has no torch equivalent here")
    return table[dtype]


def _manifest(path: Path) -> dict:
    try:
        return json.loads((Path(path).parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


class TensorRtBackend(Backend):
    name = "tensorrt"
    target = "tensorrt"
    precisions = precision_table.supported("tensorrt")

    @classmethod
    def unavailable_reason(cls, options: BackendOptions) -> str | None:
        return tensorrt_unavailable_reason() or super().unavailable_reason(options)

    def contexts(self) -> int:
        """Execution contexts this instance runs at once (the engine needs a profile set each)."""
        return self.in_flight() if self.options.mode == "throughput" else 1

    def load(self, path: Path) -> None:
        import tensorrt as trt
        import torch

        self.torch, self.trt = torch, trt
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {path} (built for another GPU or version?)")
        engine = self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.input_dtype = torch_dtype(trt, torch, engine.get_tensor_dtype(self.input_name))
        self.output_dtype = torch_dtype(trt, torch, engine.get_tensor_dtype(self.output_name))
        self.profiles = tuple(
            Profile(*(int(dims[0]) for dims in engine.get_tensor_profile_shape(self.input_name, i)))
            for i in range(engine.num_optimization_profiles))
        lanes = self.contexts()
        if len(self.profiles) % lanes:
            raise RuntimeError(f"{Path(path).name} has {len(self.profiles)} optimization profiles: cannot give each "
                               f"of {lanes} concurrent contexts its own (rebuild it for {lanes} contexts)")
        self.lanes = [Lane(engine.create_execution_context(), torch.cuda.Stream()) for _ in range(lanes)]
        if any(lane.context is None for lane in self.lanes):
            raise RuntimeError("TensorRT could not create an execution context (out of device memory?)")
        self.tf32 = _manifest(path).get("tf32")
        self._next_lane = 0

    # -- binding: profile, input shape, addresses; all outside timed calls ----------------
    def _bind(self, lane: Lane, prepared: Prepared) -> None:
        index = profile_index(self.profiles, len(self.lanes), self.lanes.index(lane), prepared.batch)
        context = lane.context
        if index != lane.profile:
            if not context.set_optimization_profile_async(index, lane.stream.cuda_stream):
                raise RuntimeError(f"TensorRT refused optimization profile {index}")
            lane.stream.synchronize()
            lane.profile = index
        shape = tuple(prepared.input.shape)
        if not context.set_input_shape(self.input_name, shape):
            raise ValueError(f"TensorRT refused input shape {shape} for profile {index} "
                             f"({vars(self.profiles[index])})")
        out_shape = tuple(context.get_tensor_shape(self.output_name))
        if any(d < 0 for d in out_shape):
            raise RuntimeError(f"TensorRT left the output shape unresolved: {out_shape}")
        output = lane.outputs.get(prepared.batch)
        if output is None or tuple(output.shape) != out_shape:
            output = self.torch.empty(out_shape, dtype=self.output_dtype, device="cuda")
            lane.outputs[prepared.batch] = output
        for name, tensor in ((self.input_name, prepared.input), (self.output_name, output)):
            if not context.set_tensor_address(name, tensor.data_ptr()):
                raise RuntimeError(f"TensorRT refused the address of tensor {name!r}")
        lane.bound, lane.output = prepared, output

    def _execute(self, lane: Lane) -> None:
        if not lane.context.execute_async_v3(lane.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see its log above)")

    # -- lifecycle -------------------------------------------------------------------------
    def prepare(self, images: np.ndarray) -> Prepared:
        torch = self.torch
        host = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).pin_memory()
        device_in = host.to("cuda", non_blocking=True).to(self.input_dtype)
        torch.cuda.synchronize()
        prepared = Prepared(device_in, int(device_in.shape[0]))
        self._bind(self.lanes[0], prepared)
        self._next_lane = 0  # the workers made next for this input take lanes 0, 1, ...
        return prepared

    def stage(self, images: np.ndarray) -> Any:
        """The samples in device memory, in the engine's input dtype: a lane copies its batch into
        its bound input device to device (``scenarios.loadgen.sut.refill``), as torch's do."""
        torch = self.torch
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to("cuda").to(self.input_dtype)

    def run(self, prepared: Prepared) -> Any:
        lane = self.lanes[0]
        if lane.bound is not prepared:  # run what it is given, not what was bound last
            self._bind(lane, prepared)
        self._execute(lane)
        return lane.output

    def worker(self, prepared: Prepared) -> Any:
        """Each call takes the next lane (context + stream + its own profiles). A lane may serve
        several inputs (LoadGen's batch buckets): a request binds its own input when the lane's
        context holds another's."""
        lane = self.lanes[self._next_lane % len(self.lanes)]
        self._next_lane += 1
        self._bind(lane, prepared)

        def work() -> Any:
            if lane.bound is not prepared:
                self._bind(lane, prepared)
            self._execute(lane)
            lane.stream.synchronize()
            return lane.output
        return work

    def sync(self) -> None:
        self.lanes[0].stream.synchronize()

    def fetch(self, output: Any) -> np.ndarray:
        return output.float().cpu().numpy()

    def close(self) -> None:
        self.lanes = []
        self.engine = self.runtime = None

    def describe(self) -> dict:
        precision = self.options.precision
        if precision in ("fp32", "tf32") and self.tf32 is not None:
            precision = "tf32" if self.tf32 else "fp32"  # the builder's TF32 flag, read back at build time
        return {"device_name": self.torch.cuda.get_device_name(), "provider": f"TensorRT {self.trt.__version__}",
                "compute_precision": precision, "threads": 1, "streams": len(self.lanes),
                "profiles": len(self.profiles)}
