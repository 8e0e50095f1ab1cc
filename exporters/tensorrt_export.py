"""ONNX -> serialized TensorRT engine, with the TensorRT Python API.

The network is strongly typed (TensorRT 10.12 deprecated and TensorRT 11 removed the
weakly-typed ``--fp16`` builder flags): the precision is the ONNX graph's, so an fp16 engine
is built from the fp16 ONNX. TF32 is a builder flag on fp32 tensors, on by default: it is
cleared for fp32 and set for tf32, and read back into the manifest.

Profiles: TensorRT tunes its kernels for a profile's opt shape, and a profile can be used by
one execution context at a time. So an engine holds one profile per (context, timed batch):
opt = that batch, min = 1, max = the largest batch any command feeds (parity's chunks
included). ``plan_profiles`` / ``profile_index`` are the pure logic, tested on any machine.

The timing cache is kept beside the engines, one file per GPU (name and UUID) and TensorRT
version, so a rebuild skips kernel timing and two GPUs never share one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from exporters.errors import ExportError
from resnet_bench.model.images import CHUNK as PARITY_CHUNK  # parity feeds chunks of 8 (the last may be smaller)

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

    def covers(self, batch: int) -> bool:
        return self.min_batch <= batch <= self.max_batch


def plan_profiles(batches: tuple[int, ...], contexts: int = 1,
                  chunk: int = PARITY_CHUNK) -> tuple[Profile, ...]:
    """One profile per (context, batch): context c's profiles are ``[c * len(batches), ...)``.

    opt is the batch a cell times (batch-1 latency runs kernels tuned for batch 1, not for the
    largest batch); min is 1 and max the largest of the batches and parity's chunk, so every
    profile also runs parity's chunks and the odd last chunk."""
    if not batches or min(batches) < 1:
        raise ValueError(f"batch sizes must be at least 1, got {list(batches)}")
    if contexts < 1:
        raise ValueError(f"contexts must be at least 1, got {contexts}")
    opts = sorted(set(batches))
    largest = max(*opts, chunk)
    return tuple(Profile(1, opt, largest) for _ in range(contexts) for opt in opts)


def profile_index(profiles: tuple[Profile, ...], contexts: int, context: int, batch: int) -> int:
    """The profile context ``context`` uses for ``batch``: among its own profiles, the one whose
    opt is the smallest at or above the batch (else the largest). No two contexts share one."""
    per_context = len(profiles) // contexts
    if contexts < 1 or per_context * contexts != len(profiles) or not 0 <= context < contexts:
        raise ValueError(f"{len(profiles)} profiles cannot serve context {context} of {contexts}")
    own = range(context * per_context, (context + 1) * per_context)
    fitting = [i for i in own if profiles[i].covers(batch)]
    if not fitting:
        top = profiles[own[-1]].max_batch
        raise ValueError(f"batch {batch} is outside the engine's profiles (1..{top}); "
                         "export with --batches covering it")
    at_or_above = [i for i in fitting if profiles[i].opt_batch >= batch]
    if at_or_above:
        return min(at_or_above, key=lambda i: profiles[i].opt_batch)
    return max(fitting, key=lambda i: profiles[i].opt_batch)


@dataclass(frozen=True)
class Environment:
    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: str
    gpu_uuid: str = ""


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
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return Environment(trt.__version__, torch.version.cuda or "unknown", torch.cuda.get_device_name(),
                       f"{major}.{minor}", str(getattr(props, "uuid", "")))


def engine_key_fields(onnx_key: str, precision: str, profiles: tuple[Profile, ...] | Profile, env: Environment,
                      workspace: int = DEFAULT_WORKSPACE, tf32: bool = False) -> dict:
    """An engine is tied to the GPU model, TensorRT and CUDA versions and its build options."""
    profiles = (profiles,) if isinstance(profiles, Profile) else profiles
    return {"onnx_key": onnx_key, "precision": precision, "profiles": [vars(p).copy() for p in profiles],
            "workspace": workspace, "tf32": tf32, "tensorrt": env.tensorrt, "cuda": env.cuda,
            "gpu": env.gpu, "compute_capability": env.compute_capability, "strongly_typed": True}


def timing_cache_path(root: Path, env: Environment) -> Path:
    """One cache per GPU (its name, and its UUID when known) and TensorRT version: tactic timings
    from one GPU are not valid on another of the same compute capability."""
    name = re.sub(r"[^a-z0-9]+", "-", env.gpu.lower()).strip("-") or "gpu"
    device = f"-{hashlib.sha256(env.gpu_uuid.encode()).hexdigest()[:8]}" if env.gpu_uuid else ""
    sm = env.compute_capability.replace(".", "")
    return root / f"timing-{name}{device}-sm{sm}-trt{env.tensorrt}.cache"


def build_engine(onnx_path: Path, engine_path: Path, profiles: tuple[Profile, ...], input_size: int,
                 timing_cache: Path, workspace: int = DEFAULT_WORKSPACE, tf32: bool = False) -> dict:
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
    if tf32:  # TF32 is on by default: fp32 must clear it
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise ExportError(f"TensorRT refused the timing cache {timing_cache} (corrupt, or from another "
                          "GPU / TensorRT version): delete it")

    name = network.get_input(0).name
    channels = network.get_input(0).shape[1]
    for profile in profiles:
        optimization = builder.create_optimization_profile()
        optimization.set_shape(name, *profile.shapes(channels, input_size))
        if config.add_optimization_profile(optimization) < 0:
            raise ExportError(f"TensorRT rejected the optimization profile {vars(profile)}")

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    engine_path.write_bytes(bytes(serialized))
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = timing_cache.with_suffix(".tmp")
    tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    tmp.replace(timing_cache)
    return {"input": name, "timing_cache": str(timing_cache), "tf32": bool(config.get_flag(trt.BuilderFlag.TF32)),
            "profiles": [vars(p).copy() for p in profiles]}
