"""The LoadGen figures of the README, measured once on this machine (issue 14's Done-when lines).

ResNet-18 and -50 at 224 px x ONNX Runtime and OpenVINO (CPU, fp32, the CPUs we may use):
all four LoadGen scenarios at the quick setting, each with the closed-loop figure of the same
instance in the same run (SingleStream p90 against our latency mode's p90, Offline samples/s
against our throughput mode's images/s). Server: the peak-QPS search under a 100 ms bound for
ResNet-50 (every step kept), one run at half the closed-loop capacity for ResNet-18. Then
LoadGen's own per-query overhead (a backend that does no work) and the report's "Under load"
section. Writes ``results/loadgen-cpu.md`` and the run (rows, LoadGen logs) under
``results/loadgen-cpu/``.

    python benchmarks/loadgen_figures.py [--out results] [--artifacts artifacts] [--depths 18,50] [--input-size 224]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from resnet_bench.machine import fingerprint
from resnet_bench.report import build_report
from resnet_bench.results import runs
from resnet_bench.results.runs import RunWriter
from resnet_bench.scenarios.loadgen.cell import LoadgenConfig, run_cell
from resnet_bench.scenarios.loadgen.overhead import overhead
from resnet_bench.scenarios.loadgen.settings import loadgen_version
from resnet_bench.select.rules import Constraints

BACKENDS = ("onnxruntime", "openvino")
BOUND_MS = 100.0
# Expected seconds per cell at 224 px on a 2-core CPU with the artifacts cached (ONNX and IR
# exports add ~40 s each per depth when they are not): accuracy runs (32 images x 4), closed-loop
# references (2-8 s each), LoadGen runs of >= 5 s and >= 64 queries (MultiStream: 64 queries of
# 8 images), the ResNet-50 peak search ~5-8 steps of 5-15 s.
EXPECTED_S = {18: 70, 50: 140}


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(key)) for _, key in columns) + " |")
    return "\n".join(lines)


def _ratio(a, b) -> float:
    return a / b if a and b and not math.isnan(a) and not math.isnan(b) else math.nan


def markdown(rows: list[dict], costs: list[dict], run_dir: Path, elapsed: float, prints: dict) -> str:
    for row in rows:
        row["vs_closed"] = (_ratio(row.get("qps"), row.get("closed_loop_images_per_s")) if row["scenario"] == "offline"
                            else _ratio(row.get("latency_ms_p90"), row.get("closed_loop_latency_ms_p90"))
                            if row["scenario"] == "singlestream" else math.nan)
        row["valid_text"] = "VALID" if row.get("loadgen_valid") else f"INVALID: {row.get('loadgen_invalid_reason')}"
    parts = [
        "# LoadGen scenarios on this machine (CPU)\n",
        f"`python benchmarks/loadgen_figures.py`, {elapsed / 60:.1f} min; {prints.get('cpu_model')} x"
        f"{prints.get('cpus_available')}, LoadGen {loadgen_version()}, fingerprint {prints.get('fingerprint_id')}. "
        f"Rules: {rows[0].get('loadgen_rules') if rows else ''}. Run folder (rows, LoadGen logs): `{run_dir}`.\n",
        "## Every scenario\n",
        "`vs closed loop`: Offline samples/s over our throughput mode's images/s at the same batch; SingleStream "
        "p90 over our latency mode's p90 (same instance, same run, measured just before).\n",
        _table(rows, [("depth", "depth"), ("backend", "backend"), ("scenario", "scenario"), ("batch", "batch_size"),
                      ("target QPS", "target_qps"), ("QPS / samples/s", "qps"), ("p50 ms", "latency_ms_p50"),
                      ("p90 ms", "latency_ms_p90"), ("p99 ms", "latency_ms_p99"),
                      ("early-stop. ms", "early_stopping_ms"), ("closed-loop images/s", "closed_loop_images_per_s"),
                      ("closed-loop p90 ms", "closed_loop_latency_ms_p90"), ("vs closed loop", "vs_closed"),
                      ("queries", "query_count"), ("s", "duration_s"), ("LoadGen", "valid_text"),
                      ("parity", "parity_status")]),
        "",
    ]
    for row in rows:
        if row["scenario"] == "server" and row.get("server_search_steps"):
            search = run_dir / Path(row["loadgen_log_dir"]).parent / "search.json"
            steps = json.loads(search.read_text())["steps"]
            one = len(steps) == 1  # ResNet-18: max_steps 1, to keep the script short
            parts += [f"## ResNet-{row['depth']} {row['backend']}: Server "
                      f"{'one run (no search)' if one else 'peak'} under a {BOUND_MS:g} ms bound "
                      f"(p{row['loadgen_percentile']:g})\n",
                      ("One step at half the closed-loop rate, no search: a lower bound on the peak, not the peak. "
                       if one else "") +
                      f"{'VALID' if row.get('loadgen_valid') else 'INVALID'} target: "
                      f"**{_fmt(row['target_qps'], 3)} QPS** (Poisson arrivals), p90 "
                      f"{_fmt(row['latency_ms_p90'], 3)} ms, p99 {_fmt(row['latency_ms_p99'], 3)} ms; the same "
                      f"instance closed-loop: {_fmt(row['closed_loop_images_per_s'], 3)} images/s at p90 "
                      f"{_fmt(row['closed_loop_latency_ms_p90'], 3)} ms. Search steps:\n",
                      _table(steps, [("step", "step"), ("phase", "phase"), ("target QPS", "target_qps"),
                                     ("completed QPS", "completed_qps"), ("p50 ms", "latency_ms_p50"),
                                     ("p90 ms", "latency_ms_p90"), ("p99 ms", "latency_ms_p99"),
                                     ("over bound", "overlatency_queries"), ("queries", "query_count"),
                                     ("VALID", "valid"), ("reasons", "reasons")]), ""]
    for cost in costs:  # Offline's latencies are times into its one query; Server's rate is the one asked
        if cost["scenario"] == "offline":
            cost.update(p50_us=None, p90_us=None, p99_us=None)
        if cost["scenario"] != "server" and cost["samples_per_s"]:
            cost["us_per_sample"] = 1e6 / cost["samples_per_s"]
    parts += ["## LoadGen's own per-query overhead (a backend that does no work)\n",
              _table(costs, [("scenario", "scenario"), ("SUT", "sut"), ("queries", "queries"), ("p50 µs", "p50_us"),
                             ("p90 µs", "p90_us"), ("p99 µs", "p99_us"), ("samples/s", "samples_per_s"),
                             ("µs per sample", "us_per_sample")]), ""]
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--depths", default="18,50")
    parser.add_argument("--input-size", type=int, default=224, help="64 for a smoke run of the script itself")
    args = parser.parse_args()
    depths = tuple(int(d) for d in args.depths.split(","))
    expected = sum(EXPECTED_S.get(d, 300) for d in depths) * len(BACKENDS) + 30
    print(f"loadgen_figures: expect ~{expected / 60:.0f} min on a 2-core CPU (artifacts cached)", file=sys.stderr)
    start = time.perf_counter()
    out = Path(args.out)
    run_dir = out / "loadgen-cpu" / runs.new_run_dir(Path("."), "cpu").name
    rows: list[dict] = []
    for depth in depths:
        for backend in BACKENDS:
            config = LoadgenConfig(depth=depth, backend=backend, latency_bound_ms=BOUND_MS, input_size=args.input_size,
                                   max_steps=8 if depth == 50 else 1, artifacts=args.artifacts)
            if not run_dir.exists():
                runs.start(config, run_dir)
            writer = RunWriter(run_dir)
            print(f"loadgen_figures: ResNet-{depth} {backend} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
            rows += run_cell(config, run_dir, writer, fingerprint.collect())
            writer.finish()
    costs = overhead(run_dir / "loadgen" / "overhead")
    build_report([run_dir], run_dir / "report", Constraints(max_latency_ms=BOUND_MS))
    text = markdown(rows, costs, run_dir, time.perf_counter() - start, fingerprint.collect())
    (out / "loadgen-cpu.md").write_text(text)
    print(text)
    print(f"loadgen_figures: {time.perf_counter() - start:.0f} s; wrote {out / 'loadgen-cpu.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
