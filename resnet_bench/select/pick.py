"""Orchestration of a pick: after a sweep, each depth's pick confirmed against its runner-up across
fresh processes (``confirm_run``); the ``select`` command's whole flow (``select_target``): parity
and accuracy first, then the race, then rows as ``bench`` writes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_bench.select.confirm import ConfirmPlan, Finalist, cell_name, confirm
from resnet_bench.select.rules import short_label


def confirm_run(run_dir: Path, constraints, plan: ConfirmPlan, artifacts: Path, progress=lambda text: None) -> dict:
    """After a sweep: per depth, the closed-loop pick under ``constraints`` re-measured against its
    runner-up across fresh processes. Writes ``confirm.json`` beside the rows (depth -> record)
    and each finalist's process spread into its row; returns the records."""
    import json

    from resnet_bench.results.runs import RunWriter
    from resnet_bench.select.rules import select
    from resnet_bench.util.files import PACKAGE, write_atomic

    writer = RunWriter(run_dir)
    import pandas as pd

    frame = pd.DataFrame(writer.rows)
    selection = select(frame.assign(machine="this machine"), constraints)
    by_id = {row["cell_id"]: row for row in writer.rows}
    records: dict[str, dict] = {}
    for pick in selection.picks:
        runner = pick.get("runner_up")
        if pick["source"] != "closed-loop" or runner is None:
            continue
        cells = [{k: by_id[cid][k] for k in ("depth", "variant", "backend", "precision", "device", "mode",
                                              "batch_size", "input_size")} for cid in (pick["row"]["cell_id"], runner)]
        finalists = [Finalist(cid, cell, PACKAGE.parent) for cid, cell in zip((pick["row"]["cell_id"], runner), cells,
                                                                             strict=True)]
        progress(f"ResNet-{pick['depth']}: {cell_name(cells[0])} against {cell_name(cells[1])}")
        confirmation = confirm(finalists, plan, artifacts, progress)
        records[str(pick["depth"])] = confirmation.record()
        for cid in (finalists[0].label, finalists[1].label):
            for row in writer.rows:
                if row["cell_id"] == cid:
                    row.update(process_spread=confirmation.spread.get(cid), process_rounds=confirmation.rounds)
    if records:
        write_atomic(Path(run_dir) / "confirm.json", json.dumps(records, indent=2, default=str))
        writer.rewrite()
    return records


# -- resnet-bench select: parity and accuracy, then the race, then rows --------------------------------

SELECT_PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class SelectConfig:
    device: str = "cpu"
    depth: int = 50
    max_latency_ms: float | None = None
    latency_percentile: int = 90
    min_throughput: float | None = None
    max_accuracy_drop: float = 0.01
    precisions: tuple[str, ...] = ("fp32",)
    backends: tuple[str, ...] | None = None  # None: the device's default backends
    batches: tuple[int, ...] = (1, 8)
    modes: tuple[str, ...] = ("latency", "throughput")
    budget_s: float = 300.0
    input_size: int = 224
    variant: str = "v1.5"
    weights: str | None = None
    images: str | None = None
    labels: str | None = None
    calibration_images: str | None = None
    threads: int | None = None
    parity_images: int = 32
    artifacts: str = "artifacts"

    def __post_init__(self) -> None:
        from resnet_bench.sweep.config import DEFAULT_BACKENDS

        if not self.budget_s > 0:
            raise ValueError(f"--budget-s must be positive, got {self.budget_s:g}")
        if self.latency_percentile not in SELECT_PERCENTILES:
            raise ValueError(f"--latency-percentile must be one of {', '.join(map(str, SELECT_PERCENTILES))}, "
                             f"got {self.latency_percentile}")
        for name in ("max_latency_ms", "min_throughput"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value:g}")
        if self.backends is None:
            object.__setattr__(self, "backends", DEFAULT_BACKENDS.get(self.device, ()))
        self.sweep()  # the sweep's checks: depth, backends, precisions, modes, batches, the accuracy inputs

    def candidates(self) -> list[tuple[str, str]]:
        """(backend, precision) left after the filters, before anything is measured; ValueError
        naming the filter that removed the last one."""
        from resnet_bench.backends import BackendOptions, backend_class
        from resnet_bench.parity.accuracy import needs_accuracy

        real = self.weights is not None and self.images is not None
        kept = [p for p in self.precisions if real or not needs_accuracy(p)]
        if not kept:
            raise ValueError(f"no candidate left after the filters: --precisions {','.join(self.precisions)} needs "
                             "an established accuracy, and the seeded model has none (give --weights and labelled "
                             "--images, or add fp32)")
        found, why = [], []
        for backend in self.backends:
            for precision in kept:
                reason = backend_class(backend).unavailable_reason(BackendOptions(self.device, precision))
                if reason:
                    why.append(f"{backend} {precision}: {reason}")
                else:
                    found.append((backend, precision))
        if not found:
            raise ValueError(f"no candidate left after the filters: --backends {','.join(self.backends)} on "
                             f"{self.device} ({'; '.join(why)})")
        return found

    def sweep(self):
        """The same cells as a sweep (a bench over the same candidates is the comparison)."""
        from resnet_bench.sweep.config import SweepConfig

        return SweepConfig(device=self.device, depths=(self.depth,), batches=self.batches, backends=self.backends,
                           precisions=self.precisions, modes=self.modes, variant=self.variant, weights=self.weights,
                           input_size=self.input_size, threads=self.threads, parity_images=self.parity_images,
                           artifacts=self.artifacts, images=self.images, labels=self.labels,
                           calibration_images=self.calibration_images, max_accuracy_drop=self.max_accuracy_drop)

    def to_json(self) -> dict:
        from dataclasses import asdict

        return {"command": "select", **asdict(self)}


