"""MLPerf LoadGen scenarios over any of our backends (the official bindings, ``mlperf_loadgen``).

LoadGen decides when each query arrives and reads every latency off its own clock, from the
time the query was *scheduled*: a slow stretch delays the queries behind it, and they count
it (no coordinated omission). We give it a system under test (SUT) over one loaded backend:

* SingleStream / MultiStream: the next query waits for the last (LoadGen's rule), so the SUT
  answers inline, on LoadGen's thread, through the backend's own ``prepare`` / ``run``: a
  MultiStream query of 8 samples is one batch of 8.
* Server (Poisson arrivals at a target QPS) and Offline (every sample in one query): queries
  go into a queue that ``lanes`` worker threads drain. A lane is one request stream of the
  backend (``Backend.worker``) with an input buffer bound once; each query is copied into it
  in place, so lanes never share a runtime handle (a TensorRT context, an OpenVINO request).
  Offline cuts its query into batches of ``batch`` (the last one padded).

LoadGen writes its logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt``,
``mlperf_log_accuracy.json``) into the folder given; ``loadgen_log.parse`` reads the result
back from them. Its output never goes to our stdout.

Durations: ``QUICK`` runs for seconds and holds MultiStream and Server to p90 by default,
since LoadGen's early stopping can only bound a p99 after 662 (MultiStream) or 459 (Server,
none over the bound) queries, minutes for ResNet-50 on a CPU; ``MLPERF`` takes the minimums,
percentiles and seeds of the ``mlperf.conf`` built into LoadGen (ResNet-50's: 600 s, 1024
performance samples, MultiStream 662 queries, Offline 24,576 samples). Neither makes an
MLPerf result: nothing here is audited, and the row says which rules it followed.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from resnet_bench.backends.base import Backend, BackendOptions
from resnet_bench.scenarios.loadgen_log import LoadgenResult, parse

SCENARIOS = ("singlestream", "multistream", "offline", "server")
NAMES = {"singlestream": "SingleStream", "multistream": "MultiStream", "offline": "Offline", "server": "Server"}
MULTISTREAM_SAMPLES = 8
ACCURACY_QPS = 1000.0  # Server's arrival rate in accuracy runs: every sample is answered once, soon
# Fewest queries after which LoadGen's early stopping can bound the percentile when no query
# is over it (measured with LoadGen 6.0.17: p90 64; p99 Server 459, MultiStream 662).
EARLY_STOPPING_QUERIES = {90: {"singlestream": 64, "multistream": 64, "server": 64},
                          99: {"singlestream": 64, "multistream": 662, "server": 459}}


def _lg():
    try:
        import mlperf_loadgen
    except ImportError as exc:
        raise ValueError("LoadGen is not installed: pip install mlcommons-loadgen") from exc
    return mlperf_loadgen


def loadgen_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Duration:
    """How long each LoadGen run lasts, and which percentile MultiStream and Server are held to."""

    name: str
    min_duration_s: float = 5.0
    performance_samples: int = 64  # images LoadGen draws its queries from
    official: bool = False  # the mlperf.conf built into LoadGen (ResNet-50's rules) sets the rest
    percentile: int = 90  # MultiStream and Server (SingleStream is always p90)

    def __post_init__(self) -> None:
        if self.percentile not in EARLY_STOPPING_QUERIES:
            raise ValueError(f"percentile must be one of {', '.join(map(str, EARLY_STOPPING_QUERIES))}, "
                             f"got {self.percentile}")
        if self.min_duration_s <= 0 or self.performance_samples < 1:
            raise ValueError("a duration needs min_duration_s > 0 and performance_samples >= 1")

    def held(self, scenario: str) -> int:
        return 90 if scenario in ("singlestream", "offline") else self.percentile

    def rules(self, bound_ms: float | None = None) -> str:
        if self.official:
            bound = "" if bound_ms in (None, 15) else f", Server bound {bound_ms:g} ms instead of ResNet-50's 15 ms"
            return (f"mlperf: LoadGen {loadgen_version()}'s mlperf.conf ResNet-50 minimums and seeds{bound}; "
                    "unaudited, not an MLPerf result")
        return (f"{self.name}: >= {self.min_duration_s:g} s, >= {EARLY_STOPPING_QUERIES[self.percentile]['server']} "
                f"queries, MultiStream and Server held to p{self.percentile}; not MLPerf rules")


QUICK = Duration("quick")
MLPERF = Duration("mlperf", 600.0, 1024, official=True, percentile=99)
DURATIONS = {"quick": QUICK, "mlperf": MLPERF}


def duration(name: str, percentile: int | None = None) -> Duration:
    if name not in DURATIONS:
        raise ValueError(f"duration must be one of {', '.join(DURATIONS)}, got {name!r}")
    base = DURATIONS[name]
    if percentile is None or percentile == base.percentile:
        return base
    from dataclasses import replace

    return replace(base, percentile=percentile)


@dataclass(frozen=True)
class Load:
    """What one LoadGen run asks for, besides its duration."""

    scenario: str
    expected_s: float = 0.01  # SingleStream / MultiStream: expected query latency (sizes the run)
    target_qps: float = 1.0  # Server: the arrival rate; Offline: expected samples/s (sizes the run)
    bound_ms: float = 100.0  # Server: the latency bound
    accuracy: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        if not self.target_qps > 0 or not self.bound_ms > 0 or not self.expected_s > 0:
            raise ValueError("target QPS, latency bound and expected latency must be positive")


def build_settings(load: Load, span: Duration):
    lg = _lg()
    settings = lg.TestSettings()
    if span.official:
        if settings.FromConfig("", "resnet50", NAMES[load.scenario], 0) != 0:
            raise ValueError("LoadGen could not read its built-in mlperf.conf")
    else:
        settings.min_duration_ms = int(span.min_duration_s * 1000)
        settings.min_query_count = 1 if load.scenario == "offline" else EARLY_STOPPING_QUERIES[span.percentile][
            load.scenario]
    held = span.held(load.scenario) / 100
    settings.multi_stream_target_latency_percentile = held if load.scenario == "multistream" else 0.99
    settings.server_target_latency_percentile = held if load.scenario == "server" else 0.99
    settings.scenario = getattr(lg.TestScenario, NAMES[load.scenario])
    settings.mode = lg.TestMode.AccuracyOnly if load.accuracy else lg.TestMode.PerformanceOnly
    settings.single_stream_expected_latency_ns = int(load.expected_s * 1e9)
    settings.multi_stream_expected_latency_ns = int(load.expected_s * 1e9)
    settings.multi_stream_samples_per_query = MULTISTREAM_SAMPLES
    settings.offline_expected_qps = load.target_qps
    settings.server_target_qps = ACCURACY_QPS if load.accuracy else load.target_qps
    settings.server_target_latency_ns = int(load.bound_ms * 1e6)
    return settings


def refill(prepared: Any, images: Any) -> None:
    """Write a batch into the input a lane was bound to, in place, so the binding still holds:
    a numpy array (ONNX Runtime and OpenVINO on a CPU), an ONNX Runtime OrtValue on a GPU, a
    torch tensor, or TensorRT's prepared input (its ``input`` tensor). ``images`` is a numpy
    batch, or a torch tensor already on the device (``Backend.stage``)."""
    if isinstance(prepared, np.ndarray):
        np.copyto(prepared, images, casting="same_kind")
        return
    target = getattr(prepared, "input", prepared)
    if hasattr(target, "update_inplace"):
        target.update_inplace(np.ascontiguousarray(images, dtype=np.float32))
        return
    import torch

    source = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    target.copy_(source)
    if target.is_cuda:  # the lanes run on their own streams: the copy must have landed
        torch.cuda.current_stream(target.device).synchronize()


def pad(images: Any, batch: int) -> Any:
    """The last batch of an Offline query, filled up to ``batch`` with copies of its first image."""
    missing = batch - len(images)
    if missing <= 0:
        return images
    if isinstance(images, np.ndarray):
        return np.concatenate([images, np.repeat(images[:1], missing, axis=0)])
    import torch

    return torch.cat([images, images[:1].expand(missing, *images.shape[1:])])


Runner = Callable[[np.ndarray], np.ndarray]  # a batch of images -> logits on the host
WARMUP_CALLS = 2  # per lane thread, in that thread, before each LoadGen run (first calls allocate, autotune)
WARMUP_TIMEOUT_S = 900.0  # a lane whose warm-up hangs (a TensorRT build, say) ends the run with an error


def direct_runner(backend: Backend) -> Runner:
    """The backend's own lifecycle, one request at a time (a latency-mode instance)."""
    def run(images: np.ndarray) -> np.ndarray:
        output = backend.run(backend.prepare(images))
        backend.sync()
        return backend.fetch(output)
    return run


