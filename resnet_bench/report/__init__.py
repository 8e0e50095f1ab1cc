"""Reports: result runs (one or several machines) into report.md, a self-contained report.html
and PNG plots. ``load`` reads the runs; ``selection`` picks the deployment target under the
user's constraints; ``sections`` builds each part (Table 1, speed against FLOPs, batch scaling,
parity, under load, selection, validity) with ``plots``; ``render`` writes markdown and HTML.
Runs from several machines merge: every row keeps its run's fingerprint as ``machine``."""

from __future__ import annotations

from pathlib import Path

from resnet_bench.report.load import load_runs
from resnet_bench.report.render import to_html, to_markdown
from resnet_bench.report.sections import (
    batch_section,
    flops_section,
    parity_section,
    selection_section,
    table1_section,
    under_load_section,
    validity_section,
)
from resnet_bench.report.selection import Constraints


def build_report(run_dirs: list[str | Path], out: str | Path, constraints: Constraints | None = None) -> Path:
    constraints = constraints or Constraints()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame, fingerprints = load_runs(run_dirs)
    sections = [table1_section(), flops_section(frame, out), batch_section(frame, out), parity_section(frame),
                under_load_section(frame, out), selection_section(frame, constraints, out),
                validity_section(frame, fingerprints)]
    title = f"resnet-bench report: {len(run_dirs)} run(s), {len(fingerprints)} machine(s)"
    (out / "report.md").write_text(to_markdown(sections, title))
    (out / "report.html").write_text(to_html(sections, title, out))
    return out / "report.md"