def select_target(config: SelectConfig, run_dir: Path, plan=None, progress=lambda text: None) -> dict:
    """The whole ``select``: parity and accuracy of every backend x precision (low precision on the
    seeded model is left out before anything is exported: its accuracy cannot be established), the
    race over the survivors' cells, and one row per candidate in ``run_dir`` (as ``bench`` writes,
    with the round each candidate left in and why). Returns the race's end."""
    import json

    from exporters.pipeline import Exporter
    from resnet_bench.backends import BackendOptions
    from resnet_bench.backends.open import open_backend
    from resnet_bench.machine import fingerprint as fp
    from resnet_bench.measure.timing import Timing
    from resnet_bench.model.images import evaluation_set, images_sha256
    from resnet_bench.model.spec import ModelSpec
    from resnet_bench.parity.accuracy import NOT_ESTABLISHED, needs_accuracy
    from resnet_bench.parity.check import check
    from resnet_bench.parity.verdict import reference_logits
    from resnet_bench.results.rows import Run, failure_row, measured_row
    from resnet_bench.results.runs import RunWriter
    from resnet_bench.select.race import Entry, Limits, RacePlan, race
    from resnet_bench.sweep.sweep import Sweep
    from resnet_bench.util.files import PACKAGE, write_atomic

    sweep_config = config.sweep()
    plan = plan or RacePlan(budget_s=config.budget_s)
    writer = RunWriter(run_dir)
    context = Run.of(Path(run_dir).name, fp.collect())
    real = config.weights is not None and config.images is not None
    spec = ModelSpec(config.depth, config.variant, config.weights, input_size=config.input_size)
    exporter = Exporter(spec, Sweep(sweep_config, run_dir).export_options())
    cells = sweep_config.cells()
    checked: dict[tuple[str, str], dict] = {}
    leftover: list[tuple[dict, dict]] = []  # (cell, its row) of cells that will not race
    progress("parity and accuracy")
    evaluation = reference = None
    calibration = images_sha256(config.calibration_images) if config.calibration_images else None
    for backend in config.backends:
        for precision in config.precisions:
            group = [c for c in cells if c["backend"] == backend and c["precision"] == precision]
            if needs_accuracy(precision) and not real:
                for cell in group:
                    leftover.append((cell, failure_row(cell, context, status="not_raced", error=NOT_ESTABLISHED,
                                                       accuracy_status="not established",
                                                       race_reason=NOT_ESTABLISHED)))
                continue
            if evaluation is None:
                evaluation = evaluation_set(config.input_size, config.parity_images, config.images, config.labels)
                reference = reference_logits(exporter, evaluation.images)
            try:
                opened = open_backend(backend, BackendOptions(config.device, precision, config.threads), exporter)
            except Exception as exc:
                for cell in group:
                    row = failure_row(cell, context, exc, race_reason="could not be opened")
                    leftover.append((cell, {**row, "parity_status": row["status"]}))
                continue
            with opened.backend as runner:
                verdict, columns = check(runner, backend, evaluation, reference, sweep_config.budget(),
                                         config.weights is not None, calibration)
            ok = verdict.status == "pass" and columns.get("accuracy_status") in ("pass", "not needed")
            why = ("" if ok else f"parity {verdict.status}: {verdict.reason}" if verdict.status != "pass"
                   else f"accuracy {columns.get('accuracy_status')}: {columns.get('accuracy_reason')}")
            for cell in group:
                checked[(backend, precision)] = {**columns, "export_s": opened.export_s,
                                                 "export_cached": opened.export_cached, "load_s": opened.load_s}
                if not ok:
                    status = "parity_failed" if verdict.status == "fail" else "error"
                    leftover.append((cell, failure_row(cell, context, status=status, error=why, race_reason=why,
                                                       **columns)))
    from resnet_bench.results.rows import cell_id

    entries = [Entry(cell_id(c), c) for c in cells if (c["backend"], c["precision"]) in checked
               and not any(cell_id(c) == cell_id(left) for left, _ in leftover)]
    if not entries:
        reasons = "; ".join(sorted({row.get("race_reason") or row.get("error") or "" for _, row in leftover}))
        raise ValueError(f"no candidate left to race after parity and accuracy ({reasons})")
    limits = Limits(config.max_latency_ms, config.latency_percentile, config.min_throughput)
    ended = race(entries, limits, plan, PACKAGE.parent, Path(config.artifacts).resolve(), progress)
    for _, row in leftover:
        writer.add(row)
    for entry in entries:
        if not entry.rates:
            writer.add(failure_row(entry.cell, context, status="error", error=entry.why, race_reason=entry.why,
                                   race_round=entry.left_in, **checked[(entry.cell["backend"],
                                                                         entry.cell["precision"])]))
            continue
        timing = Timing(np.asarray(entry.samples), 0, 1)
        rate, low, high = entry.interval(entry.rates, plan.confidence)
        if len(entry.rates) < 2:  # one process: no interval over processes to give
            low = high = None
        spread = float(np.std(np.log(entry.rates), ddof=1)) if len(entry.rates) > 1 else None
        reasons = timing.invalid_reasons()  # the pooled samples' own precision (rounds are processes)
        writer.add(measured_row(entry.cell, context, stats=timing.stats(), images_per_s=rate, reasons=reasons,
                                images_per_s_low=low, images_per_s_high=high, process_spread=spread,
                                process_rounds=len(entry.rates), race_round=entry.left_in,
                                race_reason=entry.why or entry.state, race_state=entry.state,
                                **checked[(entry.cell["backend"], entry.cell["precision"])]),
                   [round(float(x), 6) for x in entry.samples])
    writer.finish()
    write_atomic(Path(run_dir) / "race.json", json.dumps(ended, indent=2, default=str))
    return ended


