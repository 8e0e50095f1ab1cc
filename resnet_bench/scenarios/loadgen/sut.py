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
        if hasattr(images, "__dlpack__"):  # staged on the device (a torch tensor): copied device to device
            images = images.contiguous()
            if getattr(images, "is_cuda", False):
                import torch

                torch.cuda.current_stream(images.device).synchronize()  # the gather (and the copy) landed
            if hasattr(type(target), "from_dlpack"):  # onnxruntime >= 1.31
                target.update_inplace(type(target).from_dlpack(images))
            else:  # older builds: through the host (the row's runtime says which onnxruntime ran)
                target.update_inplace(np.ascontiguousarray(images.float().cpu().numpy()))
        else:
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


def _bucket(sizes: tuple[int, ...], real: int) -> int:
    """The smallest of the sorted ``sizes`` that holds a batch of ``real``."""
    bucket = next((b for b in sizes if b >= real), None)
    if bucket is None:
        raise ValueError(f"a batch of {real} is larger than the largest bucket ({sizes[-1]})")
    return bucket


def direct_runner(backend: Backend, batch: int | None = None, buckets: tuple[int, ...] = ()) -> Runner:
    """The backend's own lifecycle, one request at a time (a latency-mode instance). With
    ``batch``, a shorter request is padded to it; with ``buckets`` (the dynamic batcher's sizes),
    to the smallest that holds it: only shapes warmed up before the run are timed (a CUDA graph
    or an autotuned plan per shape is never made inside a timed query)."""
    sizes = tuple(sorted(set(buckets)))

    def run(images: np.ndarray) -> np.ndarray:
        real = len(images)
        size = batch or (_bucket(sizes, real) if sizes else None)
        output = backend.run(backend.prepare(pad(images, size) if size else images))
        backend.sync()
        return np.asarray(backend.fetch(output))[:real]
    if sizes:
        run.warm_sizes = sizes
    return run


def staged_runner(backend: Backend, batch: int, shape: tuple[int, ...]) -> Runner:
    """One request stream on the backend's own ``run`` (a latency-mode instance: CUDA graphs replay
    on its one stream), its input of ``batch`` images prepared once and refilled in place from
    the staged samples: like the lanes, no query pays a host-to-device copy."""
    buffer = backend.prepare(np.zeros((batch, *shape), np.float32))

    def run(images: Any) -> np.ndarray:
        real = len(images)
        refill(buffer, pad(images, batch))
        output = backend.run(buffer)
        backend.sync()
        return np.asarray(backend.fetch(output))[:real]
    run.reads_staged = True
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


def bucket_lanes(backend: Backend, count: int, buckets: tuple[int, ...], shape: tuple[int, ...]) -> list[Runner]:
    """``count`` request streams for the dynamic batcher, each with an input buffer per batch size
    in ``buckets``: a batch runs on the smallest bucket that holds it, padded. Buffers are made
    bucket by bucket, lanes inside (so stream i of every bucket is the backend's lane i)."""
    buckets = tuple(sorted(set(buckets)))
    buffers = [backend.prepare(np.zeros((b, *shape), np.float32)) for b in buckets for _ in range(count)]
    works = request_streams(backend, buffers)

    def runner(lane: int) -> Runner:
        own = {b: (buffers[j * count + lane], works[j * count + lane]) for j, b in enumerate(buckets)}

        def run(images: np.ndarray) -> np.ndarray:
            real = len(images)
            bucket = _bucket(buckets, real)
            buffer, work = own[bucket]
            refill(buffer, pad(images, bucket))
            return np.asarray(backend.fetch(work()))[:real]
        run.reads_staged = True
        run.warm_sizes = buckets  # the SUT warms each, in the lane's thread
        return run

    return [runner(lane) for lane in range(count)]


