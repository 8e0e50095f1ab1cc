"""What a gate row says it measured: the commit of each side and whether its code was dirty."""

import subprocess

import pytest

from resnet_bench.gate.git import tree_provenance


def _git(tree, *args):
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    tree = tmp_path / "checkout"
    (tree / "resnet_bench").mkdir(parents=True)
    (tree / "resnet_bench" / "core.py").write_text("X = 1\n")
    _git(tree, "init", "-q")
    _git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return tree


def test_a_clean_checkout_is_its_commit_and_not_dirty(checkout):
    assert tree_provenance(checkout) == {"commit": _git(checkout, "rev-parse", "HEAD"), "dirty": False}


def test_an_edited_or_added_code_file_is_dirty(checkout):
    (checkout / "resnet_bench" / "core.py").write_text("X = 2\n")
    assert tree_provenance(checkout)["dirty"] is True
    _git(checkout, "checkout", "--", ".")
    (checkout / "resnet_bench" / "new.py").write_text("")  # untracked code counts too
    assert tree_provenance(checkout)["dirty"] is True


def test_a_change_outside_the_code_is_not_dirty(checkout):
    (checkout / "notes.md").write_text("results and notes do not change what is measured\n")
    assert tree_provenance(checkout)["dirty"] is False


def test_a_folder_inside_a_checkout_is_not_that_checkout(checkout):
    nested = checkout / "copy"
    (nested / "resnet_bench").mkdir(parents=True)
    assert tree_provenance(nested) == {"commit": None, "dirty": None}