def answer(rows: list[dict], ended: dict, limits) -> str:
    """The race's answer in one sentence: the pick with its figures, intervals and margin over the
    runner-up; the tie; or why nothing qualifies, naming the closest candidate and its miss."""
    raced = [r for r in rows if r.get("race_state") in ("picked", "tied", "out") and r.get("images_per_s")]
    q = limits.percentile

    def figures(row: dict) -> str:
        low, high = row.get("images_per_s_low"), row.get("images_per_s_high")
        interval = f" ({low:.3g}-{high:.3g})" if low is not None and high is not None and low == low else " (1 process)"
        latency = row.get(f"latency_ms_p{q}")
        shown = f"p{q} {latency:.3g} ms" if latency is not None and latency == latency else f"p{q} not bounded yet"
        return f"{row['images_per_s']:.3g} images/s{interval}, {shown}"

    rounds = ended.get("rounds", 0)
    if ended.get("pick") is None:
        if not raced:
            return "Nothing was raced: every candidate failed parity or accuracy, or could not be opened."
        budget = limits.max_latency_ms
        closest = min(raced, key=lambda r: r.get(f"latency_ms_p{q}") or float("inf"))
        miss = (f", {closest[f'latency_ms_p{q}'] / budget - 1:.0%} over the {budget:g} ms budget"
                if budget else "")
        return (f"Nothing qualifies after {rounds} rounds: the closest, {short_label(closest)}, runs {figures(closest)}"
                f"{miss}.")
    pick = next(r for r in rows if r["cell_id"] == ended["pick"])
    if ended.get("tied_with"):
        others = [r for r in rows if r["cell_id"] in ended["tied_with"]]
        listed = "; ".join(f"{short_label(r)} {figures(r)}" for r in others[:2]) + (
            f" and {len(others) - 2} more" if len(others) > 2 else "")
        why = (f" (stopped early: their gaps are under what {ended['planned']} rounds could resolve)"
               if ended.get("ended") == "futile" and ended.get("planned") else "")
        return (f"Tied within this machine's noise after {rounds} rounds of fresh processes{why}: {short_label(pick)} "
                f"{figures(pick)}; {listed}.")
    beaten = [r for r in raced if r["cell_id"] != pick["cell_id"] and (
        limits.max_latency_ms is None or (r.get(f"latency_ms_p{q}") or float("inf")) <= limits.max_latency_ms)]
    runner = max(beaten, key=lambda r: r["images_per_s"], default=None)
    margin = (f", {pick['images_per_s'] / runner['images_per_s'] - 1:.0%} ahead of the runner-up {short_label(runner)} "
              f"({runner['images_per_s']:.3g} images/s, out in round {runner.get('race_round')})" if runner else "")
    within = f" within p{q} <= {limits.max_latency_ms:g} ms" if limits.max_latency_ms else ""
    return (f"Pick: {short_label(pick)}, {figures(pick)}{within}{margin}; separated beyond their cross-process "
            f"intervals after {rounds} rounds ({ended.get('seconds', 0):.0f} s).")
