"""The GPU machine's image must run the project with nothing fetched (issue 12.8).

The image has Python, CUDA torch, onnx, onnxscript, onnxruntime (CPU build), pandas, scipy,
matplotlib, tabulate, pillow, rich, pytest, pytest-benchmark and nvidia-ml-py; no OpenVINO,
no TensorRT, no network. The project goes in with ``pip install --no-deps
--no-build-isolation -e .``. Here a virtual environment holds only those distributions and
their dependency closure, linked from this interpreter's site-packages (CPU torch stands in
for CUDA torch), and the real CLI runs in it.
"""

import ast
import json
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = ("torch", "onnx", "onnxscript", "onnxruntime", "pandas", "scipy", "matplotlib", "tabulate", "pillow",
         "rich", "pytest", "pytest-benchmark", "nvidia-ml-py",
         "setuptools")  # the build backend `--no-build-isolation` uses (pip's own, from outside)
OPTIONAL = {"openvino", "tensorrt", "onnxruntime", "pynvml", "nncf", "mlperf_loadgen"}


def _closure(roots: tuple[str, ...]) -> list[metadata.Distribution]:
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: then it cannot be linked either
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(seen.values())


def _image_venv(root: Path) -> Path:
    """A venv whose site-packages links exactly the image's distributions (and what they need)."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for dist in _closure(IMAGE):
        source = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            if (source / top).exists() and not (site / top).exists():
                (site / top).symlink_to(source / top)
    return python


def _project_copy(root: Path) -> Path:
    """What a checkout holds, without this worktree's build leftovers."""
    for part in ("resnet_bench", "exporters"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, root / part)
    return root


@pytest.mark.slow
def test_the_gpu_image_runs_the_cli_with_openvino_unavailable(tmp_path):
    pytest.importorskip("packaging")
    python = _image_venv(tmp_path / "venv")
    project = _project_copy(tmp_path / "project")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
               "--no-build-isolation", "--no-index", "-e", str(project)]
    subprocess.run(install, capture_output=True, text=True, check=True, cwd=tmp_path)
    missing = subprocess.run([python, "-c", "import openvino"], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode != 0 and "No module named 'openvino'" in missing.stderr  # the image has none

    # Every module imports there (an optional runtime imported at top level would not).
    walk = ("import importlib, pkgutil, resnet_bench, exporters\n"
            "for pkg in (resnet_bench, exporters):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        if not m.name.endswith('__main__'):\n"
            "            importlib.import_module(m.name)\n")
    imported = subprocess.run([python, "-c", walk], capture_output=True, text=True, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr[-2000:]

    bench = [str(python.parent / "resnet-bench"), "bench", "--device", "cpu",
             "--backends", "torch,onnxruntime,openvino", "--depths", "18", "--input-size", "64",
             "--batches", "1", "--modes", "latency", "--warmup-iters", "1",
             "--warmup-time", "0", "--min-iters", "3", "--min-time", "0", "--max-time", "1",
             "--artifacts", str(tmp_path / "artifacts"), "--out", str(tmp_path / "runs"), "--confirm-s", "0",
             "--no-roofs", "--format", "json"]
    result = subprocess.run(bench, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    import pandas as pd

    (csv,) = (tmp_path / "runs").glob("*/results.csv")
    rows = pd.read_csv(csv).set_index("backend")
    assert rows.loc["torch", "status"] == "ok" and rows.loc["onnxruntime", "status"] == "ok"
    assert rows.loc["openvino", "status"] == "unavailable"
    assert "openvino is not installed" in rows.loc["openvino", "error"]
    assert not rows.loc["onnxruntime", "export_cached"]  # exported there: the image's exporter stack works
    fingerprint = json.loads(next((tmp_path / "runs").glob("*/fingerprint.json")).read_text())
    assert fingerprint["openvino"] is None


def _top_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module is imported: its body, and ifs / trys at top level."""
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                     *[n for h in getattr(node, "handlers", []) for n in h.body]]
        elif isinstance(node, ast.ClassDef):  # class bodies run at import too
            todo += node.body
    return names


def test_no_module_imports_an_optional_runtime_at_top_level():
    offenders = {}
    for path in sorted([*REPO.glob("resnet_bench/**/*.py"), *REPO.glob("exporters/**/*.py")]):
        found = _top_level_imports(ast.parse(path.read_text())) & OPTIONAL
        if found:
            offenders[str(path.relative_to(REPO))] = sorted(found)
    assert offenders == {}
