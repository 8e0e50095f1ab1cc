import math
from pathlib import Path

import pandas as pd
import pytest

from resnet_bench.cli import main
from resnet_bench.gate.compare import compare_runs
from resnet_bench.report import build_report
from resnet_bench.results import runs, schema

ROOT = Path(__file__).resolve().parents[2]
OLD_RUN = ROOT / "tests" / "data" / "schema1-run"  # the quick run committed before schema 2


def test_committed_json_schema_is_the_generated_one():
    assert (ROOT / "results" / "schema.json").read_text() == schema.schema_text(), \
        "results/schema.json is stale: run python -m resnet_bench.results"


def test_the_docs_list_every_column_with_its_unit():
    page = (ROOT / "docs" / "results-schema.md").read_text()
    assert "## Results columns" in page
    assert schema.markdown_table() in page, \
        "docs/results-schema.md's column table is stale: run python -m resnet_bench.results"


def test_write_schema_rewrites_only_the_table(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# intro\n\n| column | type | unit | meaning |\n|---|---|---|---|\n| `old` | string |  | x |\n"
                    "\nafter the table\n")
    schema.write_schema(tmp_path / "schema.json", page)
    text = page.read_text()
    assert text.startswith("# intro\n\n") and text.endswith("\nafter the table\n") and "`old`" not in text
    assert schema.markdown_table() in text and (tmp_path / "schema.json").read_text() == schema.schema_text()


def test_csv_header_comes_from_the_schema(tmp_path):
    assert runs.COLUMNS == schema.column_names() and runs.COLUMNS[-1] == "schema_version"
    writer = runs.RunWriter(tmp_path)
    writer.add({"run_id": "r", "cell_id": "c", "depth": 18, "status": "error", "error": "boom"})
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns) == runs.COLUMNS and frame.schema_version.tolist() == [schema.SCHEMA_VERSION]


def _conforms(row: dict, json_schema: dict) -> list[str]:
    """The parts of JSON Schema this schema uses: required keys, and each value's type or null."""
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
    problems = [f"{key} missing" for key in json_schema["required"] if key not in row]
    for key, value in row.items():
        allowed = json_schema["properties"][key]["type"]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            ok = "null" in allowed
        else:
            ok = any(isinstance(value, types[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                     for t in allowed if t != "null")
        if not ok:
            problems.append(f"{key}={value!r} is not {allowed}")
    return problems


def test_rows_of_a_real_timing_fit_the_json_schema():
    import numpy as np

    from resnet_bench.measure.timing import Timing

    stats = Timing(np.random.default_rng(0).lognormal(3, 0.1, 50), 0, 36).stats()
    row = {"run_id": "r", "cell_id": "c", "depth": 18, "variant": "v1.5", "backend": "torch", "precision": "fp32",
           "device": "cpu", "mode": "latency", "batch_size": 1, "input_size": 224, "status": "ok",
           "schema_version": schema.SCHEMA_VERSION, "valid": True, **stats}
    assert _conforms(row, schema.json_schema()) == []
    assert set(stats) <= set(schema.column_names())  # every statistic has a column


def _newer_run(tmp_path: Path, name: str) -> Path:
    run = tmp_path / name
    (run / "samples").mkdir(parents=True)
    frame = runs.load(OLD_RUN).assign(schema_version=schema.SCHEMA_VERSION + 1)
    frame.to_csv(run / "results.csv", index=False)
    (run / "fingerprint.json").write_text((OLD_RUN / "fingerprint.json").read_text())
    return run


def test_a_newer_schema_is_refused_in_one_line(tmp_path, capsys):
    newer = _newer_run(tmp_path, "newer")
    message = f"results schema version {schema.SCHEMA_VERSION + 1}; this resnet-bench reads up to"
    with pytest.raises(ValueError, match=message):
        runs.load(newer)
    with pytest.raises(ValueError, match=message):
        build_report([newer], tmp_path / "report")
    with pytest.raises(ValueError, match=message):
        compare_runs(OLD_RUN, newer)
    for args in (["report", str(newer), "--out", str(tmp_path / "r2")], ["compare", str(OLD_RUN), str(newer)]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_an_old_run_without_the_column_loads_as_version_1_and_reports(tmp_path):
    frame = runs.load(OLD_RUN)
    assert set(frame.schema_version) == {1} and len(frame) == 24
    text = build_report([OLD_RUN], tmp_path).read_text()
    assert "## 8. Validity" in text and "CV above 5% (the rule of results schema 1)" in text
