"""Per-cell telemetry: host peak RSS here, NVML on a GPU (marked gpu)."""

import time

import numpy as np
import pytest
import torch

from resnet_bench.measure import telemetry
from resnet_bench.measure.telemetry import CellTelemetry, Sampler, decode_reasons, summarize


def test_host_peak_rss_is_per_cell():
    with CellTelemetry("cpu") as big:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del block
    with CellTelemetry("cpu") as small:
        np.ones(1)  # a cell that allocates next to nothing
    assert big.columns(10.0)["host_peak_rss_mb"] >= 250
    if small.note:  # peak RSS cannot be reset here: then it is the process's peak so far
        pytest.skip(small.note)
    assert small.columns(10.0)["host_peak_rss_mb"] < big.columns(10.0)["host_peak_rss_mb"] - 200


def test_sampler_reads_in_the_background_and_keeps_failures_as_notes():
    sampler = Sampler(lambda: {"t": time.perf_counter()}, interval_s=0.02).start()
    time.sleep(0.3)
    samples = sampler.stop()
    assert 8 <= len(samples) <= 20  # one at start, one at stop, ~15 in between
    assert all(a["t"] < b["t"] for a, b in zip(samples, samples[1:], strict=False))

    def broken() -> dict:
        raise OSError("device gone")

    failing = Sampler(broken, interval_s=0.01).start()
    time.sleep(0.05)
    assert failing.stop() == [] and failing.errors[0] == "OSError: device gone"


def test_throttling_seen_in_any_sample_makes_the_cell_invalid():
    assert decode_reasons(0x1 | 0x4 | 0x40) == ["gpu_idle", "sw_power_cap", "hw_thermal"]
    samples = [{"sm_clock_mhz": 1980, "power_w": 300.0, "temp_c": 60, "mem_used_mb": 1000, "reasons": 0x1},
               {"sm_clock_mhz": 1500, "power_w": 500.0, "temp_c": 71, "mem_used_mb": 1200, "reasons": 0x40},
               {"sm_clock_mhz": 1980, "power_w": 400.0, "temp_c": 65, "mem_used_mb": 1100, "reasons": 0}]
    summary = summarize(samples)
    assert summary["gpu_sm_clock_mhz"] == pytest.approx(1820) and summary["gpu_temp_c"] == 71
    assert summary["gpu_mem_used_mb"] == 1200 and summary["reasons"] == ["gpu_idle", "hw_thermal"]
    cell = CellTelemetry("cuda")
    cell.summary = summary
    assert cell.invalid_reasons() == ["throttled: GPU throttled (hw_thermal)"]
    cell.summary = summarize([{**s, "reasons": 0x1} for s in samples])  # idle between calls: not throttling
    assert cell.invalid_reasons() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a GPU cell without NVML or a GPU")
def test_a_gpu_cell_without_nvml_says_why_and_still_reports_the_host():
    with CellTelemetry("cuda") as cell:
        time.sleep(0.01)  # a cell that does no GPU work
    columns = cell.columns(100.0)
    assert columns["telemetry_note"] and columns["gpu_power_w"] is None and columns["host_peak_rss_mb"] > 0
    assert cell.invalid_reasons() == []
    assert set(columns) == set(telemetry.COLUMNS)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nvml_reads_the_gpu_during_a_cell():
    pytest.importorskip("pynvml", reason="needs nvidia-ml-py")
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    with CellTelemetry("cuda", interval_s=0.02) as cell:
        start = time.perf_counter()
        while time.perf_counter() - start < 1.0:
            a @ a
        torch.cuda.synchronize()
    columns = cell.columns(images_per_s=1000.0)
    assert columns["gpu_sm_clock_mhz"] > 100 and columns["gpu_mem_clock_mhz"] > 100
    assert 10 < columns["gpu_power_w"] < 2000 and 0 < columns["gpu_temp_c"] < 120
    assert columns["gpu_mem_used_mb"] > 32  # at least our 32 MiB matrix
    if "MIG" not in (columns["telemetry_note"] or ""):
        assert columns["energy_per_image_j"] == pytest.approx(columns["gpu_power_w"] / 1000.0)
