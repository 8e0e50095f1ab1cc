"""LoadGen scenarios on one loaded backend instance, and the ``resnet-bench loadgen`` cell.

Per scenario, on the same instance and in this order:

1. LoadGen's accuracy run over the accuracy images (the seeded parity images, or ``--images``):
   every answer kept by sample index and compared with PyTorch fp32 by ``parity``'s rules
   (agreement), and with the labels when given (accuracy).
2. A closed-loop figure of our own (``scenarios.latency`` / ``throughput``): the comparison
   the row carries (``closed_loop_*``), and what sizes the LoadGen run. Offline measures each
   candidate batch this way and runs LoadGen with the one of the most images/s.
3. LoadGen's performance run: one, or for Server without a target QPS the peak search (every
   step's logs kept, the steps in ``search.json``); the row is the peak step.

Instances: SingleStream and MultiStream run on a latency-mode instance (one request at a
time, every thread), Offline on a throughput-mode one (``in_flight()`` lanes). Server runs
on the latency-mode instance on a CPU (a request on all threads is the fastest answer, and a
2-core CPU has no spare lane) and on the throughput-mode one on a GPU (its streams), unless
``server_mode`` says otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions, backend_class
from resnet_bench.backends.base import Backend
from resnet_bench.backends.open import open_backend
from resnet_bench.measure.timing import RULES, StopRule
from resnet_bench.measure.validity import PARITY_FAILED, reason
from resnet_bench.model.architecture import check_depth
from resnet_bench.model.images import evaluation_set, images_sha256, synthetic_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.numerics.precision import check_precision
from resnet_bench.parity.accuracy import AccuracyBudget, accuracy_columns, check_inputs
from resnet_bench.parity.verdict import judge_outputs, reference_logits
from resnet_bench.results.rows import Run, failure_row, measured_row
from resnet_bench.scenarios import closed_loop
from resnet_bench.scenarios.loadgen.search import peak_search
from resnet_bench.scenarios.loadgen.settings import MULTISTREAM_SAMPLES, SCENARIOS, Duration, Load, duration
from resnet_bench.scenarios.loadgen.sut import (
    Batching,
    Outcome,
    Runner,
    SystemUnderTest,
    bucket_lanes,
    direct_runner,
    lane_runners,
    run_loadgen,
    staged_runner,
)
from resnet_bench.util.files import write_atomic

DEFAULT_BOUND_MS = {"cuda": 15.0, "cpu": 100.0}  # ResNet-50's MLPerf bound on a GPU; a CPU's usable default
DEFAULT_OFFLINE_BATCHES = {"cpu": (1, 8), "cuda": (8, 32, 128)}
# The batch sizes the Server's dynamic batcher may form (each is probed until one's service time
# passes half the latency bound).
BATCH_CANDIDATES = {"cpu": (1, 2, 4, 8), "cuda": (1, 2, 4, 8, 16, 32, 64, 128, 256)}
SERVER_MODES = ("latency", "throughput")
OFFLINE_MARGIN = 1.3  # Offline's expected rate over the measured one: the run lasts ~1.4x its minimum


@dataclass(frozen=True)
class Plan:
    """How the scenarios are run, whatever the backend."""

    span: Duration
    bound_ms: float = 100.0
    server_qps: float | None = None  # None: search for the peak
    offline_batches: tuple[int, ...] = (1, 8)
    tolerance: float = 0.1  # the peak search stops when the bracket is within 1 + tolerance
    max_steps: int = 8
    reference_rule: StopRule = field(default_factory=lambda: RULES["loadgen_reference"])
    batch_candidates: tuple[int, ...] = (1,)  # Server's dynamic batcher: the sizes it may form ((1,): none)
    probe_rule: StopRule = field(default_factory=lambda: RULES["batch_probe"])  # the batcher's service times


@dataclass
class Inputs:
    accuracy_images: np.ndarray
    performance_images: np.ndarray  # LoadGen's performance samples (at least the largest batch)
    reference: np.ndarray | None = None  # PyTorch fp32 logits of the accuracy images


@dataclass
class ScenarioResult:
    values: dict  # the row's LoadGen, closed-loop and search columns
    accuracy_outputs: np.ndarray  # logits of the accuracy images, in their order
    steps: list[dict] = field(default_factory=list)


class ScenarioRunner:
    """The LoadGen scenarios on one loaded backend instance; logs under ``log_root/<scenario>``."""

    def __init__(self, backend: Backend, plan: Plan, inputs: Inputs, log_root: str | Path) -> None:
        self.backend, self.plan, self.inputs, self.log_root = backend, plan, inputs, Path(log_root)
        self.shape = tuple(inputs.performance_images.shape[1:])
        self._latency: closed_loop.Measurement | None = None

    def run(self, scenario: str) -> ScenarioResult:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
        return getattr(self, scenario)()

    # -- the pieces -----------------------------------------------------------------------------
    def _measure(self, mode: str, batch: int) -> closed_loop.Measurement:
        prepared = self.backend.prepare(self.inputs.performance_images[:batch])
        return closed_loop.run(mode, self.backend, prepared, batch, self.plan.reference_rule)

    def latency_reference(self) -> closed_loop.Measurement:
        if self._latency is None:
            self._latency = self._measure("latency", 1)
        return self._latency

    def _sut(self, images: np.ndarray, runner: Runner | list[Runner], batch: int = 1,
             keep: bool = False, batching: Batching | None = None) -> SystemUnderTest:
        if isinstance(runner, list):
            if all(getattr(run, "reads_staged", False) for run in runner):  # device memory on a GPU
                images = self.backend.stage(images)
            return SystemUnderTest(images, lanes=runner, batch=batch, keep_outputs=keep, batching=batching)
        return SystemUnderTest(images, inline=runner, batch=batch, keep_outputs=keep)

    def _accuracy(self, scenario: str, runner: Runner | list[Runner], batch: int = 1,
                  batching: Batching | None = None, **load) -> np.ndarray:
        images = self.inputs.accuracy_images
        outcome = run_loadgen(self._sut(images, runner, batch, keep=True, batching=batching),
                              Load(scenario, accuracy=True, **load), self.plan.span,
                              self.log_root / scenario / "accuracy")
        missing = sorted(set(range(len(images))) - set(outcome.outputs))
        if missing:
            raise RuntimeError(f"LoadGen's accuracy run left {len(missing)} samples unanswered")
        return np.stack([outcome.outputs[i] for i in range(len(images))])

    def _perform(self, scenario: str, runner: Runner | list[Runner], load: Load, batch: int = 1,
                 folder: str = "performance", batching: Batching | None = None) -> Outcome:
        sut = self._sut(self.inputs.performance_images, runner, batch, batching=batching)
        return run_loadgen(sut, load, self.plan.span, self.log_root / scenario / folder)

    @staticmethod
    def _closed_loop(measured: closed_loop.Measurement, percentiles: bool = True) -> dict:
        values = {"closed_loop_images_per_s": measured.images_per_s}
        if percentiles:
            values.update(closed_loop_latency_ms_p90=measured.stats["latency_ms_p90"],
                          closed_loop_latency_ms_p99=measured.stats["latency_ms_p99"])
        return values

    @staticmethod
    def _values(outcome: Outcome, batch: int, **extra) -> dict:
        return {**outcome.result.columns(), "batch_size": batch, "duration_s": outcome.wall_s,
                "loadgen_settings": json.dumps(outcome.result.settings, sort_keys=True),
                "loadgen_log_dir": str(outcome.log_dir), **extra}

    # -- the scenarios --------------------------------------------------------------------------
    def singlestream(self) -> ScenarioResult:
        run = direct_runner(self.backend)
        outputs = self._accuracy("singlestream", run)
        reference = self.latency_reference()
        expected = reference.stats["latency_ms_mean"] / 1e3
        outcome = self._perform("singlestream", run, Load("singlestream", expected_s=expected))
        return ScenarioResult(self._values(outcome, 1, **self._closed_loop(reference)), outputs)

    def multistream(self) -> ScenarioResult:
        run = direct_runner(self.backend)
        outputs = self._accuracy("multistream", run)
        expected = MULTISTREAM_SAMPLES * (self._latency.stats["latency_ms_mean"] / 1e3 if self._latency else 0.01)
        outcome = self._perform("multistream", run, Load("multistream", expected_s=expected))
        return ScenarioResult(self._values(outcome, MULTISTREAM_SAMPLES), outputs)

    def offline(self) -> ScenarioResult:
        """The batch of the most images/s, measured in this instance's mode: throughput (its
        lanes), or latency (one request at a time: with CUDA graphs, which replay on one stream)."""
        one_lane = self.backend.options.mode == "latency"
        mode = "latency" if one_lane else "throughput"
        measured = {batch: self._measure(mode, batch) for batch in self.plan.offline_batches}
        batch = max(measured, key=lambda b: measured[b].images_per_s)
        lanes = ([staged_runner(self.backend, batch, self.shape)] if one_lane else
                 lane_runners(self.backend, self.backend.in_flight(), batch, self.shape))
        outputs = self._accuracy("offline", lanes, batch)
        # LoadGen sizes the one query by the expected rate (rate x min duration x 1.1 samples): a guess
        # below the real rate ends the run early, INVALID. Ask for more; once more if still short.
        rate = OFFLINE_MARGIN * measured[batch].images_per_s
        outcome = self._perform("offline", lanes, Load("offline", target_qps=rate), batch)
        if not outcome.result.valid and any(r.startswith("min duration") for r in outcome.result.reasons):
            rate = OFFLINE_MARGIN * outcome.result.samples_per_s
            outcome = self._perform("offline", lanes, Load("offline", target_qps=rate), batch, "performance-2")
        choice = "; ".join(f"batch {b}: {m.images_per_s:.4g} images/s" for b, m in measured.items())
        values = self._values(outcome, batch, offline_batch_choice=choice,
                              **self._closed_loop(measured[batch], percentiles=False))
        return ScenarioResult(values, outputs)

    def _server_lanes(self) -> tuple[Runner | list[Runner], closed_loop.Measurement]:
        """The Server's request streams and their closed-loop capacity at batch 1."""
        if self.backend.options.mode == "latency":
            return [direct_runner(self.backend)], self.latency_reference()
        capacity = self._measure("throughput", 1)
        return lane_runners(self.backend, self.backend.in_flight(), 1, self.shape), capacity

    def batching(self) -> tuple[Batching, dict[str, dict[int, float]]]:
        """The dynamic batcher for this instance under the plan's bound. Each candidate batch's
        service time (a mean) is probed until it passes half the bound: one request at a time, and
        on a throughput instance also with all its lanes busy at once (lanes sharing a device slow
        each other down: lanes x batch / images/s), each list until its own passes. A batcher is
        chosen from each list (``Batching.for_bound``); the one whose lanes serve more queries per
        second at full batches is kept. Returns it and the service times by number of lanes."""
        lanes = self.backend.in_flight() if self.backend.options.mode == "throughput" else 1
        service: dict[str, dict[int, float]] = {"1": {}} if lanes == 1 else {"1": {}, str(lanes): {}}
        half = self.plan.bound_ms / 2
        for batch in self.plan.batch_candidates:
            probing = [n for n, times in service.items() if not times or max(times.values()) <= half]
            if not probing:  # every list has passed half the bound
                break
            prepared = self.backend.prepare(self.inputs.performance_images[:batch])
            if "1" in probing:  # the mean, as on the busy side
                service["1"][batch] = closed_loop.latency(self.backend, prepared, batch,
                                                          self.plan.probe_rule).stats["latency_ms_mean"]
            if str(lanes) in probing and lanes > 1:  # the mean time a batch holds a lane while all are busy
                # (Little's law; the requests' own latencies would not do: a device that favours one lane
                # keeps that lane's short)
                busy = closed_loop.throughput(self.backend, prepared, batch, self.plan.probe_rule)
                service[str(lanes)][batch] = lanes * batch * 1e3 / busy.images_per_s
        choices = [(Batching.for_bound(self.plan.bound_ms, times, int(n)), times) for n, times in service.items()]
        best = max(choices, key=lambda c: Batching.capacity(*c))[0]
        return best, service

    def server(self) -> ScenarioResult:
        plan = self.plan
        lanes, capacity = self._server_lanes()
        batching, service = (self.batching() if len(plan.batch_candidates) > 1 else (None, {}))
        start = capacity.images_per_s / 2
        if batching is not None and batching.max_batch > 1:  # the chosen streams, ready for every bucket
            if self.backend.options.mode == "latency":
                lanes = [direct_runner(self.backend, buckets=batching.buckets)]
            else:
                lanes = bucket_lanes(self.backend, batching.streams, batching.buckets, self.shape)
            start = max(start, Batching.capacity(batching, service[str(batching.streams)]) / 2)
        outputs = self._accuracy("server", lanes, batching=batching, bound_ms=plan.bound_ms)

        def run_at(qps: float, folder: str) -> Outcome:
            return self._perform("server", lanes, Load("server", target_qps=qps, bound_ms=plan.bound_ms), 1, folder,
                                 batching=batching)

        closed = {**self._closed_loop(capacity),
                  "server_batching": batching.describe() if batching else "no batching (batch 1)"}
        if plan.server_qps is not None:
            outcome = run_at(plan.server_qps, "performance")
            return ScenarioResult(self._values(outcome, 1, latency_bound_ms=plan.bound_ms, server_search_steps=0,
                                               server_mean_batch=_mean(outcome.batches), **closed), outputs)

        def record(steps: list, peak=None, done: bool = False) -> list[dict]:  # after every step: a cut-off keeps it
            valid = [step for step in steps if step.outcome.result.valid]
            best = peak if done else max(valid, key=lambda step: step.target_qps, default=None)
            records = [step.record() for step in steps]
            write_atomic(self.log_root / "server" / "search.json", json.dumps(
                {"bound_ms": plan.bound_ms, "start_qps": start, "tolerance": plan.tolerance,
                 "batching": closed["server_batching"],
                 "service_ms_by_lanes": {n: {str(b): ms for b, ms in times.items()} for n, times in service.items()},
                 "finished": done, "peak_qps": best.target_qps if best else None, "steps": records}, indent=2))
            return records

        peak, steps = peak_search(run_at, start, plan.tolerance, plan.max_steps, on_step=record)
        records = record(steps, peak, done=True)
        chosen = peak or min(steps, key=lambda s: s.target_qps)
        values = self._values(chosen.outcome, 1, latency_bound_ms=plan.bound_ms, server_search_steps=len(steps),
                              server_mean_batch=_mean(chosen.outcome.batches), **closed)
        if peak is None:
            values["loadgen_invalid_reason"] = (f"no target QPS VALID down to {chosen.target_qps:.3g}: "
                                                + values["loadgen_invalid_reason"])
        return ScenarioResult(values, outputs, records)


