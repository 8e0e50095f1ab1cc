"""Does one gate process's block slow the other's next block? The measurement behind ``GatePlan.settle_s``.

The gate alternates blocks between a base and a head process (A B, B A, A B). A runtime's worker
threads may spin on after a call returns; on 2 cores the other process's next block then shares
the CPUs with them. Identical sides pay alike, but a head whose calls end with something other
than compute (gate_proof's injected busy-wait) does not leave spinning threads behind, and the
gate reads more than the injected slowdown.

Here B is A with ``--slowdown`` % injected as gate_proof does, plus a line on stderr per call
with the call's own time (without the injected wait). Per ``--pauses`` value p, ``--rounds``
rounds of one fresh process per side, one cell, 3 blocks as the gate runs them, a pause of p
before every block. Reported: B's own call time when its block follows A's and when it follows
its own, A's likewise, and B / A as the gate would read it.

    python benchmarks/gate_settle.py [--cell 50/onnxruntime/8] [--pauses 0,0.03,0.05] [--rounds 3]
        [--slowdown 20] [--out results/gate_settle.md]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from gate_proof import copy_tree, inject  # noqa: E402

from resnet_bench.gate import processes  # noqa: E402
from resnet_bench.gate import run as gate  # noqa: E402

RECORDED = """
import sys, time
start = time.perf_counter()
output = self._uninjected_run(*args)
self.sync()
own = time.perf_counter() - start
end = start + own * {factor!r}
while time.perf_counter() < end:  # the injected slowdown: a busy-wait
    continue
print("OWN_MS %.4f" % (own * 1e3), file=sys.stderr, flush=True)
return output
"""


def own_times(worker: processes.Worker) -> list[float]:
    worker.stderr.flush()
    worker.stderr.seek(0)
    return [float(line.split()[1]) for line in worker.stderr.read().splitlines() if line.startswith("OWN_MS")]


def one_pause(a: Path, b: Path, cell: dict, pause: float, rounds: int, artifacts: Path) -> dict:
    """Block medians by side and by which side ran the block before; B's own call times likewise."""
    after: dict[tuple[str, str], list[float]] = {}  # (side, previous side) -> block medians
    own_after: dict[str, list[float]] = {"a": [], "b": []}  # B's own call time, by previous side
    medians: dict[str, list[float]] = {"a": [], "b": []}
    k = None
    for r in range(rounds):
        workers = {"a": processes.Worker(a, "a", artifacts), "b": processes.Worker(b, "b", artifacts)}
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        try:
            for side in order:
                reply = workers[side].ask(900, op="open", cell=cell, warmup_iters=3, warmup_s=1.0)
                if not reply["ok"]:
                    raise SystemExit(f"{side} could not open the cell: {reply['error']}")
                if k is None and side == "a":
                    k = max(1, math.ceil(gate.GatePlan.block_s * 1e3 / reply["probe_ms"]))
            previous, per_side = "open", {"a": [], "b": []}
            for i in range(3):
                for side in order if i % 2 == 0 else order[::-1]:
                    time.sleep(pause)
                    seen = len(own_times(workers["b"]))
                    median = workers[side].ask(120, op="block", k=k)["median_ms"]
                    per_side[side].append(median)
                    after.setdefault((side, previous), []).append(median)
                    if side == "b":
                        own_after.setdefault(previous, []).append(float(np.median(own_times(workers["b"])[seen:])))
                    previous = side
            for side in per_side:
                medians[side].append(float(np.median(per_side[side])))
        finally:
            for worker in workers.values():
                worker.close()
    return {"after": after, "own_after": own_after, "medians": medians, "k": k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="50/onnxruntime/8", help="depth/backend/batch")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--pauses", default="0,0.03,0.05", help="seconds before each block, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slowdown", type=float, default=20.0, help="percent injected into B")
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--out", default="results/gate_settle.md")
    args = parser.parse_args()
    depth, backend, batch = args.cell.split("/")
    cell = dict(depth=int(depth), backend=backend, precision="fp32", device="cpu", batch_size=int(batch),
                input_size=args.input_size)
    root = Path(tempfile.mkdtemp(prefix="gate-settle-"))
    load_before, started = os.getloadavg()[0], time.perf_counter()
    lines = ["| pause s | k | B own call after A / after B | A block after B / after A | gate's B / A | "
             "nominal | rounds |", "|---|---|---|---|---|---|---|"]
    try:
        a, b = copy_tree("HEAD", root / "a"), copy_tree("HEAD", root / "b")
        inject(b, backend, "run", RECORDED.format(factor=1 + args.slowdown / 100), "recorded slowdown")
        for pause in (float(p) for p in args.pauses.split(",")):
            got = one_pause(a, b, cell, pause, args.rounds, Path(args.artifacts).resolve())
            own, after = got["own_after"], got["after"]
            own_ratio = np.median(own["a"]) / np.median(own["b"]) if own["a"] and own["b"] else math.nan
            a_ratio = (np.median(after[("a", "b")]) / np.median(after[("a", "a")])
                       if after.get(("a", "b")) and after.get(("a", "a")) else math.nan)
            gate_ratio = float(np.exp(np.mean(np.log(np.array(got["medians"]["b"]) / got["medians"]["a"]))))
            lines.append(f"| {pause:g} | {got['k']} | {own_ratio:.3f} | {a_ratio:.3f} | {gate_ratio:.3f} | "
                         f"{1 + args.slowdown / 100:.2f} | {args.rounds} |")
            print(lines[-1], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = (f"# Does one gate process's block slow the other's next block?\n\n`python benchmarks/gate_settle.py "
            f"{' '.join(sys.argv[1:])}`: ResNet-{depth} {backend} b{batch} {args.input_size} px, B = A + "
            f"{args.slowdown:g}% (busy-wait), {time.strftime('%Y-%m-%d')}, "
            f"{(time.perf_counter() - started) / 60:.1f} min; load average {load_before:.1f} at the start "
            f"({os.cpu_count()} CPUs).\n\n"
            "\"B own call\": B's call time without its injected wait (median per block), when the block came "
            "right after A's and right after B's own; 1.00 means the other process's block leaves nothing "
            "behind. \"gate's B / A\": the geometric mean over rounds of the per-process medians, as the gate "
            "reads it.\n\n" + "\n".join(lines) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
