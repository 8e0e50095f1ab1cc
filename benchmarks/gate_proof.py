"""Does the gate fail on real regressions and never on noise? Measured, on this machine.

Checks ``--ref`` (default HEAD) out into a temporary folder: A as it is and, per slowdown s, a
copy B_s whose ``--backend`` takes s% longer per timed call (a busy-wait proportional to the
measured call time, injected by this script into its own copy: the product has no such switch).
Each trial runs the gate A/A, then A/B_s for every s, on the same cells, so the conditions share
the machine's moods (while each still has runs to do: with uneven counts the last trials run
only the conditions with the most). Every gate run is printed as it ends; the summary (rates and wall times)
goes to ``--out``.

    python benchmarks/gate_proof.py [--aa-trials 5] [--trials 10] [--slowdowns 5,10,20]
        [--backend onnxruntime] [--cells 18/onnxruntime/1,...] [--input-size 224]
        [--rounds 8] [--blocks 3] [--out results/gate_proof.md]

Sizing: one gate run of the 12 default cells takes about as long as ``make gate`` (README);
the default (5 A/A + 3 x 10 A/B runs) is 35 such runs. ``--cells`` restricted to the injected
backend's cells measures the catch rates at a third of the cost, and ``--slowdowns
5:10,20:10,10:3`` gives each slowdown its own count. The summary is rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from resnet_bench.gate import git  # noqa: E402
from resnet_bench.gate import run as gate  # noqa: E402

INJECTION = '''

# -- injected into a scratch copy by benchmarks/gate_proof.py: {what} --
_uninjected_backend_class = backend_class


def backend_class(name: str):
    cls = _uninjected_backend_class(name)
    if name == {backend!r} and "_uninjected_{method}" not in vars(cls):
        cls._uninjected_{method} = cls.{method}

        def {method}(self, *args):
{body}
        cls.{method} = {method}
    return cls
'''


def copy_tree(ref_or_tree: str | Path, folder: Path) -> Path:
    """A scratch source tree: a git ref checked out, or a folder's package sources copied."""
    if Path(ref_or_tree).is_dir():
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("resnet_bench", "exporters"):
            shutil.copytree(Path(ref_or_tree) / package, folder / package, ignore=ignore)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "-C", str(REPO), "archive", "--prefix", f"{folder.name}/", "-o",
                    str(folder) + ".tar", str(ref_or_tree)], check=True, capture_output=True)
    subprocess.run(["tar", "-xf", str(folder) + ".tar", "-C", str(folder.parent)], check=True)
    return folder


def source_of(ref_or_tree: str | Path) -> dict:
    """What the proof measured: the commit a ref resolves to (``git archive`` of it is clean), or a
    folder's own provenance (commit and dirty, ``None`` outside git)."""
    if Path(ref_or_tree).is_dir():
        return git.tree_provenance(Path(ref_or_tree))
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref_or_tree}^{{commit}}"],
                            capture_output=True, text=True)
    commit = result.stdout.strip() or None
    return {"commit": commit, "dirty": False if commit else None}


def inject(tree: Path, backend: str, method: str, body: str, what: str) -> None:
    """Wrap ``method`` of ``backend``'s class in ``tree``; ``body`` calls self._uninjected_<method>(*args)."""
    path = tree / "resnet_bench" / "backends" / "__init__.py"
    code = INJECTION.format(what=what, backend=backend, method=method, body=textwrap.indent(body.strip(), " " * 12))
    path.write_text(path.read_text() + code)


def slow_down(tree: Path, backend: str, percent: float, only: list[tuple[int, int]] | None = None) -> None:
    """``backend`` ``percent``% slower per timed call; with ``only`` [(depth, batch), ...], in those
    cells alone (told apart by the artifact's name and the input's batch)."""
    inject(tree, backend, "run", f"""
import time
start = time.perf_counter()
output = self._uninjected_run(*args)
only = {only!r}
if only and not any(f"resnet{{d}}-" in str(getattr(self, "path", "")) and len(args[0]) == b for d, b in only):
    return output
self.sync()
end = start + (time.perf_counter() - start) * {1 + percent / 100!r}
while time.perf_counter() < end:  # the injected slowdown: a busy-wait
    continue
return output
""", f"{backend} {percent:g}% slower")


def injected(row: dict, backend: str | None, only: list[tuple[int, int]] | None) -> bool:
    return row["backend"] == backend and (not only or (row["depth"], row["batch_size"]) in only)


def summarise(label: str, runs: list[tuple[list[dict], float, list[float]]], backend: str | None,
              only: list[tuple[int, int]] | None = None) -> str:
    """One table line: injected cells caught, other cells (A/A evidence) marked regressed, times."""
    red = lambda rows: sum(r["verdict"] == "regressed" for r in rows)  # noqa: E731
    hit = [[r for r in rows if injected(r, backend, only)] for rows, _, _ in runs]
    other = [r for rows, _, _ in runs for r in rows if not injected(r, backend, only)]
    cells = [r for rows, _, _ in runs for r in rows]
    ratios = sorted(r["ratio"] for rows in hit for r in rows if r.get("ratio", float("nan")) > 0)
    walls, rounds = [w for _, w, _ in runs], [s for _, _, seconds in runs for s in seconds]
    verdicts = ", ".join(f"{v} {sum(r['verdict'] == v for r in cells)}" for v in sorted({r["verdict"] for r in cells}))
    caught = "-"
    if backend:
        flat = [r for rows in hit for r in rows]
        caught = f"{red(flat)} of {len(flat)} (in {sum(red(rows) > 0 for rows in hit)} of {len(runs)} runs)"
    spread = f"{ratios[0]:.3f}-{ratios[-1]:.3f}" if ratios else "-"
    times = f"{min(walls):.0f}-{max(walls):.0f} s (rounds {min(rounds):.0f}-{max(rounds):.0f} s)" if runs else "-"
    return f"| {label} | {len(runs)} | {caught} | {spread} | {red(other)} of {len(other)} | {verdicts} | {times} |"


