"""What machine and software a run was measured on.

Hard keys make two runs incomparable (CPU model, CPU quota, GPU, driver, CUDA, runtime
versions); they are hashed into a short id. Soft keys (kernel, RAM, Python patch) only inform.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from resnet_bench.cpus import affinity_cpus, available_cpus, cgroup_cpu_quota

HARD_KEYS = ("cpu_model", "cpus_available", "cpu_quota", "gpu_name", "gpu_compute_capability",
             "gpu_driver", "cuda", "torch", "onnxruntime", "openvino", "tensorrt", "onnx")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _ram_gb() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _gpu() -> dict:
    info = {"gpu_name": None, "gpu_compute_capability": None, "gpu_driver": None, "cuda": None}
    try:
        import torch
    except ImportError:
        return info
    if not torch.cuda.is_available():
        return info
    major, minor = torch.cuda.get_device_capability()
    info.update(gpu_name=torch.cuda.get_device_name(), gpu_compute_capability=f"{major}.{minor}",
                cuda=torch.version.cuda)
    try:
        info["gpu_driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    return info


def collect() -> dict:
    status = _git("status", "--porcelain")
    onnxruntime_version = _version("onnxruntime") or _version("onnxruntime-gpu")
    providers = None
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except ImportError:
        pass
    fingerprint = {
        "cpu_model": cpu_model(),
        "cpus_available": available_cpus(),
        "cpu_affinity": affinity_cpus(),
        "cpu_quota": cgroup_cpu_quota(),
        "host_cpus": os.cpu_count(),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "ram_gb": _ram_gb(),
        **_gpu(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": onnxruntime_version,
        "onnxruntime_providers": providers,
        "openvino": _version("openvino"),
        "tensorrt": _version("tensorrt"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }
    fingerprint["fingerprint_id"] = fingerprint_id(fingerprint)
    return fingerprint


def fingerprint_id(fingerprint: dict) -> str:
    hard = {key: fingerprint.get(key) for key in HARD_KEYS}
    return hashlib.sha256(json.dumps(hard, sort_keys=True).encode()).hexdigest()[:12]
