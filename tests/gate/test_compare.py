"""compare refuses runs whose configuration differs in anything that moves a figure."""

import json
from dataclasses import replace

import numpy as np
import pytest

from resnet_bench.gate.compare import compare_runs
from resnet_bench.measure.timing import StopRule
from resnet_bench.sweep.config import SweepConfig
from tests.gate.test_statistics import _hand_made_run

BASE = SweepConfig(threads=2)


def _run(path, config: SweepConfig | dict | None, cpus: int = 2):
    """A hand-made run (as in test_compare) with the config.json harness.start writes."""
    _hand_made_run(path, "abc", [("torch", np.full(20, 10.0), "pass")])
    (path / "fingerprint.json").write_text(json.dumps({"fingerprint_id": "abc", "cpus_available": cpus}))
    if config is not None:
        data = config.to_json() if isinstance(config, SweepConfig) else config
        (path / "config.json").write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, named", [
    (dict(threads=1), "threads 2 vs 1"),
    (dict(weights="other.pth"), "weights None vs '"),
    (dict(variant="v1"), "variant 'v1.5' vs 'v1'"),
    (dict(input_size=128), "input_size 224 vs 128"),
    (dict(rule=replace(BASE.rule, min_s=5.0)), "rule.min_s"),
])
def test_a_config_difference_that_moves_the_figure_is_refused(tmp_path, change, named):
    if "weights" in change:  # a config names an existing file
        import torch
        torch.save({"fc.weight": torch.zeros(1000, 512)}, tmp_path / "other.pth")  # what the config reads
        change = dict(weights=str(tmp_path / "other.pth"))
    base = _run(tmp_path / "base", BASE)
    head = _run(tmp_path / "head", replace(BASE, **change))
    with pytest.raises(ValueError, match="different configurations") as refused:
        compare_runs(base, head)
    assert named in str(refused.value) and "\n" not in str(refused.value)


def test_a_new_config_field_that_differs_is_refused(tmp_path):
    # e.g. streams or a stop-rule field added later: any field both runs record counts.
    base = _run(tmp_path / "base", {**BASE.to_json(), "streams": 2})
    head = _run(tmp_path / "head", {**BASE.to_json(), "streams": 4})
    with pytest.raises(ValueError, match="streams 2 vs 4"):
        compare_runs(base, head)


def test_other_cells_or_a_missing_field_still_compare(tmp_path):
    base = _run(tmp_path / "base", BASE)
    head = _run(tmp_path / "head", replace(BASE, backends=("torch",), batches=(1, 8, 32), artifacts="elsewhere"))
    assert len(compare_runs(base, head)) == 1
    old = BASE.to_json()
    del old["threads"]  # a run from before a field existed: unknown, not different
    assert len(compare_runs(_run(tmp_path / "old", old), head)) == 1
    assert len(compare_runs(_run(tmp_path / "none", None), head)) == 1  # no config.json at all


def test_default_threads_are_the_cpus_the_run_had(tmp_path):
    head = _run(tmp_path / "head", BASE)  # threads=2
    assert len(compare_runs(_run(tmp_path / "default", replace(BASE, threads=None), cpus=2), head)) == 1
    with pytest.raises(ValueError, match="threads 1 vs 2"):
        compare_runs(_run(tmp_path / "one", replace(BASE, threads=None), cpus=1), head)


def test_cli_refuses_in_one_line(tmp_path, capsys):
    from resnet_bench.cli import main
    base = _run(tmp_path / "base", BASE)
    head = _run(tmp_path / "head", replace(BASE, rule=StopRule(min_iters=100)))
    assert main(["compare", str(base), str(head)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rule.min_iters" in err