def parse_only(text: str) -> list[tuple[int, int]] | None:
    """"18/1,50/8" -> [(18, 1), (50, 8)]; "" -> None (every cell of the backend)."""
    cells = [tuple(int(x) for x in item.split("/")) for item in text.split(",") if item]
    return cells or None


def run_once(a: Path, b: Path, config: gate.GateConfig) -> tuple[list[dict], float, list[float]]:
    rounds: list[float] = []

    def progress(text: str) -> None:
        if text.endswith(" s") and "took" in text:
            rounds.append(float(text.split()[-2]))

    start = time.perf_counter()
    rows = gate.run_gate(a, b, config, progress)
    return rows, time.perf_counter() - start, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD", help="git ref to check out (or a source folder)")
    parser.add_argument("--aa-trials", type=int, default=5)
    parser.add_argument("--trials", type=int, default=10, help="A/B runs per slowdown")
    parser.add_argument("--slowdowns", default="5,10,20",
                        help="percent, comma-separated; percent:runs sets that slowdown's own count")
    parser.add_argument("--backend", default="onnxruntime", help="the backend slowed down")
    parser.add_argument("--cells", default="", help="depth/backend/batch,... (default: the gate's 12)")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None,
                        help="one look at this many rounds (default: the plan's looks)")
    parser.add_argument("--inject-cells", default="",
                        help="depth/batch,... : slow --backend down in these cells only (default: in all its cells)")
    parser.add_argument("--blocks", type=int, default=gate.GatePlan.blocks)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="results/gate_proof.md")
    args = parser.parse_args()
    trials = {}  # percent -> A/B runs ("5:10,20:10,10:3" or "5,10,20" with --trials each)
    for item in filter(None, args.slowdowns.split(",")):
        percent, _, count = item.partition(":")
        trials[float(percent)] = int(count) if count else args.trials
    config = gate.GateConfig(cells=gate.select_cells([c for c in args.cells.split(",") if c], args.input_size),
                             plan=(gate.GatePlan.fixed(args.rounds, blocks=args.blocks) if args.rounds
                                   else gate.GatePlan(blocks=args.blocks)),
                             artifacts=Path(args.artifacts).resolve())
    only = parse_only(args.inject_cells)
    load_before = os.getloadavg()[0]  # another job on the machine makes the run no measurement
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="gate-proof-"))
    wanted = {"A/A": args.aa_trials, **{f"+{s:g}%": n for s, n in trials.items()}}
    runs: dict[str, list] = {label: [] for label in wanted}
    lines: list[str] = []
    source = source_of(args.ref)
    try:
        a = copy_tree(args.ref, root / "a")
        heads = {"A/A": a}
        for s in trials:
            heads[f"+{s:g}%"] = copy_tree(args.ref, root / f"b{s:g}")
            slow_down(heads[f"+{s:g}%"], args.backend, s, only)
        for trial in range(max(wanted.values())):
            for label, head in heads.items():
                if trial >= wanted[label]:
                    continue
                rows, wall, rounds = run_once(a, head, config)
                runs[label].append((rows, wall, rounds))
                with open(Path(args.out).with_suffix(".jsonl"), "a") as raw:  # every block, for the noise model
                    raw.write(json.dumps({"condition": label, "trial": trial + 1, "wall_s": wall,
                                          "source": source, "injected_cells": args.inject_cells or "all",
                                          "rows": rows}) + "\n")
                verdicts = ", ".join(f"{r['depth']}/{r['backend']}/b{r['batch_size']} {r['verdict']} "
                                     f"{r.get('ratio', float('nan')):.3f}" for r in rows)
                lines.append(f"trial {trial + 1} {label}: {verdicts} ({wall:.0f} s)")
                print(lines[-1], flush=True)
                write(args, config, runs, lines, load_before, started, source)  # nothing measured is lost
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n" + write(args, config, runs, lines, load_before, started, source))


def write(args, config: gate.GateConfig, runs: dict[str, list], lines: list[str], load_before: float,
          started: float, source: dict) -> str:
    """The summary so far, to ``--out``; returns its table."""
    table = ["| condition | runs | injected cells regressed | their ratios | other cells regressed | verdicts "
             "| wall time per run |", "|---|---|---|---|---|---|---|",
             *([summarise("A/A", runs["A/A"], None)] if args.aa_trials else [])]
    where = f"{args.backend} {args.inject_cells}" if args.inject_cells else args.backend
    table += [summarise(f"{label} on {where}", runs[label], args.backend, parse_only(args.inject_cells))
              for label in runs if label != "A/A"]
    plan = config.plan
    measured = (f"commit {source['commit'][:12]}{' with uncommitted changes' if source['dirty'] else ''}"
                if source["commit"] else "a tree outside git")
    text = (f"# Gate proof: A/A and injected slowdowns\n\n`python benchmarks/gate_proof.py "
            f"{' '.join(sys.argv[1:])}`: measured {measured}, {len(config.cells)} cells, "
            f"looks at {','.join(map(str, plan.looks))} rounds x "
            f"{plan.blocks} blocks per process, settle {plan.settle_s:g} s, threshold {config.threshold:.0%}, "
            f"{time.strftime('%Y-%m-%d')}, {(time.perf_counter() - started) / 60:.0f} min; load average "
            f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the last write ({os.cpu_count()} CPUs).\n\n"
            + "\n".join(table) + "\n\n```\n" + "\n".join(lines) + "\n```\n")
    Path(args.out).write_text(text)
    return "\n".join(table)


if __name__ == "__main__":
    main()
