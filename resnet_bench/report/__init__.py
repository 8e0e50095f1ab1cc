"""Reports: result runs (one or several machines) into report.md, a self-contained report.html
and PNG plots. ``load`` reads the runs; ``selection`` picks the deployment target under the
user's constraints; ``sections`` builds each part (Table 1, speed against FLOPs, batch scaling,
parity, under load, selection, validity) with ``plots``; ``render`` writes markdown and HTML.
Runs from several machines merge: every row keeps its run's fingerprint as ``machine``."""

from __future__ import annotations

from pathlib import Path

from resnet_bench.report.load import confirmations, load_runs
from resnet_bench.report.render import to_html, to_markdown
from resnet_bench.report.sections import (
    answer_section,
    batch_section,
    cost_section,
    flops_section,
    low_precision_section,
    parity_section,
    selection_section,
    table1_section,
    under_load_section,
    validity_section,
)
from resnet_bench.select.rules import Constraints, select


def machine_sections(frame, fingerprints, constraints: Constraints, out: Path, selection=None) -> list:
    """The sections of one machine's report (numbered 1 to 8)."""
    out.mkdir(parents=True, exist_ok=True)
    selection = selection or select(frame, constraints)
    return [table1_section(), flops_section(frame, out), batch_section(frame, out), parity_section(frame),
            under_load_section(frame, out), selection_section(frame, constraints, out, selection),
            low_precision_section(frame, constraints), validity_section(frame, fingerprints)]


def _titled(kind: str, section):
    """A machine kind's section, titled so, its plots in that kind's subfolder."""
    section.title = f"{kind}: {section.title}"
    section.plots = [f"{kind}/{name}" for name in section.plots]
    return section


def build_report(run_dirs: list[str | Path], out: str | Path, constraints: Constraints | None = None) -> Path:
    constraints = constraints or Constraints()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame, fingerprints = load_runs(run_dirs)
    selection = select(frame, constraints, confirmations(run_dirs))
    kinds = sorted(frame.machine_kind.dropna().unique()) if "machine_kind" in frame else []
    if len(kinds) > 1:  # a fleet: the cross-machine answer and cost first, then each machine kind's report
        sections = [answer_section(selection, constraints), cost_section(frame, constraints, out, selection)]
        for kind in kinds:
            mine = frame[frame.machine_kind == kind]
            prints = {m: f for m, f in fingerprints.items() if f.get("machine_kind") == kind}
            sections += [_titled(kind, s) for s in machine_sections(mine, prints, constraints, out / kind)]
    else:
        sections = [answer_section(selection, constraints), *machine_sections(frame, fingerprints, constraints, out,
                                                                              selection)]
        if "cost_basis" in frame and frame.cost_basis.notna().any():  # a priced run (one fleet kind), not any run
            sections.insert(1, cost_section(frame, constraints, out, selection))
    title = f"resnet-bench report: {len(run_dirs)} run(s), {len(fingerprints)} machine(s)"
    (out / "report.md").write_text(to_markdown(sections, title))
    (out / "report.html").write_text(to_html(sections, title, out))
    return out / "report.md"
