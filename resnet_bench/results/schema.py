"""The one typed definition of a result row.

It generates the CSV header (``results.runs.COLUMNS``), ``results/schema.json`` (JSON Schema
draft 2020-12) and the column table of docs/results-schema.md. ``SCHEMA_VERSION`` goes into
every row; code refuses rows of a newer version, and reads rows without the column as version 1.

    python -m resnet_bench.results     # rewrites results/schema.json and the docs' table
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from resnet_bench.util.files import PACKAGE

# 1: up to issue 10 (no column). 2: percentile intervals, unbounded, median_precision, drift, threads
# per request, torch-compile counts, GPU telemetry. 3: LoadGen scenario rows (scenario, qps, LoadGen's
# verdict, early stopping, the closed-loop figure beside it, the settings and logs). 4: accuracy with
# intervals and its verdict, images/s and agreement intervals, the images' and calibration's hashes,
# LoadGen's allowance of over-bound queries, the process-level spread of a pick's finalists, the
# commit and tree state that produced the row, validity reasons as codes.
SCHEMA_VERSION = 4
TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a JSON Schema type: string, integer, number, boolean
    unit: str  # "" when the value has none
    description: str
    required: bool = False  # present in every row, failed cells included

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: type must be one of {', '.join(TYPES)}, got {self.type!r}")


def _percentile(q: int) -> tuple[Column, ...]:
    return (
        Column(f"latency_ms_p{q}", "number", "ms", f"p{q} of the request latencies; empty when unbounded "
               "(LoadGen rows: from LoadGen's log, per query, counted from the query's scheduled time)"),
        Column(f"latency_ms_p{q}_low", "number", "ms",
               f"lower end of the 95% distribution-free interval of p{q} (an order statistic)"),
        Column(f"latency_ms_p{q}_high", "number", "ms",
               "upper end of that interval; empty when the samples cannot bound it"),
    )


ROW: tuple[Column, ...] = (
    Column("run_id", "string", "", "the run directory's name", True),
    Column("cell_id", "string", "", "depth-variant-backend-precision-device-mode-batch-input", True),
    Column("depth", "integer", "layers", "ResNet depth: 18, 34, 50, 101, 152", True),
    Column("variant", "string", "", "v1 (the paper's bottleneck stride) or v1.5 (torchvision)", True),
    Column("backend", "string", "", "torch, torch-compile, onnxruntime, openvino, tensorrt", True),
    Column("precision", "string", "", "precision asked for: fp32, fp16, bf16", True),
    Column("device", "string", "", "cpu or cuda", True),
    Column("mode", "string", "",
           "latency (one request at a time) or throughput (several in flight); LoadGen rows: their scenario", True),
    Column("batch_size", "integer", "images", "images per request (LoadGen Offline: the batch it ran)", True),
    Column("input_size", "integer", "pixels", "height and width of the input images", True),
    Column("iterations", "integer", "requests", "timed samples kept"),
    *_percentile(50),
    *_percentile(90),
    *_percentile(99),
    Column("latency_ms_mean", "number", "ms", "mean request latency"),
    Column("latency_ms_std", "number", "ms", "standard deviation of the request latencies"),
    Column("latency_ms_min", "number", "ms", "fastest request"),
    Column("latency_ms_max", "number", "ms", "slowest request"),
    Column("cv", "number", "fraction", "coefficient of variation, std / mean (describes the machine)"),
    Column("median_precision", "number", "fraction",
           "how far the median's 95% interval reaches from it, relative, on its wider side: "
           "max(p50 - p50_low, p50_high - p50) / p50"),
    Column("drift", "number", "fraction", "median of the last third of the samples over the first third, minus 1"),
    Column("unbounded", "string", "", "percentiles the samples cannot bound, and how many samples they need"),
    Column("images_per_s", "number", "images/s",
           "latency mode: batch / mean latency; throughput mode: batch x (requests finished in the window + "
           "the in-window share of those still in flight at its end) / window length; "
           "LoadGen rows: samples/s (completed, for Server)"),
    Column("images_per_s_low", "number", "images/s",
           "lower end of images/s's 95% interval (from the mean latency's, by batch means)"),
    Column("images_per_s_high", "number", "images/s", "upper end of that interval"),
    Column("gmacs", "number", "GMACs", "analytic multiply-adds per image (convs + fc), 1e9"),
    Column("paper_gmacs", "number", "GMACs", "the paper's Table 1 figure, 1e9 multiply-adds"),
    Column("achieved_gflops", "number", "GFLOP/s", "2 x gmacs x images_per_s"),
    Column("peak_gflops", "number", "GFLOP/s", "GEMM roof measured in the same run on the same threads"),
    Column("roofline_fraction", "number", "fraction", "achieved_gflops / peak_gflops"),
    Column("parity_status", "string", "", "pass, fail or error against PyTorch fp32"),
    Column("rel_l2_err", "number", "fraction", "relative L2 error of the logits against PyTorch fp32"),
    Column("top1_agreement", "number", "fraction", "share of images whose top-1 class matches PyTorch fp32"),
    Column("top1_agreement_low", "number", "fraction", "lower end of its 95% interval (Wilson's) over the images"),
    Column("top1_agreement_high", "number", "fraction", "upper end of that interval"),
    Column("accuracy_status", "string", "",
           "pass / fail (judged on real weights and images), 'not established' (bf16 / int8 on the seeded model: "
           "never picked), 'not needed' (fp32, tf32, fp16: parity judges them)"),
    Column("accuracy_reason", "string", "", "why the accuracy failed or is not established"),
    Column("accuracy_images", "integer", "images", "images the accuracy and agreement were judged on"),
    Column("threads", "integer", "threads", "threads the runtime reports it used, in total for the cell"),
    Column("in_flight", "integer", "requests", "requests in flight (1 in latency mode)"),
    Column("threads_per_request", "integer", "threads", "threads each request runs on"),
    Column("streams", "integer", "requests", "streams the runtime runs (OpenVINO NUM_STREAMS, else in_flight)"),
    Column("compile_graphs", "integer", "graphs", "torch-compile: graphs compiled before timing"),
    Column("graph_breaks", "integer", "breaks", "torch-compile: graph breaks while compiling"),
    Column("recompiles", "integer", "graphs", "torch-compile: graphs compiled during warm-up or timing (0 expected)"),
    Column("compile_s", "number", "s", "torch-compile: the compile of this batch size (and, with CUDA graphs, their "
           "recording), before any timing"),
    Column("compile_mode", "string", "", "torch-compile: default, or reduce-overhead (CUDA graphs, --cuda-graphs)"),
    Column("compute_precision", "string", "", "the precision the runtime says it computes in"),
    Column("executed_precision", "string", "",
           "OpenVINO: precisions its runtime model executed, e.g. 'int8 53/53 convolutions'"),
    Column("provider", "string", "", "runtime, version and execution provider"),
    Column("export_s", "number", "s", "time to export the artifact (from its manifest when cached)"),
    Column("export_cached", "boolean", "", "the artifact came from the store"),
    Column("load_s", "number", "s", "session creation / compilation time"),
    Column("valid", "boolean", "",
           "median known within the target precision, no drift, enough iterations, parity passed"),
    Column("invalid_reasons", "string", "",
           "why valid is false: 'code: message' reasons, '; '-separated (codes: measure/validity.py)"),
    Column("status", "string", "",
           "ok, parity_failed, unavailable, oom, error; select: not_raced (left out before the race)", True),
    Column("error", "string", "", "the reason when status is not ok"),
    Column("fingerprint_id", "string", "", "hash of the machine's hard fingerprint keys"),
    Column("cuda_graphs", "boolean", "", "torch on CUDA: CUDA graph replays were timed"),
    Column("host_peak_rss_mb", "number", "MiB", "the process's peak resident memory during the cell"),
    Column("gpu_sm_clock_mhz", "number", "MHz", "mean SM clock over the cell (NVML)"),
    Column("gpu_mem_clock_mhz", "number", "MHz", "mean memory clock over the cell (NVML)"),
    Column("gpu_power_w", "number", "W", "mean power over warm-up and timed window (from the total-energy "
           "counter; prepare, i.e. torch-compile's compile or CUDA-graph capture, left out)"),
    Column("gpu_temp_c", "number", "°C", "highest GPU temperature seen during the cell"),
    Column("gpu_mem_used_mb", "number", "MiB", "highest device memory used (whole GPU)"),
    Column("energy_per_image_j", "number", "J", "gpu_power_w / images_per_s; empty under MIG"),
    Column("gpu_throttle", "string", "", "NVML clock-event reasons seen during the cell (any makes it invalid)"),
    Column("telemetry_note", "string", "", "why telemetry is partial"),
    # LoadGen rows (resnet-bench loadgen; the full profile's Offline and Server): empty elsewhere.
    Column("scenario", "string", "", "LoadGen scenario: singlestream, multistream, offline, server"),
    Column("loadgen_rules", "string", "", "the rules the run followed (quick or mlperf; not an MLPerf result)"),
    Column("target_qps", "number", "queries/s",
           "Server: the Poisson arrival rate asked (the peak's, after a search); others: what sized the run"),
    Column("qps", "number", "queries/s",
           "LoadGen's rate: SingleStream / MultiStream queries/s, Server completed samples/s, Offline samples/s"),
    Column("query_count", "integer", "queries", "queries LoadGen counted in the performance run"),
    Column("duration_s", "number", "s", "wall time of the performance run"),
    Column("latency_bound_ms", "number", "ms", "Server: the latency bound the held percentile must meet"),
    Column("loadgen_percentile", "number", "percent", "the latency percentile LoadGen held the run to (90 or 99)"),
    Column("loadgen_valid", "boolean", "", "LoadGen's verdict: VALID"),
    Column("loadgen_invalid_reason", "string", "", "why LoadGen said INVALID (constraints, minimums, early stopping)"),
    Column("early_stopping_ms", "number", "ms",
           "LoadGen's early-stopping estimate of the held percentile (SingleStream, MultiStream)"),
    Column("early_stopping", "string", "", "LoadGen's early-stopping result, in its words"),
    Column("overlatency_queries", "integer", "queries", "Server: queries over the latency bound"),
    Column("overlatency_allowed", "integer", "queries",
           "Server: the most queries over the bound LoadGen's early stopping lets pass at this query count"),
    Column("server_search_steps", "integer", "runs",
           "Server: LoadGen runs of the peak search behind the row (0: one run at a given QPS); steps in search.json"),
    Column("server_batching", "string", "",
           "Server: the dynamic batcher (largest batch, timeout, buckets, request streams), chosen from the bound "
           "and the measured service times"),
    Column("server_mean_batch", "number", "images", "Server: the mean batch the batcher formed in the row's run"),
    Column("offline_batch_choice", "string", "", "Offline: images/s of each candidate batch in throughput mode"),
    Column("closed_loop_images_per_s", "number", "images/s",
           "our closed-loop figure on the same instance, same run (latency mode, or throughput mode for Offline)"),
    Column("closed_loop_latency_ms_p90", "number", "ms", "p90 of that closed-loop measurement"),
    Column("closed_loop_latency_ms_p99", "number", "ms", "p99 of that closed-loop measurement; empty when unbounded"),
    Column("loadgen_accuracy_samples", "integer", "images", "images in LoadGen's accuracy run (parity columns)"),
    Column("accuracy_top1", "number", "fraction", "top-1 accuracy against the labels of --images"),
    Column("accuracy_top1_low", "number", "fraction", "lower end of its 95% interval (Wilson's)"),
    Column("accuracy_top1_high", "number", "fraction", "upper end of that interval"),
    Column("reference_accuracy_top1", "number", "fraction", "PyTorch fp32's top-1 accuracy on the same images"),
    Column("accuracy_drop", "number", "fraction",
           "1 - accuracy_top1 / reference_accuracy_top1: the relative top-1 cost (MLPerf allows 1%)"),
    Column("accuracy_drop_low", "number", "fraction",
           "lower end of its 95% interval (paired over the images, fp32's accuracy taken as known)"),
    Column("accuracy_drop_high", "number", "fraction", "upper end of that interval"),
    Column("images_sha256", "string", "", "the evaluation images (--images) by content; empty: seeded images"),
    Column("calibration_sha256", "string", "",
           "the int8 calibration images (--calibration-images) by content; empty: seeded images"),
    Column("loadgen_settings", "string", "", "LoadGen's effective test settings as it logged them (JSON)"),
    Column("loadgen_log_dir", "string", "", "LoadGen's log folder for the row, relative to the run folder"),
    Column("process_spread", "number", "fraction",
           "a pick's finalist: sd of log images/s between fresh processes (the confirmation rounds)"),
    Column("process_rounds", "integer", "processes", "fresh processes the finalist was re-measured in"),
    Column("race_state", "string", "", "select: picked, tied or out (the race's end for this candidate)"),
    Column("race_round", "integer", "rounds", "select: the round the candidate left the race in"),
    Column("race_reason", "string", "", "select: why it left (over the budget, dominated, not raced...)"),
    Column("machine_kind", "string", "", "fleet: the node's machine kind (its resnet-bench/kind label)"),
    Column("node_id", "string", "", "fleet: the Ray node the row was measured on"),
    Column("attempt", "integer", "", "fleet: 1, or 2 when the cell was rerun after its worker or node died"),
    Column("cost_per_million", "number", "price unit",
           "fleet with --prices: price per hour / 3600 / images per second x 1e6 (the Server peak's rate on a "
           "Server row, else the closed loop's)"),
    Column("cost_basis", "string", "", "the price, its basis, date and source, and which rate the cost is at"),
    Column("git_commit", "string", "", "the commit of the code that produced the row"),
    Column("git_dirty", "boolean", "", "the working tree had uncommitted changes when the row was produced"),
    Column("schema_version", "integer", "", f"version of this row definition ({SCHEMA_VERSION})", True),
)


def column_names() -> list[str]:
    return [column.name for column in ROW]


def json_schema() -> dict:
    properties = {}
    for column in ROW:
        description = f"{column.description} [{column.unit}]" if column.unit else column.description
        kind = column.type if column.required else [column.type, "null"]
        properties[column.name] = {"type": kind, "description": description}
    properties["schema_version"]["maximum"] = SCHEMA_VERSION
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"resnet-bench result row, schema version {SCHEMA_VERSION}",
        "type": "object",
        "properties": properties,
        "required": [column.name for column in ROW if column.required],
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def markdown_table() -> str:
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.unit} | {c.description} |" for c in ROW]
    return "\n".join(lines) + "\n"


SCHEMA_FILE = PACKAGE.parent / "results" / "schema.json"
DOC = PACKAGE.parent / "docs" / "results-schema.md"


def write_schema(path: str | Path = SCHEMA_FILE, doc: str | Path = DOC) -> Path:
    """Rewrite results/schema.json and the column table in docs/results-schema.md (the lines from
    its header row to the first line that is not a table row)."""
    path = Path(path)
    path.write_text(schema_text())
    lines = Path(doc).read_text().splitlines(keepends=True)
    start = lines.index(markdown_table().splitlines(keepends=True)[0])
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    Path(doc).write_text("".join(lines[:start]) + markdown_table() + "".join(lines[end:]))
    return path

