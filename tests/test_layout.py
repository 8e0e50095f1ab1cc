"""The house by role: layers that import only downwards, no import cycle, a docstring per
sub-package, a front page whose layout is the tree's. Function-level imports count: grimp,
which import-linter builds its graph with, reads every import statement of a module."""

import ast
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("resnet_bench", "exporters")
grimp = pytest.importorskip("grimp")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter with the project's contracts, on the packages under ``root``."""
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True)


def copy_tree(folder: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    return folder


def test_the_layer_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, statement", [
    ("resnet_bench/model/architecture.py", "from resnet_bench.cli import main"),  # the forbidden contract
    ("exporters/store.py", "from resnet_bench.report import build_report"),  # up three layers
    ("resnet_bench/measure/timing.py", "from resnet_bench.results import rows"),  # up one layer
])
def test_a_function_level_import_that_breaks_a_layer_fails_the_lint(tmp_path, module, statement):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n\ndef _late():\n    {statement}\n")
    result = lint_imports(tree)
    assert result.returncode != 0 and "BROKEN" in result.stdout


def import_cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.find_modules_directly_imported_by(node):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def cycles_in(root: Path) -> list[list[str]]:
    """The import cycles of the packages under ``root``, read in a fresh process (whose path
    finds that tree's packages, not this one's)."""
    script = (f"import json, grimp\n{inspect.getsource(import_cycles)}\n"
              f"print(json.dumps(import_cycles(grimp.build_graph(*{PACKAGES!r}, cache_dir=None))))")
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_no_import_cycle_between_project_modules():
    assert cycles_in(REPO) == []


def test_the_cycle_check_finds_a_cycle_made_by_a_function_level_import(tmp_path):
    tree = copy_tree(tmp_path)
    path = tree / "resnet_bench" / "model" / "architecture.py"  # network imports architecture: a cycle
    path.write_text(path.read_text() + "\n\ndef _late():\n    from resnet_bench.model import network\n")
    assert any("resnet_bench.model.architecture" in cycle for cycle in cycles_in(tree))


def test_few_modules_at_the_top_and_every_sub_package_says_what_it_owns():
    top = sorted(p.name for p in (REPO / "resnet_bench").glob("*.py"))
    assert len(top) <= 8, top
    for init in [*(REPO / "resnet_bench").glob("*/__init__.py"), *(REPO / "resnet_bench").glob("*/*/__init__.py"),
                 REPO / "exporters" / "__init__.py"]:
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 15, f"{init.relative_to(REPO)} needs a docstring saying what it owns"


def test_the_front_page_layout_is_the_tree():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = {line.split()[0].rstrip("/") for line in block.splitlines() if line.startswith("resnet_bench/")}
    packages = {f"resnet_bench/{p.parent.name}" for p in (REPO / "resnet_bench").glob("*/__init__.py")}
    assert listed == packages
    assert "exporters/" in block and len(readme.splitlines()) < 250
