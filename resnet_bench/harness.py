"""The benchmark sweep: depth x backend x precision x mode x batch on one device.

Per (depth, backend, precision): parity against PyTorch fp32 first, then every mode and
batch size timed by the scenario layer (``resnet_bench.scenarios``: latency or throughput).
Each cell becomes one row, written as soon as it finishes; failures are rows. The full
profile then runs LoadGen's Offline and Server (``scenarios.loadgen_run``) for the backend x
precision of the most throughput-mode images/s per depth, into the same run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench import fingerprint as fp
from resnet_bench import precision as precision_table
from resnet_bench import scenarios
from resnet_bench.architecture import DEPTHS, PAPER_GMACS, check_depth, count_macs
from resnet_bench.backends import BackendOptions, BackendUnavailable, backend_class
from resnet_bench.limits import is_out_of_memory
from resnet_bench.model import synthetic_images
from resnet_bench.parity import check_runner, parity_images, reference_logits
from resnet_bench.peak import peaks
from resnet_bench.precision import check_precision
from resnet_bench.results import RunWriter, cell_id, write_atomic
from resnet_bench.runner import Opened, open_backend
from resnet_bench.spec import ModelSpec
from resnet_bench.telemetry import CellTelemetry
from resnet_bench.timing import SWEEP_RULE, StopRule

MODES = ("latency", "throughput")
DEFAULT_BACKENDS = {"cpu": ("torch", "onnxruntime", "openvino"),
                    "cuda": ("torch", "onnxruntime", "tensorrt", "torch-compile")}
# The quick profile asks for the median within ±2% and gives a cell up to 30 s: on a shared 2-core
# machine ±1% takes ResNet-50 batch 8 (~0.5 s a call) well past that (measured: ±2.3-4.1% after
# 20 s, 6 of 24 cells short of ±1%); the full profile asks for ±1%.
PROFILES = {
    "quick": dict(depths=(18, 50), batches=(1, 8), rule=replace(SWEEP_RULE, target_precision=0.02, max_s=30.0)),
    "full": dict(depths=DEPTHS, batches=(1, 8, 32), rule=SWEEP_RULE, precisions=("fp32", "bf16", "int8")),
}
FULL_CUDA_BATCHES = (1, 8, 32, 128)
LOADGEN_SCENARIOS = ("singlestream", "multistream", "offline", "server")
# What the backend reports it ran with (describe()), copied into the row as is.
RUNTIME_REPORTED = ("executed_precision", "threads", "in_flight", "threads_per_request", "streams",
                    "compile_graphs", "graph_breaks", "recompiles")


@dataclass(frozen=True)
class SweepConfig:
    device: str = "cpu"
    depths: tuple[int, ...] = (18, 50)
    batches: tuple[int, ...] = (1, 8)
    backends: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
    precisions: tuple[str, ...] = ("fp32",)
    modes: tuple[str, ...] = MODES
    variant: str = "v1.5"
    weights: str | None = None
    input_size: int = 224
    threads: int | None = None
    parity_images: int = 32
    artifacts: str = "artifacts"
    rule: StopRule = SWEEP_RULE  # ±1% median precision; StopRule is frozen, so one shared default
    cuda_graphs: bool = False  # torch on CUDA: time CUDA graph replays (latency mode)
    images: str | None = None  # parity on these real images (resize, centre-crop) instead of seeded ones
    loadgen: tuple[str, ...] = ()  # LoadGen scenarios for the best backend per depth (full profile: Offline, Server)

    def __post_init__(self) -> None:
        BackendOptions(self.device, threads=self.threads, cuda_graphs=self.cuda_graphs)  # validates them
        for name in ("depths", "backends", "precisions", "modes"):
            if not getattr(self, name):
                raise ValueError(f"{name}: give at least one")
        for depth in self.depths:
            check_depth(depth)
        for name in self.backends:
            backend_class(name)
        for precision in self.precisions:  # the one table of precisions (precision.py)
            check_precision(precision)
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for scenario in self.loadgen:
            if scenario not in LOADGEN_SCENARIOS:
                raise ValueError(f"LoadGen scenario must be one of {', '.join(LOADGEN_SCENARIOS)}, got {scenario!r}")
        if not self.batches or min(self.batches) < 1:
            raise ValueError(f"batch sizes must be at least 1, got {list(self.batches)}")
        ModelSpec(self.depths[0], self.variant, self.weights, input_size=self.input_size)
        if self.images is not None:
            from resnet_bench.parity import image_files

            image_files(self.images)  # a missing folder, or one without images, is bad input now

    @classmethod
    def from_profile(cls, profile: str, device: str, rule_overrides: dict | None = None, **overrides) -> SweepConfig:
        """The profile's cells and stop rule; ``overrides`` (None: keep) replace fields,
        ``rule_overrides`` fields of the profile's rule."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        base = dict(PROFILES[profile], device=device, backends=DEFAULT_BACKENDS.get(device, ()))
        base["rule"] = replace(base["rule"], **(rule_overrides or {}))
        if profile == "full" and device == "cuda":
            base["batches"] = FULL_CUDA_BATCHES
            base["precisions"] = ("fp32", "tf32", "fp16", "bf16")
        if profile == "full" and device == "cpu":
            base["backends"] = (*DEFAULT_BACKENDS["cpu"], "torch-compile")
        if profile == "full":
            base["loadgen"] = ("offline", "server")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SweepConfig:
        data = dict(data, rule=StopRule(**data["rule"]))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def cells(self) -> list[dict]:
        return [dict(depth=d, variant=self.variant, backend=b, precision=p, device=self.device,
                     mode=m, batch_size=n, input_size=self.input_size)
                for d in self.depths for b in self.backends for p in self.precisions
                for m in self.modes for n in sorted(self.batches)]


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]