@dataclass(frozen=True)
class Batching:
    """Server queries grouped into batches (a dynamic batcher, as MLPerf's GPU servers run): a
    free lane takes the oldest waiting query, then every query that arrives until it holds
    ``max_batch`` or ``timeout_s`` has passed since that first query arrived, and runs them as one
    batch. ``buckets``: the batch sizes a lane is prepared for (a batch is padded to the next)."""

    max_batch: int = 1
    timeout_s: float = 0.0
    buckets: tuple[int, ...] = (1,)
    streams: int = 1  # lanes (request streams) forming batches from the one queue

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.timeout_s < 0 or max(self.buckets) < self.max_batch or self.streams < 1:
            raise ValueError("batching needs max_batch >= 1, timeout_s >= 0, a bucket holding max_batch and a lane")

    @classmethod
    def for_bound(cls, bound_ms: float, service_ms: dict[int, float], streams: int = 1) -> Batching:
        """From the latency bound and the service time of each candidate batch size (measured
        with ``streams`` lanes busy at once: lanes sharing one device slow each other): the largest
        batch whose service fits half the bound, and a timeout that keeps a query's wait for its
        batch plus the batch's service within that half (the other half is left for waiting for a
        free lane under Poisson arrivals). No candidate fits: no batching (batch 1, no wait)."""
        half = bound_ms / 2
        fits = sorted(b for b, ms in service_ms.items() if ms <= half)
        if not fits:
            return cls(1, 0.0, (1,), streams)
        largest = fits[-1]
        return cls(largest, max(0.0, half - service_ms[largest]) / 1e3, tuple(fits), streams)

    @staticmethod
    def capacity(batching: Batching, service_ms: dict[int, float]) -> float:
        """Queries per second its lanes serve at full batches, from the service times it was chosen
        on (0 when none was measured at its batch: nothing fitted and batch 1 was no candidate)."""
        ms = service_ms.get(batching.max_batch)
        return batching.streams * batching.max_batch / (ms / 1e3) if ms else 0.0

    def describe(self) -> str:
        lanes = f" on {self.streams} request streams" if self.streams > 1 else " on 1 request stream"
        return (f"dynamic batching up to {self.max_batch}, {self.timeout_s * 1e3:.3g} ms timeout, buckets "
                f"{','.join(map(str, self.buckets))}{lanes}" if self.max_batch > 1 else "no batching (batch 1)")


class SystemUnderTest:
    """LoadGen's SUT and QSL over one backend. Samples are images already in memory (``images``,
    indexed by LoadGen's sample index); in accuracy runs every answer is kept by index."""

    def __init__(self, images: np.ndarray, inline: Runner | None = None, lanes: list[Runner] | None = None,
                 batch: int = 1, keep_outputs: bool = False, batching: Batching | None = None) -> None:
        if (inline is None) == (lanes is None):
            raise ValueError("a SUT answers inline or through lanes, not both")
        if batching is not None and lanes is None:
            raise ValueError("the dynamic batcher runs on lanes")
        self.images, self.inline, self.lanes, self.batch = images, inline, lanes or [], batch
        self.batching = batching
        self.batch_sizes: list[int] = []  # every batch the batcher formed
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
        if self.batching is not None:  # one entry per sample, with its arrival time
            now = time.perf_counter()
            for sample in samples:
                self.queue.put((now, sample))
            return
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
            for size in getattr(run, "warm_sizes", (1,)):
                for _ in range(WARMUP_CALLS):
                    run(self.images[:size])  # a lane pads it to its own batch
        except BaseException as exc:  # __enter__ raises it: no run on a broken lane
            self.errors.append(exc)
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        if self.batching is not None:
            self._batch(run)
            return
        while (samples := self.queue.get()) is not None:
            self._serve(samples, run)

    def _batch(self, run: Runner) -> None:
        """The dynamic batcher's loop in one lane (see ``Batching``)."""
        limit, timeout = self.batching.max_batch, self.batching.timeout_s
        while (first := self.queue.get()) is not None:
            arrived, sample = first
            samples, stop = [sample], False
            while len(samples) < limit:
                left = arrived + timeout - time.perf_counter()
                try:
                    item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # the run is over: serve what is held, then stop
                    stop = True
                    break
                samples.append(item[1])
            self.batch_sizes.append(len(samples))
            self._serve(samples, run)
            if stop:
                return

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
    batches: tuple[int, ...] = ()  # the dynamic batcher's batch sizes, in order (empty: no batcher)


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
    return Outcome(parse(log_dir), dict(sut.outputs), wall, log_dir, tuple(sut.batch_sizes))
