"""Two stored runs side by side: ``compare BASE HEAD`` (and HEAD against a stored baseline).

Runs are compared only when their hard fingerprints match and their configurations agree in
everything that may move a figure. Per cell present in both: the difference of the raw samples
with its interval (``statistics.difference_of_samples``), never a timing verdict (each run is one
process: the same code moves several percent between processes, 10-26% between jobs; the PR
gate, ``gate.run``, replicates over processes), and whether parity got worse (which fails).
"""

from __future__ import annotations

import json
from pathlib import Path

from resnet_bench.gate.statistics import difference_of_samples
from resnet_bench.results.runs import load, load_samples

# Config fields that only choose which cells a run has (cells are matched by id, which holds
# them) or where files go; every other field may move a figure and must match.
CELL_CHOICE = frozenset({"device", "depths", "batches", "backends", "precisions", "modes", "parity_images",
                         "artifacts", "loadgen"})


def _read_json(path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _flat(config: dict, prefix: str = "") -> dict:
    """{"rule": {"min_s": 1}} -> {"rule.min_s": 1}"""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(base: dict, head: dict, base_cpus: int | None = None,
                       head_cpus: int | None = None) -> list[str]:
    """``key base vs head`` for every field that may move a figure and differs. A field one run
    does not record (an older run) is unknown, not a difference. threads None means the CPUs
    the run had."""
    base, head = _flat(base), _flat(head)
    for flat, cpus in ((base, base_cpus), (head, head_cpus)):
        if flat.get("threads") is None and cpus is not None and "threads" in flat:
            flat["threads"] = cpus
    differences = []
    for key in sorted(base.keys() & head.keys()):
        if key.split(".")[0] not in CELL_CHOICE and base[key] != head[key]:
            differences.append(f"{key} {base[key]!r} vs {head[key]!r}")
    return differences


def compare_runs(base_dir, head_dir, threshold: float = 0.10) -> list[dict]:
    """Per cell present in both runs: the difference of the raw samples (``slower``, ``faster``,
    ``within``, with the one-process warning), and whether parity got worse.

    Refuses (ValueError) runs whose hard fingerprints differ, or whose configurations differ in
    anything that moves a figure (threads, weights, input size, stop rule...): their numbers are
    not comparable.
    """
    prints = []
    for run in (base_dir, head_dir):
        fingerprint = _read_json(Path(run) / "fingerprint.json")
        if not isinstance(fingerprint, dict) or "fingerprint_id" not in fingerprint:
            raise ValueError(f"{run} is not a run directory (no fingerprint.json)")
        prints.append(fingerprint)
    if prints[0]["fingerprint_id"] != prints[1]["fingerprint_id"]:
        raise ValueError(f"the runs were measured on different machines or software (fingerprints "
                         f"{prints[0]['fingerprint_id']} and {prints[1]['fingerprint_id']}): their timings "
                         "cannot be compared")
    configs = [_read_json(Path(run) / "config.json") for run in (base_dir, head_dir)]
    if all(isinstance(config, dict) for config in configs):  # a run without one: unknown
        differences = config_differences(*configs, *(p.get("cpus_available") for p in prints))
        if differences:
            raise ValueError(f"the runs were measured with different configurations ({'; '.join(differences)}): "
                             "their timings cannot be compared")
    base, head = load(base_dir).set_index("cell_id"), load(head_dir).set_index("cell_id")
    rows = []
    for cell in base.index.intersection(head.index):
        b, h = base.loc[cell], head.loc[cell]
        row = {"cell_id": cell, "base_status": b.status, "head_status": h.status,
               "parity_worse": b.parity_status == "pass" and h.parity_status != "pass"}
        if isinstance(b.get("scenario"), str) and b.get("scenario"):  # LoadGen keeps no samples of ours
            row.update(verdict="not compared", reason="LoadGen row: see its own verdict (loadgen_valid)")
        elif b.status in ("ok", "parity_failed") and h.status in ("ok", "parity_failed"):
            decision = difference_of_samples(load_samples(base_dir, cell), load_samples(head_dir, cell), threshold)
            row.update(decision.row(), base_ms=b.latency_ms_p50, head_ms=h.latency_ms_p50)
        else:
            row.update(verdict="not compared", reason=f"status {b.status} -> {h.status}")
        rows.append(row)
    return rows


def stored_baseline(head_dir: str | Path, baselines: str | Path) -> tuple[str, Path | None]:
    """(HEAD's fingerprint id, the stored baseline run for it under ``baselines``, or None)."""
    fingerprint = _read_json(Path(head_dir) / "fingerprint.json")
    if not isinstance(fingerprint, dict) or "fingerprint_id" not in fingerprint:
        raise ValueError(f"{head_dir} is not a run directory (no fingerprint.json)")
    base = Path(baselines) / fingerprint["fingerprint_id"]
    return fingerprint["fingerprint_id"], (base if (base / "results.csv").is_file() else None)
