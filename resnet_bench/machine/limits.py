"""What this machine allows, checked before any work: a device, a writable folder, memory for a batch.

Each check raises ValueError with one line naming the problem (the CLI's exit 2).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

# The widest tensor of every ResNet has 16 elements per input pixel: conv1's output (64 channels
# at half the size) and, in ResNet-50 and deeper, layer1's (256 channels at a quarter).
WIDEST_ACTIVATION = 16
FLOAT_BYTES = 4


def require_device(device: str) -> str:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is visible to torch")
    return device


def require_writable(folder: str | Path, flag: str) -> Path:
    """Create ``folder`` if needed and check a file can be written in it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(f"{flag} {folder}: cannot write there ({exc.strerror or exc})") from None
    return folder


def batch_bytes(batch: int, input_size: int, at_once: int | None = None) -> int:
    """A lower bound on the memory fp32 inference needs: the input batch, and two of the widest
    activations (a layer's input and its output are alive at once) for the ``at_once`` images
    run in one call (default: the whole batch)."""
    at_once = batch if at_once is None else min(at_once, batch)
    return FLOAT_BYTES * input_size**2 * (3 * batch + 2 * WIDEST_ACTIVATION * at_once)


def available_memory(meminfo: Path = Path("/proc/meminfo"),
                     cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup v2 memory limit.
    None when neither can be read (not Linux)."""
    limits = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        cap = (cgroup / "memory.max").read_text().strip()
        if cap != "max":
            limits.append(int(cap) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


def require_batch(batch: int, input_size: int, flag: str = "--batch", at_once: int | None = None) -> int:
    """Refuse a batch below 1, or one whose input and activations cannot fit in memory."""
    if batch < 1:
        raise ValueError(f"{flag}: batch size must be at least 1, got {batch}")
    need, have = batch_bytes(batch, input_size, at_once), available_memory()
    if have is not None and need > have:
        raise ValueError(f"{flag} {batch} at {input_size}x{input_size} needs at least {_gib(need)} "
                         f"({need:,} bytes) for its input and activations; {_gib(have)} available")
    return batch
