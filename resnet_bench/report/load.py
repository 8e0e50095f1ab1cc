"""Load result runs for a report: rows of several runs (machines) in one frame, and the views
the sections read (closed-loop rows, LoadGen rows, a Server row's peak search)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from resnet_bench.parity.accuracy import CLOSED_LOOP
from resnet_bench.results.runs import load


def expand(run_dirs: list[str | Path]) -> list[Path]:
    """Run folders, a fleet folder standing for the run folders in it (one per machine kind and
    node fingerprint)."""
    found = []
    for path in map(Path, run_dirs):
        if not (path / "results.csv").is_file() and (path / "fleet.json").is_file():
            found += sorted(p for p in path.iterdir() if (p / "results.csv").is_file())
        else:
            found.append(path)
    return found


def load_runs(run_dirs: list[str | Path]) -> tuple[pd.DataFrame, dict[str, dict]]:
    """All rows, with a ``machine`` column naming each run's fingerprint; fingerprints by id."""
    frames, fingerprints = [], {}
    for run_dir in expand(run_dirs):
        frame = load(run_dir)
        try:
            fingerprint = json.loads((run_dir / "fingerprint.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{run_dir} has no readable fingerprint.json") from exc
        what = fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or "?"
        machine = f"{fingerprint['fingerprint_id'][:6]} {what} x{fingerprint.get('cpus_available')}"
        if fingerprint.get("machine_kind"):  # a fleet's run folder: the operator's name for the machine
            machine = f"{fingerprint['machine_kind']} ({machine})"
        fingerprints[machine] = fingerprint
        frames.append(frame.copy().assign(machine=machine, run_dir=str(run_dir)))  # one block: no fragmentation warning
    return pd.concat(frames, ignore_index=True), fingerprints


def closed_loop(frame: pd.DataFrame) -> pd.DataFrame:
    """The sweep's rows (latency and throughput modes), without LoadGen's."""
    return frame[frame["mode"].isin(CLOSED_LOOP)]


def loadgen_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if "scenario" not in frame:
        return frame.iloc[0:0]
    return frame[frame.scenario.isin(("singlestream", "multistream", "offline", "server"))]


def peak_search_of(row: pd.Series) -> dict | None:
    """The peak search behind a Server row (search.json beside its step's logs), if any."""
    if not isinstance(row.get("loadgen_log_dir"), str):
        return None
    path = Path(row.run_dir) / row.loadgen_log_dir
    for folder in (path.parent, path):
        if (folder / "search.json").is_file():
            return json.loads((folder / "search.json").read_text())
    return None


CONFIRM = "confirm.json"  # beside a run's results.csv: select.confirm's records, by depth


def confirmations(run_dirs: list[str | Path]) -> dict[int, dict]:
    """Depth -> the pick's confirmation across processes (the last run that has one wins)."""
    found: dict[int, dict] = {}
    for run_dir in expand(run_dirs):
        path = run_dir / CONFIRM
        if path.is_file():
            found.update({int(depth): record for depth, record in json.loads(path.read_text()).items()})
    return found
