"""The fleet's driver: every machine kind runs every cell of the sweep; Ray places the tasks.

Cells go out in groups (a depth x backend x precision: they share a model, an export and a
parity check), one Ray task per group and kind, asking for the project's resource (one timed cell
per node at a time), every CPU of a node of that kind and a node with that kind's label: Ray's
own scheduler places them, and nodes of a kind share its groups. A task runs in a fresh worker
process (``max_calls=1``) and is never retried by Ray (``max_retries=0``): when its worker or its
node dies, the driver sends the group's missing cells to another node of the same kind if one is
alive (attempt 2), else writes an error row per missing cell naming the node, the cause and the
attempt. Rows stream back as each cell finishes and are written at once, atomically, into one
run folder per machine kind and node fingerprint under the fleet folder; a resumed fleet
(``--resume``) runs only the cells missing there. A finished cell is never run again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from resnet_bench.fleet.cluster import LABEL, RESOURCE, Node, connect, fleet_nodes, require_nodes
from resnet_bench.fleet.prices import cost_columns, load_prices
from resnet_bench.fleet.task import run_group
from resnet_bench.results.rows import Run, cell_id, failure_row
from resnet_bench.results.runs import RunWriter
from resnet_bench.sweep.config import SweepConfig
from resnet_bench.util.files import write_atomic

MAX_ATTEMPTS = 2
POLL_S = 1.0
FLEET_FILE = "fleet.json"


@dataclass(frozen=True)
class FleetConfig:
    address: str
    sweep: SweepConfig
    out: Path  # the fleet folder
    prices: str | None = None
    node_artifacts: str = "artifacts"  # each node's own artifact store (a path on that node)
    node_ip: str | None = None  # the driver's own address (a loopback one in tests)

    def __post_init__(self) -> None:
        if self.prices is not None:
            load_prices(self.prices)  # a malformed price file is bad input, before the cluster is joined

    def to_json(self) -> dict:
        return {"command": "fleet", "address": self.address, "prices": self.prices, "sweep": self.sweep.to_json()}


@dataclass
class Task:
    kind: str
    group: dict
    cells: list[str]  # the cell ids still missing
    attempt: int = 1
    node: str | None = None  # the node it ran on, once it said
    fingerprint: dict | None = None
    avoid: tuple[str, ...] = ()  # nodes that failed this group
    ref: object = None


@dataclass
class Fleet:
    """What the driver keeps: a writer per (kind, fingerprint) folder, and the rows written."""

    out: Path
    config: FleetConfig
    writers: dict[str, RunWriter] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def writer(self, kind: str, fingerprint: dict) -> RunWriter:
        name = f"{kind}-{fingerprint.get('fingerprint_id', 'unknown')[:12]}"
        if name not in self.writers:
            folder = self.out / name
            if not (folder / "config.json").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                write_atomic(folder / "config.json", json.dumps(self.config.sweep.to_json(), indent=2))
                write_atomic(folder / "fingerprint.json", json.dumps({**fingerprint, "machine_kind": kind}, indent=2))
            self.writers[name] = RunWriter(folder)
        return self.writers[name]

    def done(self) -> set[tuple[str, str]]:
        """(kind, cell id) of every row already written (a resume runs only the rest)."""
        found = set()
        for folder in sorted(p for p in self.out.iterdir() if (p / "results.csv").is_file()):
            fingerprint = json.loads((folder / "fingerprint.json").read_text())
            writer = self.writer(fingerprint.get("machine_kind", folder.name), fingerprint)
            found |= {(fingerprint.get("machine_kind", folder.name), row["cell_id"]) for row in writer.rows}
        return found


def groups_of(config: SweepConfig) -> dict[tuple, list[str]]:
    groups: dict[tuple, list[str]] = {}
    for cell in config.cells():
        groups.setdefault((cell["depth"], cell["backend"], cell["precision"]), []).append(cell_id(cell))
    return groups


def _options(task: Task, nodes: list[Node]) -> dict:
    cpus = min(n.cpus for n in nodes if n.kind == task.kind)
    selector = {LABEL: task.kind}
    labelled = any(LABEL in n.labels for n in nodes if n.kind == task.kind)
    options = {"num_cpus": cpus, "resources": {RESOURCE: 1}, "max_retries": 0}
    if labelled:
        if task.avoid:
            selector["ray.io/node-id"] = f"!in({','.join(task.avoid)})"
        options["label_selector"] = selector
    else:  # a node without a kind label is its own kind
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = next(n for n in nodes if n.kind == task.kind)
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
    return options


def run_fleet(config: FleetConfig, progress=lambda text: None, resume: bool = False) -> Path:
    """The whole fleet sweep into ``config.out``; returns the fleet folder."""
    ray = connect(config.address, config.node_ip)
    nodes = require_nodes(ray, config.address)
    kinds = sorted({n.kind for n in nodes})
    config.out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(config.out, config)
    prices = load_prices(config.prices) if config.prices else None
    done = fleet.done() if resume else set()
    write_atomic(config.out / FLEET_FILE, json.dumps(
        {**config.to_json(), "nodes": [vars(n) for n in nodes], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        indent=2))
    progress(f"{len(nodes)} nodes, kinds {', '.join(kinds)}; {len(done)} cells already done")
    remote = ray.remote(max_calls=1)(run_group)
    sweep_json = config.sweep.to_json()
    pending: list[Task] = []
    for kind in kinds:
        for (depth, backend, precision), cells in groups_of(config.sweep).items():
            missing = [c for c in cells if (kind, c) not in done]
            if missing:
                pending.append(Task(kind, dict(depth=depth, backend=backend, precision=precision), missing))

    def submit(task: Task) -> None:
        alive = fleet_nodes(ray)
        task.ref = remote.options(num_returns="streaming", **_options(task, alive)).remote(
            sweep_json, task.group, task.cells, config.node_artifacts)

    for task in pending:
        submit(task)
    cells = {cell_id(c): c for c in config.sweep.cells()}
    while pending:
        ready, _ = ray.wait([t.ref for t in pending], num_returns=1, timeout=POLL_S)
        for ref in ready:
            task = next(t for t in pending if t.ref is ref)
            try:
                item = ray.get(next(ref))
            except StopIteration:
                pending.remove(task)
                if task.cells:  # ended without a row for some cells: they are errors of this attempt
                    _fail(fleet, task, cells, "the task ended without a row for them", prices)
                continue
            except ray.exceptions.RayError as exc:  # the worker or the node died: nothing of Ray retries
                pending.remove(task)
                cause = type(exc).__name__
                fleet.events.append(f"{task.kind} {task.group}: {cause} on node {task.node} (attempt {task.attempt})")
                progress(fleet.events[-1])
                others = [n for n in fleet_nodes(ray) if n.kind == task.kind and n.node_id != task.node]
                if task.attempt < MAX_ATTEMPTS and others:
                    retry = Task(task.kind, task.group, list(task.cells), task.attempt + 1,
                                 avoid=(*task.avoid, *(filter(None, [task.node]))))
                    pending.append(retry)
                    submit(retry)
                else:
                    _fail(fleet, task, cells, f"{cause} on node {task.node or 'unknown'}", prices)
                continue
            _take(fleet, task, item, prices, progress)
        _drop_stranded(ray, fleet, pending, cells, prices, progress)
    for writer in fleet.writers.values():
        writer.finish()
    return config.out


def _take(fleet: Fleet, task: Task, item: dict, prices, progress) -> None:
    if "node" in item:
        task.node, task.fingerprint = item["node"]["node_id"], item["node"]["fingerprint"]
        return
    writer = fleet.writer(task.kind, task.fingerprint or {})
    context = {"machine_kind": task.kind, "node_id": task.node, "attempt": task.attempt,
               "run_id": writer.dir.name}
    if "row" in item:
        row = {**item["row"], **context}
        row.update(cost_columns(row, prices))
        writer.add(row, item.get("samples"))
        if row["cell_id"] in task.cells:
            task.cells.remove(row["cell_id"])
        progress(f"{task.kind}: {row['cell_id']}: {row['status']} (node {str(task.node)[:8]}, attempt {task.attempt})")
    elif "final" in item:  # the group's rows against its best roof: the same rows, roof columns corrected
        by_id = {r["cell_id"]: r for r in item["final"]}
        for row in writer.rows:
            if row["cell_id"] in by_id and row.get("node_id") == task.node:
                row.update(peak_gflops=by_id[row["cell_id"]].get("peak_gflops"),
                           roofline_fraction=by_id[row["cell_id"]].get("roofline_fraction"))
        writer.rewrite()
    elif "error" in item:
        fleet.events.append(f"{task.kind} {task.group}: the group failed on node {task.node}: {item['error']}")


def _fail(fleet: Fleet, task: Task, cells: dict, why: str, prices) -> None:
    writer = fleet.writer(task.kind, task.fingerprint or {"fingerprint_id": "unknown"})
    context = Run(writer.dir.name, (task.fingerprint or {}).get("fingerprint_id", ""))
    for cid in list(task.cells):
        row = failure_row(cells[cid], context, status="error",
                          error=f"{why} (attempt {task.attempt}; the cell was not retried further)",
                          machine_kind=task.kind, node_id=task.node, attempt=task.attempt)
        writer.add(row)
    task.cells.clear()


def _drop_stranded(ray, fleet: Fleet, pending: list[Task], cells: dict, prices, progress) -> None:
    """Tasks that no alive node may take (none of their kind is left, or only nodes they avoid
    after failing there) can never run: their cells become error rows."""
    alive = fleet_nodes(ray)
    for task in list(pending):
        if task.node is None and not any(n.kind == task.kind and n.node_id not in task.avoid for n in alive):
            ray.cancel(task.ref, force=True)
            pending.remove(task)
            _fail(fleet, task, cells, f"no alive node of kind {task.kind!r} is left that it may run on", prices)
            progress(f"{task.kind}: no node left; {task.group} recorded as errors")
