"""Scenarios: how a loaded backend is driven. The closed loop (``closed_loop``: ``latency``, one
request at a time, and ``throughput``, several request streams at once, each waiting for its
last answer) and MLPerf LoadGen's scenarios (``loadgen/``: settings and durations, the system
under test, the Server peak search, reading LoadGen's log, and the ``resnet-bench loadgen``
cell)."""

from resnet_bench.scenarios.closed_loop import SCENARIOS, Measurement, latency, run, throughput

__all__ = ["SCENARIOS", "Measurement", "latency", "run", "throughput"]
