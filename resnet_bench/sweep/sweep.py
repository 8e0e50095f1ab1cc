"""The benchmark sweep: depth x backend x precision x mode x batch on one device.

Per (depth, backend, precision): parity against PyTorch fp32 first, then every mode and
batch size timed by the closed-loop scenarios (``resnet_bench.scenarios``: latency or
throughput). Each cell becomes one row (``results.rows``), written as soon as it finishes;
failures are rows. The full profile then runs LoadGen's Offline and Server
(``scenarios.loadgen.cell``) for every finalist (backend x precision) of each depth, into the
same run, so that a pick under a latency budget compares Server peaks with Server peaks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions
from resnet_bench.backends.open import Opened, open_backend
from resnet_bench.machine import fingerprint as fp
from resnet_bench.measure.roofs import peaks
from resnet_bench.measure.telemetry import CellTelemetry
from resnet_bench.measure.validity import PARITY_FAILED
from resnet_bench.model.images import EvaluationSet, evaluation_set, images_sha256, synthetic_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.numerics import precision as precision_table
from resnet_bench.parity.accuracy import is_finalist
from resnet_bench.parity.check import check
from resnet_bench.parity.verdict import reference_logits
from resnet_bench.results.rows import Run, cell_id, failure_row, measured_row
from resnet_bench.results.runs import RunWriter
from resnet_bench.scenarios import closed_loop
from resnet_bench.scenarios.loadgen.cell import LoadgenConfig, run_cell
from resnet_bench.sweep.config import SweepConfig
from resnet_bench.util.files import write_atomic


class Sweep:
    def __init__(self, config: SweepConfig, run_dir: Path, on_cell: Callable[[dict], None] | None = None,
                 only: set[str] | None = None):
        """``only``: run just these cell ids of the config (the fleet's retries and resumes)."""
        self.config, self.writer, self.only = config, RunWriter(run_dir), only
        self.on_cell = on_cell or (lambda row: None)
        self.fingerprint = fp.collect()
        self.context = Run.of(Path(run_dir).name, self.fingerprint)
        self.peaks: dict[str, float] = {}
        self.phases: dict[str, float] = {}  # where the wall time went, seconds by phase (phases.json)

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    def todo(self) -> list[dict]:
        done = self.writer.done()
        return [c for c in self.config.cells() if cell_id(c) not in done and (self.only is None or cell_id(c) in
                                                                             self.only)]

    def run(self) -> RunWriter:
        todo = self.todo()
        if not todo:
            if self.config.loadgen:  # a resumed full run: its LoadGen rows may be missing
                self._loadgen()
                self.writer.finish()
            return self.writer
        cfg, begin = self.config, time.perf_counter()
        threads = cfg.threads or self.fingerprint["cpus_available"]
        roof_keys = tuple({precision_table.roof_key(c["backend"], c["device"], c["precision"]) for c in todo})
        for depth in cfg.depths:
            groups = {(c["backend"], c["precision"]) for c in todo if c["depth"] == depth}
            if not groups:
                continue
            # The roof again before each depth, the best so far kept: on a shared machine the same
            # GEMM moved 108-198 GFLOP/s between minutes, and a roof caught in a slow minute put
            # cells at 1.08 of "peak".
            with self._phase("roofs"):
                found = peaks(cfg.device, threads, roof_keys) if cfg.roofs else {}
            self.peaks = {key: max(value, self.peaks.get(key, 0.0)) for key, value in found.items()}
            with self._phase("model and reference"):
                spec = ModelSpec(depth, cfg.variant, cfg.weights, input_size=cfg.input_size)
                exporter = Exporter(spec, self.export_options())
                evaluation = evaluation_set(cfg.input_size, cfg.parity_images, cfg.images, cfg.labels)
                reference = reference_logits(exporter, evaluation.images)
            bench_images = synthetic_images(max(cfg.batches), cfg.input_size, seed=5).numpy()
            for backend in cfg.backends:
                for precision in cfg.precisions:
                    if (backend, precision) in groups:
                        cells = [c for c in todo if c["depth"] == depth and c["backend"] == backend
                                 and c["precision"] == precision]
                        self._group(exporter, cells, evaluation, reference, bench_images)
        with self._phase("loadgen"):
            self._loadgen()
        self._final_roof()
        self.writer.finish()
        self.phases["total"] = time.perf_counter() - begin
        write_atomic(self.writer.dir / "phases.json", json.dumps({k: round(v, 2) for k, v in self.phases.items()},
                                                                 indent=2))
        return self.writer

    def export_options(self) -> ExportOptions:
        cfg = self.config
        calibration = Path(cfg.calibration_images) if cfg.calibration_images else None
        return ExportOptions(batches=cfg.batches, out=Path(cfg.artifacts), calibration_images=calibration)

    def finalists(self, depth: int) -> list[tuple[str, str]]:
        """(backend, precision) of every configuration of a depth that may be picked, by the rule
        the selection compares Server peaks under (``parity.accuracy.is_finalist``)."""
        found = {(r["backend"], r["precision"]) for r in self.writer.rows
                 if r["depth"] == depth and is_finalist(r)}
        return sorted(found)

    def _loadgen(self) -> None:
        """Per depth, every finalist runs the config's LoadGen scenarios at the quick setting, so
        a pick under a latency budget compares Server peaks with Server peaks; finalists that have
        LoadGen rows already (a resumed run) are skipped."""
        cfg = self.config
        for depth in cfg.depths if cfg.loadgen else ():
            for backend, precision in self.finalists(depth):
                if any(r["depth"] == depth and r["backend"] == backend and r["precision"] == precision
                       and r.get("scenario") in cfg.loadgen for r in self.writer.rows):
                    continue
                config = LoadgenConfig(depth=depth, backend=backend, precision=precision, device=cfg.device,
                                       scenarios=cfg.loadgen, variant=cfg.variant, weights=cfg.weights,
                                       input_size=cfg.input_size, threads=cfg.threads, artifacts=cfg.artifacts,
                                       images=cfg.images, labels=cfg.labels,
                                       calibration_images=cfg.calibration_images,
                                       max_accuracy_drop=cfg.max_accuracy_drop,
                                       min_top1_agreement=cfg.min_top1_agreement)
                run_cell(config, self.writer.dir, self.writer, self.fingerprint, on_row=self.on_cell)

    def _failed(self, cell: dict, exc: BaseException | None = None, **values) -> dict:
        """A cell that did not run, with the sweep's context (its roof, CUDA graphs or not)."""
        return failure_row(cell, self.context, exc, peak_gflops=self._peak(cell), cuda_graphs=self.config.cuda_graphs,
                           **values)

    def _final_roof(self) -> None:
        """Every row against the best roof of the whole run: the roof is measured before each
        depth, and one caught in a slow minute (185 against 227 GFLOP/s later in the same run) put
        earlier cells at 1.15 of "peak". Rows are rewritten once, atomically, at the end."""
        changed = False
        for row in self.writer.rows:
            best = self.peaks.get(precision_table.roof_key(row["backend"], row["device"], row["precision"]))
            peak, achieved = row.get("peak_gflops"), row.get("achieved_gflops")
            if best and peak == peak and achieved == achieved and peak is not None and achieved is not None \
                    and best > peak:  # (NaN != NaN: failed cells have neither)
                row.update(peak_gflops=best, roofline_fraction=achieved / best)
                changed = True
        if changed:
            self.writer.rewrite()

    def _peak(self, cell: dict) -> float | None:
        return self.peaks.get(precision_table.roof_key(cell["backend"], cell["device"], cell["precision"]))

    def _emit(self, row: dict, samples: list[float] | None = None) -> None:
        self.writer.add(row, samples)
        self.on_cell(row)

    def _parity(self, runner, backend: str, evaluation: EvaluationSet, reference: np.ndarray) -> tuple:
        """The verdict on this instance, and the row's parity and accuracy columns."""
        cfg = self.config
        return check(runner, backend, evaluation, reference, cfg.budget(), cfg.weights is not None,
                     self.calibration_sha256)

    @property
    def calibration_sha256(self) -> str | None:
        folder = self.config.calibration_images
        return images_sha256(folder) if folder else None

    def _group(self, exporter: Exporter, cells: list[dict], evaluation: EvaluationSet, reference: np.ndarray,
               bench_images: np.ndarray) -> None:
        """Parity on the latency-mode backend, then the same instance times the latency cells;
        throughput cells need a backend loaded for several requests in flight."""
        cfg, first = self.config, cells[0]
        options = BackendOptions(cfg.device, first["precision"], cfg.threads, cuda_graphs=cfg.cuda_graphs)
        try:
            with self._phase("export and load"):
                opened = open_backend(first["backend"], options, exporter)
        except Exception as exc:  # unavailable, or failed to load: every cell says so
            for cell in cells:
                row = self._failed(cell, exc)
                self._emit({**row, "parity_status": row["status"]})
            return
        with opened.backend as runner:
            with self._phase("parity and accuracy"):
                verdict, parity = self._parity(runner, first["backend"], evaluation, reference)
            if verdict.status == "error":
                for cell in cells:
                    self._emit(self._failed(cell, status="error", error=verdict.reason, parity_status="error"))
                return
            for mode in cfg.modes:
                mode_cells = [c for c in cells if c["mode"] == mode]
                if mode_cells and mode == "latency":
                    self._cells(opened, mode_cells, parity, bench_images)
                elif mode_cells:
                    self._mode(exporter, mode_cells, replace(options, mode=mode), parity, bench_images,
                               (evaluation, reference))

    def _mode(self, exporter: Exporter, cells: list[dict], options: BackendOptions, parity: dict,
              bench_images: np.ndarray, check: tuple[EvaluationSet, np.ndarray]) -> None:
        try:
            with self._phase("export and load"):
                opened = open_backend(cells[0]["backend"], options, exporter)
        except Exception as exc:
            for cell in cells:
                self._emit(self._failed(cell, exc, **parity))
            return
        with opened.backend as runner:
            # Its own parity check: the instance timed here (every request stream of it) is not
            # the latency one checked before.
            with self._phase("parity and accuracy"):
                verdict, parity = self._parity(runner, cells[0]["backend"], *check)
            if verdict.status == "error":
                for cell in cells:
                    self._emit(self._failed(cell, status="error", error=verdict.reason, **parity))
                return
            self._cells(opened, cells, parity, bench_images)

    def _cells(self, opened: Opened, cells: list[dict], parity: dict, bench_images: np.ndarray) -> None:
        """Time each batch size, smallest first; out of memory skips the larger ones."""
        oom_at = None
        for cell in cells:
            batch = cell["batch_size"]
            if oom_at is not None:
                self._emit(self._failed(cell, status="oom", error=f"not run: out of memory at batch {oom_at}",
                                        **parity))
                continue
            try:
                row, samples = self._measure(opened.backend, cell, bench_images[:batch], parity)
            except Exception as exc:
                row = self._failed(cell, exc, **parity)
                if row["status"] == "oom":
                    oom_at = batch
                self._emit(row)
                continue
            row.update(export_s=opened.export_s, export_cached=opened.export_cached, load_s=opened.load_s)
            self._emit(row, samples)

    def _measure(self, backend, cell: dict, images: np.ndarray, parity: dict) -> tuple[dict, list[float]]:
        with self._phase("prepare"):
            prepared = backend.prepare(images)  # compiles, captures or autotunes: outside the telemetry window
        start = time.perf_counter()
        with CellTelemetry(cell["device"]) as telemetry:  # warm-up and the timed window
            measured = closed_loop.run(cell["mode"], backend, prepared, cell["batch_size"], self.config.rule)
        spent = time.perf_counter() - start
        timed = float(np.sum(measured.timing.samples_ms)) / 1e3 / measured.in_flight if cell["mode"] == "latency" \
            else measured.timing.span_s
        self.phases["warm-up"] = self.phases.get("warm-up", 0.0) + spent - timed
        key = "timed (cells at the time cap)" if measured.timing.iterations and any(
            r.startswith(("imprecise", "few_iterations", "drift")) for r in measured.reasons) else "timed"
        self.phases[key] = self.phases.get(key, 0.0) + timed
        reasons = measured.reasons + telemetry.invalid_reasons()
        if parity["parity_status"] != "pass":
            reasons.append(PARITY_FAILED)
        low, high = measured.images_per_s_interval
        row = measured_row(cell, self.context, stats=measured.stats, images_per_s=measured.images_per_s,
                           reasons=reasons, status="ok" if parity["parity_status"] == "pass" else "parity_failed",
                           runtime=backend.describe(), peak_gflops=self._peak(cell),
                           cuda_graphs=self.config.cuda_graphs, images_per_s_low=low, images_per_s_high=high,
                           **parity, **telemetry.columns(measured.images_per_s))
        return row, measured.samples_ms
