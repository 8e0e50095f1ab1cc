"""ONNX -> serialized TensorRT engine, with the TensorRT Python API.

The network is strongly typed (TensorRT 10.12 deprecated and TensorRT 11 removed the
weakly-typed ``--fp16`` builder flags): the precision is the ONNX graph's, so an fp16 engine
is built from the fp16 ONNX. One optimization profile covers the batch sizes asked for.
The timing cache is kept beside the engines and reused, so a rebuild skips kernel timing.

Everything that needs no GPU (availability, profile, key, options) is plain Python and tested
on any machine; ``build_engine`` needs TensorRT and a CUDA device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporters.errors import ExportError

DEFAULT_WORKSPACE = 4 << 30  # bytes of scratch memory tactics may use


@dataclass(frozen=True)
class Profile:
    """One optimization profile over the batch dimension (channels and size are fixed)."""

    min_batch: int
    opt_batch: int
    max_batch: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"profile needs 1 <= min <= opt <= max, got {self.min_batch}/"
                             f"{self.opt_batch}/{self.max_batch}")

    def shapes(self, channels: int, size: int) -> tuple[tuple[int, ...], ...]:
        return tuple((b, channels, size, size) for b in (self.min_batch, self.opt_batch,
                                                          self.max_batch))


def profile_for(batches: tuple[int, ...]) -> Profile:
    """min and max are the smallest and largest batch asked for. TensorRT picks its kernels for
    the opt shape, so opt is the largest batch: the throughput cells are the ones that need
    the best tactics, and smaller batches still run correctly."""
    if not batches or min(batches) < 1:
        raise ValueError(f"batch sizes must be at least 1, got {list(batches)}")
    return Profile(min(batches), max(batches), max(batches))


@dataclass(frozen=True)
class Environment:
    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: str


def unavailable_reason() -> str | None:
    """Why an engine cannot be built here, or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install tensorrt; it needs an NVIDIA GPU and CUDA)"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device is visible (TensorRT builds engines for the GPU it runs on)"
    return None


def environment() -> Environment:
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability()
    return Environment(trt.__version__, torch.version.cuda or "unknown",
                       torch.cuda.get_device_name(), f"{major}.{minor}")


def engine_key_fields(onnx_key: str, precision: str, profile: Profile, env: Environment,
                      workspace: int = DEFAULT_WORKSPACE) -> dict:
    """An engine is tied to the GPU model, TensorRT and CUDA versions and its build options."""
    return {"onnx_key": onnx_key, "precision": precision, "profile": vars(profile).copy(),
            "workspace": workspace, "tensorrt": env.tensorrt, "cuda": env.cuda,
            "gpu": env.gpu, "compute_capability": env.compute_capability,
            "strongly_typed": True}


def timing_cache_path(root: Path, env: Environment) -> Path:
    return root / f"timing-sm{env.compute_capability.replace('.', '')}-trt{env.tensorrt}.cache"


def build_engine(onnx_path: Path, engine_path: Path, profile: Profile, input_size: int,
                 timing_cache: Path, workspace: int = DEFAULT_WORKSPACE) -> dict:
    """Build and serialize an engine; returns what the build reports (for the manifest)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)

    optimization = builder.create_optimization_profile()
    name = network.get_input(0).name
    channels = network.get_input(0).shape[1]
    optimization.set_shape(name, *profile.shapes(channels, input_size))
    config.add_optimization_profile(optimization)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    engine_path.write_bytes(bytes(serialized))
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = timing_cache.with_suffix(".tmp")
    tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    tmp.replace(timing_cache)
    return {"input": name, "timing_cache": str(timing_cache)}