class Sweep:
    def __init__(self, config: SweepConfig, run_dir: Path, on_cell: Callable[[dict], None] | None = None):
        self.config, self.writer = config, RunWriter(run_dir)
        self.on_cell = on_cell or (lambda row: None)
        self.fingerprint = fp.collect()
        self.run_id = Path(run_dir).name
        self.peaks: dict[str, float] = {}

    def todo(self) -> list[dict]:
        done = self.writer.done()
        return [c for c in self.config.cells() if cell_id(c) not in done]

    def run(self) -> RunWriter:
        todo = self.todo()
        if not todo:
            if self.config.loadgen:  # a resumed full run: its LoadGen rows may be missing
                self._loadgen()
                self.writer.finish()
            return self.writer
        cfg = self.config
        threads = cfg.threads or self.fingerprint["cpus_available"]
        roof_keys = tuple({precision_table.roof_key(c["backend"], c["device"], c["precision"]) for c in todo})
        for depth in cfg.depths:
            groups = {(c["backend"], c["precision"]) for c in todo if c["depth"] == depth}
            if not groups:
                continue
            # The roof again before each depth, the best so far kept: on a shared machine the same
            # GEMM moved 108-198 GFLOP/s between minutes, and a roof caught in a slow minute put
            # cells at 1.08 of "peak".
            found = peaks(cfg.device, threads, roof_keys)
            self.peaks = {key: max(value, self.peaks.get(key, 0.0)) for key, value in found.items()}
            spec = ModelSpec(depth, cfg.variant, cfg.weights, input_size=cfg.input_size)
            exporter = Exporter(spec, ExportOptions(batches=cfg.batches, out=Path(cfg.artifacts)))
            images = parity_images(cfg.input_size, cfg.parity_images, folder=cfg.images)
            reference = reference_logits(exporter, images)
            bench_images = synthetic_images(max(cfg.batches), cfg.input_size, seed=5).numpy()
            for backend in cfg.backends:
                for precision in cfg.precisions:
                    if (backend, precision) in groups:
                        cells = [c for c in todo if c["depth"] == depth and c["backend"] == backend
                                 and c["precision"] == precision]
                        self._group(exporter, cells, images, reference, bench_images)
        self._loadgen()
        self._final_roof()
        self.writer.finish()
        return self.writer

    def _loadgen(self) -> None:
        """Per depth, the backend x precision of the most throughput-mode images/s (ran, parity
        passed) runs the config's LoadGen scenarios at the quick setting; depths that have LoadGen
        rows already (a resumed run) are skipped."""
        from resnet_bench.scenarios.loadgen_run import LoadgenConfig, run_cell

        cfg = self.config
        rows = self.writer.rows
        for depth in cfg.depths if cfg.loadgen else ():
            if any(r["depth"] == depth and r.get("scenario") in cfg.loadgen for r in rows):
                continue
            best = [r for r in rows if r["depth"] == depth and r["mode"] == "throughput" and r["status"] == "ok"
                    and r["parity_status"] == "pass"]
            if not best:
                continue
            best = max(best, key=lambda r: r["images_per_s"])
            config = LoadgenConfig(depth=depth, backend=best["backend"], precision=best["precision"],
                                   device=cfg.device, scenarios=cfg.loadgen, variant=cfg.variant, weights=cfg.weights,
                                   input_size=cfg.input_size, threads=cfg.threads, artifacts=cfg.artifacts)
            run_cell(config, self.writer.dir, self.writer, self.fingerprint["fingerprint_id"], on_row=self.on_cell)

    def _row(self, cell: dict, **values) -> dict:
        macs = count_macs(cell["depth"], cell["variant"], cell["input_size"])
        row = {**cell, "run_id": self.run_id, "cell_id": cell_id(cell), "gmacs": macs / 1e9,
               "paper_gmacs": PAPER_GMACS[cell["depth"]],
               "fingerprint_id": self.fingerprint["fingerprint_id"],
               "peak_gflops": self._peak(cell), "cuda_graphs": self.config.cuda_graphs, **values}
        return row

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

    def _group(self, exporter: Exporter, cells: list[dict], images: np.ndarray, reference: np.ndarray,
               bench_images: np.ndarray) -> None:
        """Parity on the latency-mode backend, then the same instance times the latency cells;
        throughput cells need a backend loaded for several requests in flight."""
        cfg, first = self.config, cells[0]
        options = BackendOptions(cfg.device, first["precision"], cfg.threads, cuda_graphs=cfg.cuda_graphs)
        try:
            opened = open_backend(first["backend"], options, exporter)
        except Exception as exc:  # unavailable, or failed to load: every cell says so
            status = "unavailable" if isinstance(exc, BackendUnavailable) else "error"
            reason = str(exc) if status == "unavailable" else _first_line(exc)
            for cell in cells:
                self._emit(self._row(cell, status=status, error=reason, valid=False, parity_status=status))
            return
        with opened.backend as runner:
            verdict = check_runner(runner, first["backend"], images, reference)
            if verdict.status == "error":
                for cell in cells:
                    self._emit(self._row(cell, status="error", error=verdict.reason, valid=False,
                                         parity_status="error"))
                return
            parity = dict(parity_status=verdict.status, rel_l2_err=verdict.rel_l2_err,
                          top1_agreement=verdict.top1_agreement)
            for mode in cfg.modes:
                mode_cells = [c for c in cells if c["mode"] == mode]
                if mode_cells and mode == "latency":
                    self._cells(opened, mode_cells, parity, bench_images)
                elif mode_cells:
                    self._mode(exporter, mode_cells, replace(options, mode=mode), parity, bench_images,
                               (images, reference))

    def _mode(self, exporter: Exporter, cells: list[dict], options: BackendOptions, parity: dict,
              bench_images: np.ndarray, check: tuple[np.ndarray, np.ndarray]) -> None:
        try:
            opened = open_backend(cells[0]["backend"], options, exporter)
        except BackendUnavailable as exc:
            for cell in cells:
                self._emit(self._row(cell, status="unavailable", error=str(exc), valid=False, **parity))
            return
        except Exception as exc:
            for cell in cells:
                self._emit(self._row(cell, status="oom" if is_out_of_memory(exc) else "error", error=_first_line(exc),
                                     valid=False, **parity))
            return
        with opened.backend as runner:
            # Its own parity check: the instance timed here (every request stream of it) is not
            # the latency one checked before.
            verdict = check_runner(runner, cells[0]["backend"], *check)
            parity = dict(parity_status=verdict.status, rel_l2_err=verdict.rel_l2_err,
                          top1_agreement=verdict.top1_agreement)
            if verdict.status == "error":
                for cell in cells:
                    self._emit(self._row(cell, status="error", error=verdict.reason, valid=False, **parity))
                return
            self._cells(opened, cells, parity, bench_images)

    def _cells(self, opened: Opened, cells: list[dict], parity: dict, bench_images: np.ndarray) -> None:
        """Time each batch size, smallest first; out of memory skips the larger ones."""
        oom_at = None
        for cell in cells:
            batch = cell["batch_size"]
            if oom_at is not None:
                self._emit(self._row(cell, status="oom", valid=False, **parity,
                                     error=f"not run: out of memory at batch {oom_at}"))
                continue
            try:
                row, samples = self._measure(opened.backend, cell, bench_images[:batch], parity)
            except Exception as exc:
                if is_out_of_memory(exc):
                    oom_at = batch
                self._emit(self._row(cell, status="oom" if is_out_of_memory(exc) else "error",
                                     error=_first_line(exc), valid=False, **parity))
                continue
            row.update(export_s=opened.export_s, export_cached=opened.export_cached, load_s=opened.load_s)
            self._emit(row, samples)

    def _measure(self, backend, cell: dict, images: np.ndarray, parity: dict) -> tuple[dict, list[float]]:
        prepared = backend.prepare(images)  # compiles, captures or autotunes: outside the telemetry window
        with CellTelemetry(cell["device"]) as telemetry:  # warm-up and the timed window
            measured = scenarios.run(cell["mode"], backend, prepared, cell["batch_size"], self.config.rule)
        info = backend.describe()
        reasons = measured.reasons + telemetry.invalid_reasons()
        if parity["parity_status"] != "pass":
            reasons.append("parity failed")
        gflops = 2 * count_macs(cell["depth"], cell["variant"], cell["input_size"]) / 1e9 * measured.images_per_s
        peak = self._peak(cell)
        row = self._row(cell, **measured.stats, **parity, **telemetry.columns(measured.images_per_s),
                        images_per_s=measured.images_per_s,
                        achieved_gflops=gflops, roofline_fraction=gflops / peak if peak else None,
                        **{key: info.get(key) for key in RUNTIME_REPORTED},
                        compute_precision=info.get("compute_precision"), provider=info.get("provider"),
                        valid=not reasons, invalid_reasons="; ".join(reasons),
                        status="ok" if parity["parity_status"] == "pass" else "parity_failed", error="")
        return row, measured.samples_ms


def new_run_dir(root: Path, device: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{device}-{fp.collect()['fingerprint_id'][:6]}"


def start(config: SweepConfig, run_dir: Path) -> None:
    """Create the run directory with its config and fingerprint."""
    run_dir.mkdir(parents=True, exist_ok=False)
    write_atomic(run_dir / "config.json", json.dumps(config.to_json(), indent=2))
    write_atomic(run_dir / "fingerprint.json", json.dumps(fp.collect(), indent=2))


def resume(run_dir: Path) -> SweepConfig:
    """The config of an earlier run, refused if this machine's hard fingerprint differs."""
    run_dir = Path(run_dir)
    try:
        config = SweepConfig.from_json(json.loads((run_dir / "config.json").read_text()))
        recorded = json.loads((run_dir / "fingerprint.json").read_text())["fingerprint_id"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot resume {run_dir}: not a run directory ({_first_line(exc)})") from exc
    here = fp.collect()["fingerprint_id"]
    if recorded != here:
        raise ValueError(f"cannot resume {run_dir}: it was measured with fingerprint {recorded}, "
                         f"this machine is {here}")
    return config


__all__ = ["PROFILES", "Sweep", "SweepConfig", "new_run_dir", "resume", "start"]
