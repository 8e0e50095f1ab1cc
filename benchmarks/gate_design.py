"""The gate's operating characteristic per gate run, simulated under the noise measured here.

    python benchmarks/gate_design.py [DATA.jsonl ...] [--runs 20000] [--inflate 1.5] [--out results/gate_design.md]

Fits ``gate.noise``'s model to the A/A gate runs in the data files (what
``benchmarks/gate_proof.py`` appends to ``<out>.jsonl``: every block of every round), then
simulates whole gate runs of the shipped plan (``gate.run.GatePlan()``, the default 12 cells):
identical code; a true change of T/2 in every cell; a true change of 2T in one cell, each cell in
turn, the others unchanged. Each rate comes with its 95% interval; ``--inflate`` repeats the
simulation with every sd and outlier that many times larger (a noisier day than the data).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from resnet_bench.gate import noise  # noqa: E402
from resnet_bench.gate import run as gate  # noqa: E402

DEFAULT_DATA = sorted((REPO / "results").glob("gate_proof*.jsonl"))


def name_of(row: dict) -> str:
    return f"{row['depth']}/{row['backend']}/{row['batch_size']}"


def aa_cells(paths: list[Path]) -> tuple[dict, int, list[Path]]:
    """{cell: (base rounds, head rounds)} pooled over the A/A runs of the files, the run count, and
    the files that had any."""
    cells: dict[str, tuple[list, list]] = {}
    count = 0
    used = []
    for path in paths:
        before = count
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["condition"] != "A/A":
                continue
            count += 1
            for row in record["rows"]:
                if "base_blocks" not in row:
                    continue
                base, head = cells.setdefault(name_of(row), ([], []))
                base += row["base_blocks"]
                head += row["head_blocks"]
        if count > before:
            used.append(path)
    return cells, count, used


# The injected-slowdown proofs the model is checked against: file, condition, true change, the
# cells it was injected into (None: every cell of the file).
CHECKS = (("gate_proof_5pct_ort.jsonl", "+5%", 0.05, None),
          ("gate_proof_20pct_one_cell.jsonl", "+20%", 0.20, {"18/onnxruntime/1"}))


def measured_runs(path: Path, condition: str) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["condition"] == condition]


def check_against(models: list[noise.CellNoise], plan, threshold: float, runs: int) -> list[str]:
    """The fitted model against the injected-slowdown runs it was not fitted to: per cell, the core
    sd of d those runs show (about their own median, so the injected change drops out) beside
    the model's, and the simulated red rate, catch rate and rounds beside the measured ones."""
    by_cell = {m.cell: m for m in models}
    lines = ["| proof | cell | injected | core sd: model / these runs (rounds) | regressed: simulated / measured "
             "| mean rounds: simulated / measured |", "|---|---|---|---|---|---|"]
    for name, condition, change, only in CHECKS:
        path = REPO / "results" / name
        if not path.exists():
            continue
        records = measured_runs(path, condition)
        names = sorted({name_of(row) for r in records for row in r["rows"]}, key=list(by_cell).index)
        effects = [change if only is None or cell in only else 0.0 for cell in names]
        cells = [by_cell[cell] for cell in names]
        sim = noise.simulate(cells, effects, replace(plan, cells=len(cells)), threshold, runs, seed=101)
        red = sum(any(row["verdict"] == "regressed" for row in r["rows"]) for r in records)
        for i, cell in enumerate(names):
            rows = [row for r in records for row in r["rows"] if name_of(row) == cell]
            measured = noise.fit({cell: ([b for row in rows for b in row["base_blocks"]],
                                         [h for row in rows for h in row["head_blocks"]])})[0]
            caught = sum(row["verdict"] == "regressed" for row in rows)
            lines.append(f"| {name.removesuffix('.jsonl')} ({len(records)} runs, {red} red) | {cell} | "
                         f"{effects[i]:+.0%} | {cells[i].core:.2%} / {measured.core:.2%} ({measured.rounds}) | "
                         f"{rate(sim['cells'][i]['regressed'], runs)} / {caught} of {len(rows)} | "
                         f"{sim['cells'][i]['mean_rounds']:.1f} / {sum(row['n'] for row in rows) / len(rows):.1f} |")
        lines.append(f"| {name.removesuffix('.jsonl')}: runs with a red cell | | | | "
                     f"{rate(sim['red_runs'], runs)} / {red} of {len(records)} | |")
    return lines


def characteristic(models: list[noise.CellNoise], plan, threshold: float, runs: int) -> dict:
    """Per-run rates: red at A/A and at T/2 everywhere, A/A inconclusive cells, 2T caught per cell."""
    cells = len(models)
    aa = noise.simulate(models, [0.0] * cells, plan, threshold, runs, seed=1)
    half = noise.simulate(models, [threshold / 2] * cells, plan, threshold, runs, seed=2)
    caught = []
    for i in range(cells):
        effects = [2 * threshold if j == i else 0.0 for j in range(cells)]
        one = noise.simulate(models, effects, plan, threshold, runs, seed=3 + i)
        caught.append((models[i].cell, one["cells"][i]["regressed"], one["cells"][i]["mean_rounds"]))
    return {"aa": aa, "half": half, "caught": caught}


