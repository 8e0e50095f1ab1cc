"""What the machine did during one cell: host peak RSS on every device; on a GPU, through NVML
(``pynvml`` from nvidia-ml-py, imported only here and only for a GPU cell), the SM and memory
clocks, power, temperature, memory used, energy per image from the total-energy counter and the
clock-throttling reasons seen. A sampler thread reads NVML every ``interval_s`` while the
cell runs, and once more at each end; a throttling reason seen in any sample makes the cell
invalid.

    with CellTelemetry("cuda") as telemetry:
        timing = measure(...)
    row.update(telemetry.columns(images_per_s)); reasons += telemetry.invalid_reasons()
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

from resnet_bench.measure.validity import reason
from resnet_bench.util.errors import first_line

# NVML clock event ("throttle") reason bits (nvml.h: nvmlClocksEventReason* / ThrottleReason*).
REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
           0x10: "sync_boost", 0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake",
           0x100: "display_clocks"}
# Clocks lowered by power or temperature make a cell's speed depend on the machine's state:
# invalid. Idle, clocks an administrator set, multi-GPU sync boost and display clocks are not
# throttling of the work measured.
THROTTLING = ("sw_power_cap", "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")
COLUMNS = ("host_peak_rss_mb", "gpu_sm_clock_mhz", "gpu_mem_clock_mhz", "gpu_power_w", "gpu_temp_c",
           "gpu_mem_used_mb", "energy_per_image_j", "gpu_throttle", "telemetry_note")


def decode_reasons(mask: int) -> list[str]:
    return [name for bit, name in REASONS.items() if mask & bit]


# -- host ----------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: clear_refs 5); False where it cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (since the last reset, where possible)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- sampling ------------------------------------------------------------------------------
class Sampler:
    """Calls ``read`` every ``interval_s`` in a background thread, and once at start and stop."""

    def __init__(self, read: Callable[[], dict], interval_s: float = 0.05) -> None:
        self.read, self.interval_s = read, interval_s
        self.samples: list[dict] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _take(self) -> None:
        try:
            self.samples.append(self.read())
        except Exception as exc:  # a failing read is a note on the row, never a failed cell
            self.errors.append(first_line(exc))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def start(self) -> Sampler:
        self._take()
        self._thread.start()
        return self

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        self._take()
        return self.samples


def summarize(samples: list[dict]) -> dict:
    """Mean clocks and power, highest temperature and memory, every reason seen (OR of masks)."""
    def values(key: str) -> list[float]:
        return [s[key] for s in samples if s.get(key) is not None]

    def mean(key: str) -> float | None:
        found = values(key)
        return sum(found) / len(found) if found else None

    mask = 0
    for sample in samples:
        mask |= sample.get("reasons") or 0
    return {"gpu_sm_clock_mhz": mean("sm_clock_mhz"), "gpu_mem_clock_mhz": mean("mem_clock_mhz"),
            "gpu_power_w": mean("power_w"), "gpu_temp_c": max(values("temp_c"), default=None),
            "gpu_mem_used_mb": max(values("mem_used_mb"), default=None), "reasons": decode_reasons(mask)}


# -- NVML ----------------------------------------------------------------------------------
class Nvml:
    """The GPU torch computes on, read through NVML (nvidia-ml-py's ``pynvml``)."""

    def __init__(self) -> None:
        import pynvml
        import torch

        self.nv = pynvml
        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        uuid = str(getattr(props, "uuid", ""))
        self.note = ""
        try:
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-"))
                                                           else f"GPU-{uuid}")
        except pynvml.NVMLError:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.note = "NVML device 0 (torch's GPU UUID not found)"
        try:
            if pynvml.nvmlDeviceGetMigMode(self.handle)[0] == 1:
                self.note = "MIG on: power and energy are the whole GPU's"
        except pynvml.NVMLError:
            pass
        events = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        self._reasons = events or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons

    def read(self) -> dict:
        nv, h = self.nv, self.handle
        return {"sm_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
                "power_w": nv.nvmlDeviceGetPowerUsage(h) / 1e3,
                "temp_c": nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
                "mem_used_mb": nv.nvmlDeviceGetMemoryInfo(h).used / 2**20,
                "reasons": int(self._reasons(h))}

    def energy_mj(self) -> int | None:
        """The total-energy counter (mJ since the driver loaded; Volta and later)."""
        try:
            return int(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except self.nv.NVMLError:
            return None


_NVML: Nvml | str | None = None


def nvml() -> Nvml | str:
    """The NVML reader, or why there is none (made once per process)."""
    global _NVML
    if _NVML is None:
        try:
            _NVML = Nvml()
        except ImportError:
            _NVML = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        except Exception as exc:
            _NVML = f"NVML unavailable: {first_line(exc)}"
    return _NVML


# -- one cell ------------------------------------------------------------------------------
class CellTelemetry:
    def __init__(self, device: str, interval_s: float = 0.05) -> None:
        self.device, self.interval_s = device, interval_s
        self.gpu: Nvml | None = None
        self.note = ""
        self.sampler: Sampler | None = None
        self.summary: dict = {}

    def __enter__(self) -> CellTelemetry:
        if not reset_peak_rss():
            self.note = "host peak RSS is the process's peak so far"
        if self.device == "cuda":
            reader = nvml()
            if isinstance(reader, str):
                self.note = reader
            else:
                self.gpu, self.note = reader, reader.note
                self.energy_start = reader.energy_mj()
                self.sampler = Sampler(reader.read, self.interval_s).start()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.host_peak_rss_mb = peak_rss_mb()
        if self.gpu is not None and self.sampler is not None:
            self.summary = summarize(self.sampler.stop())
            end = self.gpu.energy_mj()
            if end is not None and self.energy_start is not None and self.seconds > 0:
                self.summary["gpu_power_w"] = (end - self.energy_start) / 1e3 / self.seconds  # counter, not samples
            if self.sampler.errors:
                self.note = "; ".join(filter(None, [self.note, f"NVML read failed: {self.sampler.errors[0]}"]))

    def throttling(self) -> list[str]:
        return [r for r in self.summary.get("reasons", []) if r in THROTTLING]

    def invalid_reasons(self) -> list[str]:
        seen = self.throttling()
        return [reason("throttled", f"GPU throttled ({', '.join(seen)})")] if seen else []

    def columns(self, images_per_s: float | None) -> dict:
        s = self.summary
        power = s.get("gpu_power_w")
        whole_gpu = "MIG" in self.note
        energy = power / images_per_s if power and images_per_s and not whole_gpu else None
        return {"host_peak_rss_mb": round(self.host_peak_rss_mb, 1),
                "gpu_sm_clock_mhz": s.get("gpu_sm_clock_mhz"), "gpu_mem_clock_mhz": s.get("gpu_mem_clock_mhz"),
                "gpu_power_w": power, "gpu_temp_c": s.get("gpu_temp_c"), "gpu_mem_used_mb": s.get("gpu_mem_used_mb"),
                "energy_per_image_j": energy, "gpu_throttle": ",".join(s.get("reasons", [])) or None,
                "telemetry_note": self.note or None}