# -- the CLI's cell: one depth x backend x precision x device ---------------------------------------

@dataclass(frozen=True)
class LoadgenConfig:
    depth: int = 50
    backend: str = "onnxruntime"
    precision: str = "fp32"
    device: str = "cpu"
    scenarios: tuple[str, ...] = SCENARIOS
    duration: str = "quick"
    percentile: int | None = None  # MultiStream and Server; None: the duration's (quick 90, mlperf 99)
    latency_bound_ms: float | None = None  # Server; None: 15 ms on a GPU, 100 ms on a CPU
    server_qps: float | None = None  # None: peak search
    server_mode: str | None = None  # the Server's instance; None: latency on a CPU, throughput on a GPU
    offline_batches: tuple[int, ...] | None = None
    variant: str = "v1.5"
    weights: str | None = None
    input_size: int = 224
    threads: int | None = None
    artifacts: str = "artifacts"
    images: str | None = None  # accuracy images (default: the seeded parity images)
    labels: str | None = None  # "file label" lines for --images: accuracy besides agreement
    calibration_images: str | None = None  # int8 calibrates on these (disjoint from --images); None: seeded
    max_accuracy_drop: float = 0.01  # relative top-1 drop a precision may cost (MLPerf: 1%)
    min_top1_agreement: float | None = None  # unlabelled real images: the agreement floor (None: per precision)
    accuracy_count: int = 32
    tolerance: float = 0.1
    max_steps: int = 8
    batching: bool = True  # Server: the dynamic batcher (batch sizes from BATCH_CANDIDATES)
    cuda_graphs: bool = False  # torch on CUDA: Offline on one lane replaying CUDA graphs (torch-compile: their mode)

    def __post_init__(self) -> None:
        check_depth(self.depth)
        backend_class(self.backend)
        check_precision(self.precision)
        BackendOptions(self.device, threads=self.threads, cuda_graphs=self.cuda_graphs)
        spec = ModelSpec(self.depth, self.variant, self.weights, input_size=self.input_size)
        AccuracyBudget(self.max_accuracy_drop, self.min_top1_agreement)
        check_inputs(spec.num_classes, self.images, self.labels, self.calibration_images)
        if not self.scenarios:
            raise ValueError("scenario: give at least one")
        for scenario in self.scenarios:
            if scenario not in SCENARIOS:
                raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
        duration(self.duration, self.percentile)
        for name in ("latency_bound_ms", "server_qps"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.server_mode is not None and self.server_mode not in SERVER_MODES:
            raise ValueError(f"server mode must be latency or throughput, got {self.server_mode!r}")
        if self.offline_batches is not None and (not self.offline_batches or min(self.offline_batches) < 1):
            raise ValueError(f"offline batches must be at least 1, got {list(self.offline_batches)}")
        if self.accuracy_count < 1 or not self.tolerance > 0 or self.max_steps < 1:
            raise ValueError("accuracy count and search steps must be at least 1, tolerance positive")

    def to_json(self) -> dict:
        return {"command": "loadgen", **asdict(self)}

    def plan(self, span: Duration | None = None) -> Plan:
        return Plan(span or duration(self.duration, self.percentile),
                    self.latency_bound_ms or DEFAULT_BOUND_MS[self.device], self.server_qps,
                    self.offline_batches or DEFAULT_OFFLINE_BATCHES[self.device], self.tolerance, self.max_steps,
                    RULES["loadgen_reference"], BATCH_CANDIDATES[self.device] if self.batching else (1,))

    def instances(self) -> list[tuple[str, tuple[str, ...]]]:
        """(instance mode, its scenarios in order), latency first."""
        server = self.server_mode or ("latency" if self.device == "cpu" else "throughput")
        offline = "latency" if self.cuda_graphs else "throughput"  # graphs replay on one stream
        on = {"singlestream": "latency", "multistream": "latency", "offline": offline, "server": server}
        return [(mode, tuple(s for s in SCENARIOS if s in self.scenarios and on[s] == mode))
                for mode in SERVER_MODES if any(on[s] == mode for s in self.scenarios)]


def run_cell(config: LoadgenConfig, run_dir: str | Path, writer, fingerprint: dict | None = None,
             span: Duration | None = None, on_row=None) -> list[dict]:
    """Every scenario of ``config`` as a row in ``writer`` (a results.RunWriter); LoadGen's logs
    under ``run_dir/loadgen/<cell id>/``. Failures are rows. ``fingerprint``: the run's
    (``machine.fingerprint.collect()``), for the rows' machine and provenance."""
    plan = config.plan(span)
    run = Run.of(Path(run_dir).name, fingerprint or {})
    spec = ModelSpec(config.depth, config.variant, config.weights, input_size=config.input_size)
    batches = tuple(sorted({1, MULTISTREAM_SAMPLES, *plan.offline_batches}))
    calibration = Path(config.calibration_images) if config.calibration_images else None
    exporter = Exporter(spec, ExportOptions(batches=batches, out=Path(config.artifacts),
                                            calibration_images=calibration))
    evaluation = evaluation_set(config.input_size, config.accuracy_count, config.images, config.labels)
    count = max(plan.span.performance_samples, *plan.offline_batches, *plan.batch_candidates)
    inputs = Inputs(evaluation.images, synthetic_images(count, config.input_size, seed=5).numpy(),
                    reference_logits(exporter, evaluation.images))
    budget = AccuracyBudget(config.max_accuracy_drop, config.min_top1_agreement)
    hashes = {"images_sha256": evaluation.sha256,
              "calibration_sha256": images_sha256(calibration) if calibration else None}
    rules = plan.span.rules(plan.bound_ms)
    rows: list[dict] = []

    def cell(scenario: str, batch: int) -> dict:
        return dict(depth=config.depth, variant=config.variant, backend=config.backend, precision=config.precision,
                    device=config.device, mode=scenario, batch_size=batch, input_size=config.input_size)

    def emit(row: dict) -> None:
        writer.add(row)
        rows.append(row)
        if on_row:
            on_row(row)

    for mode, names in config.instances():
        options = BackendOptions(config.device, config.precision, config.threads, mode=mode,
                                 cuda_graphs=config.cuda_graphs)
        try:
            opened = open_backend(config.backend, options, exporter)
        except Exception as exc:
            for name in names:
                row = failure_row(cell(name, _batch(name)), run, exc, scenario=name, loadgen_rules=rules)
                emit({**row, "parity_status": row["status"]})
            continue
        with opened.backend as backend:
            runner = ScenarioRunner(backend, plan, inputs, Path(run_dir) / "loadgen" / f"{config.depth}-"
                                    f"{config.backend}-{config.precision}-{config.device}-{config.input_size}")
            for name in names:
                try:
                    result = runner.run(name)
                except Exception as exc:
                    emit(failure_row(cell(name, _batch(name)), run, exc, scenario=name, loadgen_rules=rules))
                    continue
                verdict = judge_outputs(backend, config.backend, [result.accuracy_outputs], inputs.reference)
                values = dict(result.values)
                reasons = [reason("loadgen_invalid", r) for r in values.get("loadgen_invalid_reason", "").split("; ")
                           if r]
                if verdict.status != "pass":
                    reasons.append(PARITY_FAILED)
                values.update(accuracy_columns(result.accuracy_outputs, inputs.reference, evaluation.labels,
                                               config.precision, budget,
                                               real=config.weights is not None and evaluation.real))
                values.update(parity_status=verdict.status, rel_l2_err=verdict.rel_l2_err,
                              top1_agreement=verdict.top1_agreement, loadgen_accuracy_samples=len(evaluation.images),
                              export_s=opened.export_s, export_cached=opened.export_cached, load_s=opened.load_s,
                              cuda_graphs=bool(config.cuda_graphs and mode == "latency"), **hashes)
                values["loadgen_log_dir"] = os.path.relpath(values["loadgen_log_dir"], run_dir)
                batch = values.pop("batch_size")
                emit(measured_row(cell(name, batch), run, images_per_s=values.pop("images_per_s"), reasons=reasons,
                                  status="ok" if verdict.status == "pass" else "parity_failed", error=verdict.reason,
                                  runtime=backend.describe(), scenario=name, loadgen_rules=rules, **values))
    return rows


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _batch(scenario: str) -> int:
    """The batch a scenario's row names when the scenario did not run."""
    return MULTISTREAM_SAMPLES if scenario == "multistream" else 1
