"""What machine and software a run was measured on.

Hard keys make two runs incomparable (CPU model and instruction set, CPU quota, GPU and its
MIG mode, driver, CUDA, runtime versions); they are hashed into a short id. Soft keys (caches,
clocks, power limit, kernel, RAM, Python patch) only inform. The instruction set is hard because
hypervisors hide the model ("Intel(R) Xeon(R) Processor") while bf16/int8 speed depends on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

from resnet_bench.machine.cpus import affinity_cpus, available_cpus, cgroup_cpu_quota
from resnet_bench.machine.isa import fingerprint_flags
from resnet_bench.util.files import PACKAGE
from resnet_bench.util.versions import package_version

HARD_KEYS = ("cpu_model", "cpu_isa", "cpus_available", "cpu_quota", "gpu_name", "gpu_compute_capability",
             "gpu_mig_mode", "gpu_driver", "cuda", "torch", "onnxruntime", "openvino", "tensorrt", "onnx")


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


def cpu_caches(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, str]:
    """Cache sizes seen by CPU 0, e.g. {"L1d": "32K", "L1i": "32K", "L2": "1024K", "L3": "32768K"}."""
    caches = {}
    for index in sorted(root.glob("index*")):
        level, kind, size = (_read(str(index / name)) for name in ("level", "type", "size"))
        if level and size:
            caches[f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind or "", "")] = size
    return caches


def _ram_gb() -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


# What "dirty" means: a change to the code that runs (tracked or new files of the packages, the
# scripts and the build), not the results a run writes beside it.
CODE = ("resnet_bench", "exporters", "benchmarks", "pyproject.toml", "Makefile")


# A copy of the tree without its .git (the GPU machine gets one) carries its provenance in this
# file, written in the checkout (``stamp()``) and trusted only while the code hashes the same.
STAMP = ".provenance.json"


def code_sha256(root: Path | None = None) -> str:
    """SHA-256 over the CODE files (path and bytes, sorted; caches left out): the code that runs."""
    root = root or PACKAGE.parent
    digest = hashlib.sha256()
    for name in CODE:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def provenance() -> dict:
    """The commit of the code running and whether its code has uncommitted changes: from git in
    a checkout; in a copy without one, from its STAMP when the code still hashes as stamped;
    else None (unknown)."""
    checked_out = checkout_state(PACKAGE.parent)
    if checked_out["commit"] is not None:
        return {"git_commit": checked_out["commit"], "git_dirty": checked_out["dirty"]}
    try:
        stamp = json.loads((PACKAGE.parent / STAMP).read_text())
    except (OSError, ValueError):
        return {"git_commit": None, "git_dirty": None}
    if stamp.get("code_sha256") != code_sha256():
        return {"git_commit": None, "git_dirty": None}  # the code moved since the stamp: unknown
    return {"git_commit": stamp.get("git_commit"), "git_dirty": stamp.get("git_dirty")}


def stamp() -> Path:
    """Write STAMP in the checkout: its commit, dirtiness and code hash (for a copy without .git)."""
    path = PACKAGE.parent / STAMP
    path.write_text(json.dumps({**provenance(), "code_sha256": code_sha256()}, indent=1) + "\n")
    return path


def checkout_state(tree: Path) -> dict:
    """The commit a source tree is at and whether its CODE differs from it, from git; both
    ``None`` unless ``tree`` is a checkout's top (a copy inside some checkout, e.g. installed into a
    venv there, would otherwise take that checkout's commit, its own paths ignored there)."""
    top = _git(tree, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != Path(tree).resolve():
        return {"commit": None, "dirty": None}
    status = _git(tree, "status", "--porcelain", "--untracked-files=all", "--", *CODE)
    return {"commit": _git(tree, "rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def _git(tree: Path, *args: str) -> str | None:
    try:
        # from the tree's top (where CODE's paths start), not from inside the package
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=tree).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


NVML_KEYS = ("gpu_mig_mode", "gpu_sm_clock_max_mhz", "gpu_mem_clock_max_mhz", "gpu_sm_clock_mhz",
             "gpu_power_limit_w", "gpu_ecc")


def _gpu() -> dict:
    info = dict.fromkeys(("gpu_name", "gpu_compute_capability", "gpu_driver", "cuda", *NVML_KEYS))
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
    return {**info, **_nvml()}


def _nvml(index: int = 0) -> dict:
    """MIG mode, clocks, power limit and ECC from NVML (nvidia-ml-py); each None when absent or
    not supported by the GPU."""
    info = dict.fromkeys(NVML_KEYS)
    try:
        import pynvml
    except ImportError:
        return info
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return info
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        queries = {
            "gpu_mig_mode": lambda: "on" if pynvml.nvmlDeviceGetMigMode(handle)[0] else "off",
            "gpu_sm_clock_max_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "gpu_mem_clock_max_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "gpu_sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "gpu_power_limit_w": lambda: pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000,
            "gpu_ecc": lambda: "on" if pynvml.nvmlDeviceGetEccMode(handle)[0] else "off",
        }
        for key, query in queries.items():
            try:
                info[key] = query()
            except pynvml.NVMLError:  # not supported on this GPU: stays None
                pass
    except pynvml.NVMLError:
        pass
    finally:
        pynvml.nvmlShutdown()
    return info


def collect() -> dict:
    onnxruntime_version = package_version("onnxruntime", "onnxruntime-gpu")
    providers = None
    try:  # the build that imports (a carried onnxruntime-gpu on PYTHONPATH shadows the installed one)
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        onnxruntime_version = getattr(onnxruntime, "__version__", None) or onnxruntime_version
    except ImportError:
        pass
    fingerprint = {
        "cpu_model": cpu_model(),
        "cpu_isa": ",".join(fingerprint_flags(_read("/proc/cpuinfo") or "")),
        "cpu_caches": cpu_caches(),
        "cpus_available": available_cpus(),
        "cpu_affinity": affinity_cpus(),
        "cpu_quota": cgroup_cpu_quota(),
        "host_cpus": os.cpu_count(),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "ram_gb": _ram_gb(),
        **_gpu(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "torch": package_version("torch"),
        "onnx": package_version("onnx"),
        "onnxruntime": onnxruntime_version,
        "onnxruntime_providers": providers,
        "openvino": package_version("openvino"),
        "tensorrt": package_version("tensorrt"),
        **provenance(),
    }
    fingerprint["fingerprint_id"] = fingerprint_id(fingerprint)
    return fingerprint


def fingerprint_id(fingerprint: dict) -> str:
    hard = {key: fingerprint.get(key) for key in HARD_KEYS}
    return hashlib.sha256(json.dumps(hard, sort_keys=True).encode()).hexdigest()[:12]