def lane_runners(backend: Backend, count: int, batch: int, shape: tuple[int, ...]) -> list[Runner]:
    """``count`` request streams, each with its own input buffer of ``batch`` images bound once.
    All buffers are prepared before any worker is made: ``prepare`` resets the backends' lane
    counter, and ``worker`` then hands out lanes 0, 1, ... in turn."""
    buffers = [backend.prepare(np.zeros((batch, *shape), np.float32)) for _ in range(count)]
    works = [backend.worker(buffer) for buffer in buffers]

    def runner(buffer: Any, work: Callable[[], object]) -> Runner:
        def run(images: np.ndarray) -> np.ndarray:
            real = len(images)
            refill(buffer, pad(images, batch))
            return np.asarray(backend.fetch(work()))[:real]
        run.reads_staged = True  # takes batches from Backend.stage's samples (direct_runner: host arrays only)
        return run

    return [runner(buffer, work) for buffer, work in zip(buffers, works, strict=True)]  # warmed by the SUT


class SystemUnderTest:
    """LoadGen's SUT and QSL over one backend. Samples are images already in memory (``images``,
    indexed by LoadGen's sample index); in accuracy runs every answer is kept by index."""

    def __init__(self, images: np.ndarray, inline: Runner | None = None, lanes: list[Runner] | None = None,
                 batch: int = 1, keep_outputs: bool = False) -> None:
        if (inline is None) == (lanes is None):
            raise ValueError("a SUT answers inline or through lanes, not both")
        self.images, self.inline, self.lanes, self.batch = images, inline, lanes or [], batch
        self.keep = keep_outputs
        self.outputs: dict[int, np.ndarray] = {}
        self.errors: list[BaseException] = []
        self.queue: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []

    # -- LoadGen's callbacks --------------------------------------------------------------------
    def issue(self, samples: list) -> None:
        if self.inline is not None:
            self._serve(list(samples), self.inline)
            return
        samples = list(samples)
        for start in range(0, len(samples), self.batch):
            self.queue.put(samples[start:start + self.batch])

    def flush(self) -> None:
        """Nothing is held back: every query is in the queue as soon as it arrives."""

    # -- answering ------------------------------------------------------------------------------
    def _serve(self, samples: list, run: Runner) -> None:
        lg = _lg()
        try:
            logits = np.ascontiguousarray(run(self.images[[s.index for s in samples]]), dtype=np.float32)
            logits = logits.reshape(len(samples), -1)
        except BaseException as exc:  # answer anyway, or LoadGen waits for ever; raised after the run
            self.errors.append(exc)
            logits = np.zeros((len(samples), 1), np.float32)
        if self.keep:
            for sample, row in zip(samples, logits, strict=True):
                self.outputs[sample.index] = row
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, row.ctypes.data, row.nbytes)
                                 for s, row in zip(samples, logits, strict=True)])

    def _drain(self, run: Runner, ready: threading.Barrier) -> None:
        try:  # in this thread: PyTorch keeps cuDNN's autotuned plans per thread, made on a first call
            for _ in range(WARMUP_CALLS):
                run(self.images[:1])  # a lane pads it to its own batch
        except BaseException as exc:  # __enter__ raises it: no run on a broken lane
            self.errors.append(exc)
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        while (samples := self.queue.get()) is not None:
            self._serve(samples, run)

    def __enter__(self) -> SystemUnderTest:
        """Start one thread per lane; each warms up in its own thread before LoadGen's first
        query. A lane whose warm-up fails or hangs stops every lane, and the error is raised."""
        ready = threading.Barrier(len(self.lanes) + 1, timeout=WARMUP_TIMEOUT_S)
        self.threads = [threading.Thread(target=self._drain, args=(run, ready), daemon=True) for run in self.lanes]
        for thread in self.threads:
            thread.start()
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            self.errors.append(TimeoutError(f"a LoadGen lane did not finish its warm-up in {WARMUP_TIMEOUT_S:.0f} s"))
        if self.errors:
            ready.abort()  # lanes still waiting return; one still warming up is a daemon, left behind
            for _ in self.threads:
                self.queue.put(None)
            raise self.errors[0]
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()


