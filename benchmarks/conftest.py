"""pytest-benchmark suites over the same runners the harness uses.

    pytest benchmarks/ --benchmark-json=out.json      # then: pytest-benchmark compare
    RESNET_BENCH_DEPTHS=18,50 RESNET_BENCH_INPUT_SIZE=224 pytest benchmarks/

The run's fingerprint goes into the machine info of every saved benchmark.
"""

import os
from pathlib import Path

import pytest

from resnet_bench.machine import fingerprint

DEPTHS = tuple(int(d) for d in os.environ.get("RESNET_BENCH_DEPTHS", "18").split(","))
INPUT_SIZE = int(os.environ.get("RESNET_BENCH_INPUT_SIZE", "224"))
ARTIFACTS = Path(os.environ.get("RESNET_BENCH_ARTIFACTS", "artifacts"))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["resnet_bench"] = fingerprint.collect()


@pytest.fixture(scope="session")
def artifacts_dir():
    return ARTIFACTS
