"""LoadGen's own cost per query, and our SUT's, measured with a backend that does no work."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnet_bench.backends.service_time import ServiceTimeBackend
from resnet_bench.scenarios.loadgen.settings import Duration, Load
from resnet_bench.scenarios.loadgen.sut import SystemUnderTest, direct_runner, run_loadgen


def overhead(log_dir: str | Path, seconds: float = 2.0) -> list[dict]:
    """LoadGen's own cost per query, and our SUT's, with a backend that does no work: what
    SingleStream reports then is the floor under any latency Python can measure this way, and
    Offline's samples/s the ceiling on its throughput (a fast GPU meets both)."""
    images = np.zeros((64, 3, 4, 4), np.float32)
    span = Duration("overhead", min_duration_s=seconds)
    idle = ServiceTimeBackend(0.0)
    runs = [("singlestream", "inline (LoadGen's thread)", SystemUnderTest(images, inline=direct_runner(idle)),
             Load("singlestream", expected_s=1e-5)),
            ("server", "1 lane (queue + worker thread)", SystemUnderTest(images, lanes=[direct_runner(idle)]),
             Load("server", target_qps=2000, bound_ms=10)),
            ("offline", "1 lane, batch 1", SystemUnderTest(images, lanes=[direct_runner(idle)]),
             Load("offline", target_qps=100_000))]
    rows = []
    for scenario, how, sut, load in runs:
        result = run_loadgen(sut, load, span, Path(log_dir) / f"overhead-{scenario}").result
        rows.append({"scenario": scenario, "sut": how, "queries": result.query_count,
                     "p50_us": 1e3 * result.latency_ms["p50"], "p90_us": 1e3 * result.latency_ms["p90"],
                     "p99_us": 1e3 * result.latency_ms["p99"], "samples_per_s": result.samples_per_s,
                     "valid": result.valid})
    return rows