@dataclass(frozen=True)
class Outcome:
    result: LoadgenResult
    outputs: dict[int, np.ndarray]  # accuracy runs: logits by sample index
    wall_s: float  # our clock around the run (LoadGen's set-up included)
    log_dir: Path


def run_loadgen(sut: SystemUnderTest, load: Load, span: Duration, log_dir: str | Path) -> Outcome:
    """One LoadGen run (performance or accuracy) against ``sut``; its logs go to ``log_dir``."""
    lg = _lg()
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    count = len(sut.images)
    handle = lg.ConstructSUT(sut.issue, sut.flush)
    library = lg.ConstructQSL(count, min(count, span.performance_samples), lambda s: None, lambda s: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(log_dir)
    log.log_output.copy_summary_to_stdout = False
    log.log_output.copy_detail_to_stdout = False
    log.enable_trace = False
    try:
        with sut:
            start = time.perf_counter()
            # An audit.config in the working directory would change the test: name one that is not there.
            lg.StartTestWithLogSettings(handle, library, build_settings(load, span), log,
                                        str(log_dir / "no-audit.config"))
            wall = time.perf_counter() - start
    finally:
        lg.DestroyQSL(library)
        lg.DestroySUT(handle)
    if sut.errors:
        raise sut.errors[0]
    return Outcome(parse(log_dir), dict(sut.outputs), wall, log_dir)


@dataclass(frozen=True)
class Step:
    number: int
    phase: str  # bracket / bisect
    target_qps: float
    outcome: Outcome

    def record(self) -> dict:
        r = self.outcome.result
        return {"step": self.number, "phase": self.phase, "target_qps": self.target_qps, "valid": r.valid,
                "completed_qps": r.qps, "latency_ms_p50": r.latency_ms["p50"], "latency_ms_p90": r.latency_ms["p90"],
                "latency_ms_p99": r.latency_ms["p99"], "overlatency_queries": r.overlatency_queries,
                "query_count": r.query_count, "reasons": "; ".join(r.reasons), "log_dir": self.outcome.log_dir.name}


def peak_search(run_at: Callable[[float, str], Outcome], start_qps: float, tolerance: float = 0.1,
                max_steps: int = 8) -> tuple[Step | None, list[Step]]:
    """The largest target QPS LoadGen calls VALID: bracket (double while VALID, halve while
    INVALID), then bisect geometrically until the bracket is within ``1 + tolerance`` or the
    steps run out. Returns the VALID step with the largest QPS (None if none) and every step."""
    if not start_qps > 0 or not tolerance > 0 or max_steps < 1:
        raise ValueError("peak search needs start_qps > 0, tolerance > 0 and max_steps >= 1")
    steps: list[Step] = []

    def attempt(qps: float, phase: str) -> bool:
        outcome = run_at(qps, f"step-{len(steps) + 1:02d}-{qps:.4g}qps")
        steps.append(Step(len(steps) + 1, phase, qps, outcome))
        return outcome.result.valid

    low = high = None
    qps = start_qps
    if attempt(qps, "bracket"):
        low = qps
    else:
        high = qps
    while (low is None or high is None) and len(steps) < max_steps:
        qps = qps * 2 if high is None else qps / 2
        if attempt(qps, "bracket"):
            low = qps
        else:
            high = qps
    while low is not None and high is not None and high / low > 1 + tolerance and len(steps) < max_steps:
        qps = math.sqrt(low * high)
        if attempt(qps, "bisect"):
            low = qps
        else:
            high = qps
    valid = [step for step in steps if step.outcome.result.valid]
    return (max(valid, key=lambda s: s.target_qps) if valid else None), steps


class ServiceTimeBackend(Backend):
    """A backend that does no inference: each request sleeps a known time (a real sleep, which
    releases the GIL) and returns the first ``classes`` values of each input image as its
    'logits'. With ``service_s=0`` it returns at once: what LoadGen then measures is its own
    per-query overhead and our SUT's. ``serial=True`` lets one request run at a time however
    many lanes there are (one compute unit: capacity 1 / service_s). ``first_call_s`` is added
    to the first call in each thread (as PyTorch's per-thread cuDNN autotuning costs on a GPU)."""

    name: ClassVar[str] = "service-time"
    target: ClassVar[str | None] = None
    precisions: ClassVar[dict[str, tuple[str, ...]]] = {"cpu": ("fp32",)}

    def __init__(self, service_s: float = 0.0, in_flight: int = 1, serial: bool = False, classes: int = 4,
                 first_call_s: float = 0.0) -> None:
        super().__init__(BackendOptions("cpu", mode="throughput" if in_flight > 1 else "latency"))
        self.service_s, self.requests, self.classes = service_s, in_flight, classes
        self.lock = threading.Lock() if serial else None
        self.first_call_s, self.warm = first_call_s, threading.local()

    def load(self, source: object) -> None:
        pass

    def run(self, prepared: np.ndarray) -> np.ndarray:
        if self.first_call_s > 0 and not getattr(self.warm, "done", False):  # thread ids are reused
            self.warm.done = True
            time.sleep(self.first_call_s)
        if self.service_s > 0:
            if self.lock is not None:
                with self.lock:
                    time.sleep(self.service_s)
            else:
                time.sleep(self.service_s)
        return prepared.reshape(len(prepared), -1)[:, :self.classes].copy()

    def in_flight(self) -> int:
        return self.requests

    def describe(self) -> dict:
        return {"provider": f"sleep {self.service_s * 1e3:g} ms", "threads": 1, "in_flight": self.requests,
                "threads_per_request": 1, "streams": self.requests, "compute_precision": "fp32"}


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