def rate(value: float, runs: int) -> str:
    low, high = noise.rate_bound(value, runs)
    return f"{value:.2%} ({low:.2%}-{high:.2%})"


def table(result: dict, runs: int) -> list[str]:
    aa, half = result["aa"], result["half"]
    worst = min(result["caught"], key=lambda c: c[1])
    lines = ["| condition | rate per gate run (95% interval) | cell-rounds per run (A/A) |", "|---|---|---|",
             f"| identical code: red | {rate(aa['red_runs'], runs)} | {aa['cell_rounds']:.1f} |",
             f"| identical code: cells inconclusive | {rate(aa['inconclusive'], runs * len(aa['cells']))} | |",
             f"| T/2 in every cell: red | {rate(half['red_runs'], runs)} | {half['cell_rounds']:.1f} |",
             f"| 2T in one cell: caught, worst cell ({worst[0]}) | {rate(worst[1], runs)} | |",
             "", "| 2T in this cell alone | caught | its mean rounds |", "|---|---|---|"]
    lines += [f"| {cell} | {rate(caught, runs)} | {rounds:.1f} |" for cell, caught, rounds in result["caught"]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="*", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--inflate", type=float, default=1.5)
    parser.add_argument("--threshold", type=float, default=0.10)
    parser.add_argument("--out", default="results/gate_design.md")
    args = parser.parse_args()
    cells, count, used = aa_cells(args.data)
    if not cells:
        print("gate_design: no A/A runs with blocks in " + ", ".join(map(str, args.data)), file=sys.stderr)
        return 2
    start = time.perf_counter()
    models = noise.fit(cells)
    gate_plan = gate.GatePlan()
    plan = gate_plan.sequential(len(models))
    fitted = characteristic(models, plan, args.threshold, args.runs)
    noisier = characteristic(noise.inflate(models, args.inflate), plan, args.threshold, args.runs)
    bonferroni = characteristic(models, replace(plan, levels=None), args.threshold, args.runs)
    bonferroni_noisier = characteristic(noise.inflate(models, args.inflate), replace(plan, levels=None),
                                        args.threshold, args.runs)
    checked = check_against(models, plan, args.threshold, args.runs)
    outliers = ", ".join(f"{o:+.1%}" for o in models[0].outliers)
    text = [
        "# The gate's operating characteristic, simulated under the noise measured here", "",
        f"`python benchmarks/gate_design.py {' '.join(sys.argv[1:])}` ({time.strftime('%Y-%m-%d')}, "
        f"{time.perf_counter() - start:.0f} s): {args.runs:,} simulated gate runs per condition, threshold "
        f"T = {args.threshold:.0%}, the shipped plan: looks at {', '.join(map(str, plan.looks))} rounds, one-sided "
        f"levels {', '.join(f'{a:g}' for a in plan.levels or ())}, trim {plan.trim:g}, unchanged at "
        f"{plan.unchanged_confidence:.0%}.", "",
        "## The noise model", "",
        f"Fitted to {count} A/A gate runs of the default 12 cells ({', '.join(p.name for p in used)}): "
        "per round, d = log(head / base) of the two processes' medians of block medians. Per cell, a core "
        "sd of d (1.4826 x its MAD); pooled over cells, outliers: rounds more than "
        f"{noise.OUTLIER_CUT:g} core sds from their cell's median, {models[0].outlier_share:.1%} of "
        f"{sum(m.rounds for m in models)} rounds, drawn as measured ({outliers}).", "",
        "| cell | core sd of d | rounds |", "|---|---|---|",
        *[f"| {m.cell} | {m.core:.2%} | {m.rounds} |" for m in models], "",
        "## Operating characteristic under the fitted model", "", *table(fitted, args.runs), "",
        f"## The same with every sd and outlier x{args.inflate:g} (a noisier day)", "",
        *table(noisier, args.runs), "",
        "## The same looks with Bonferroni's levels (1% over the cells and looks, whatever the noise)", "",
        f"Each look's level {plan.false_red / plan.cells / len(plan.looks):.2g}: what the calibrated levels buy.", "",
        *table(bonferroni, args.runs), "",
        f"### Bonferroni's levels with every sd and outlier x{args.inflate:g}", "",
        *table(bonferroni_noisier, args.runs), "",
        "## The model checked against the injected-slowdown runs (not fitted to them)", "",
        "Simulated with the shipped plan on the proof's own cells and change; rates with their 95% "
        "intervals, measured counts as they came.", "", *checked, ""]
    Path(args.out).write_text("\n".join(text))
    print("\n".join(table(fitted, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
