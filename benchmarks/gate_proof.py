"""Does the gate fail on real regressions and never on noise? Measured, on this machine.

Checks out HEAD twice into temporary worktrees: A as it is, B with a 10% slowdown injected
into the ONNX Runtime backend's timed call (by this script, editing B's copy; the product has
no such switch). Then, alternating, N gate runs A/A and N gate runs A/B over the same cells,
and prints the false-failure rate (A/A cells marked regressed) and the detection rate (A/B
runs in which the slowed cell is marked regressed), with the gate's wall time.

    python benchmarks/gate_proof.py [--trials 10] [--cells 18/onnxruntime/1,18/torch/1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from resnet_bench import gate

REPO = Path(__file__).resolve().parent.parent
INJECTED = '''
    def run(self, prepared):  # injected by benchmarks/gate_proof.py: 10% slower
        import time as _time
        start = _time.perf_counter()
        output = self._run_unslowed(prepared)
        end = start + (_time.perf_counter() - start) * 1.10
        while _time.perf_counter() < end:
            pass
        return output
'''


def checkout(ref: str, folder: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), ref], check=True,
                   capture_output=True)
    return folder


def slow_down(tree: Path) -> None:
    path = tree / "resnet_bench" / "backends" / "onnxruntime_backend.py"
    source = path.read_text()
    original = "    def run(self, prepared: Any) -> Any:"
    assert original in source
    source = source.replace(original, "    def _run_unslowed(self, prepared: Any) -> Any:")
    path.write_text(source.rstrip() + "\n" + INJECTED)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cells", default="18/onnxruntime/1,18/torch/1")
    parser.add_argument("--pairs", type=int, default=21)
    parser.add_argument("--artifacts", default="artifacts")
    args = parser.parse_args()
    wanted = args.cells.split(",")
    cells = [c for c in gate.DEFAULT_CELLS if f"{c['depth']}/{c['backend']}/{c['batch_size']}" in wanted]
    config = gate.GateConfig(cells=cells, pairs=args.pairs, artifacts=Path(args.artifacts).resolve())
    root = Path(tempfile.mkdtemp(prefix="gate-proof-"))
    a, b = checkout("HEAD", root / "a"), checkout("HEAD", root / "b")
    slow_down(b)
    outcomes = {"A/A": [], "A/B": []}
    try:
        for trial in range(args.trials):
            for label, head in (("A/A", a), ("A/B", b)):
                start = time.perf_counter()
                rows = gate.run_gate(a, head, config)
                seconds = time.perf_counter() - start
                outcomes[label].append((rows, seconds))
                verdicts = ", ".join(f"{r['backend']} b{r['batch_size']}: {r['verdict']} {r.get('ratio', 0):.3f}"
                                     for r in rows)
                print(f"trial {trial + 1} {label}: {verdicts} ({seconds:.0f} s)", flush=True)
    finally:
        for tree in (a, b):
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    aa_cells = [r for rows, _ in outcomes["A/A"] for r in rows]
    false_fail = sum(r["verdict"] == "regressed" for r in aa_cells)
    aa_runs_red = sum(any(r["verdict"] == "regressed" for r in rows) for rows, _ in outcomes["A/A"])
    caught = sum(any(r["backend"] == "onnxruntime" and r["verdict"] == "regressed" for r in rows)
                 for rows, _ in outcomes["A/B"])
    innocent = [r for rows, _ in outcomes["A/B"] for r in rows if r["backend"] != "onnxruntime"]
    wall = [s for runs in outcomes.values() for _, s in runs]
    print(f"\n| check | result |\n|---|---|\n"
          f"| A/A gate runs that failed | {aa_runs_red} of {args.trials} ({false_fail} of {len(aa_cells)} cells) |\n"
          f"| A/B runs that caught the 10% slowdown | {caught} of {args.trials} |\n"
          f"| A/B untouched cells marked regressed | {sum(r['verdict'] == 'regressed' for r in innocent)} "
          f"of {len(innocent)} |\n"
          f"| gate wall time per run | {min(wall):.0f}-{max(wall):.0f} s for {len(cells)} cells |")


if __name__ == "__main__":
    main()
