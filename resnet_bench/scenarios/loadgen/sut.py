"""LoadGen's system under test (SUT) over one loaded backend, and one LoadGen run.

* SingleStream / MultiStream: the next query waits for the last (LoadGen's rule), so the SUT
  answers inline, on LoadGen's thread, through the backend's own ``prepare`` / ``run``: a
  MultiStream query of 8 samples is one batch of 8.
* Server (Poisson arrivals at a target QPS) and Offline (every sample in one query): queries
  go into a queue that ``lanes`` worker threads drain. A lane is one request stream of the
  backend (``backends.request_streams``) with an input buffer bound once; each query is copied
  into it in place, so lanes never share a runtime handle (a TensorRT context, an OpenVINO
  request). Offline cuts its query into batches of ``batch`` (the last one padded).

LoadGen writes its logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt``,
``mlperf_log_accuracy.json``) into the folder given; ``log.parse`` reads the result back from
them. Its output never goes to our stdout.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_bench.backends.base import Backend, request_streams
from resnet_bench.scenarios.loadgen.log import LoadgenResult, parse
from resnet_bench.scenarios.loadgen.settings import Duration, Load, build_settings, loadgen_module


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
    works = request_streams(backend, buffers)

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
        lg = loadgen_module()
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
    lg = loadgen_module()
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
