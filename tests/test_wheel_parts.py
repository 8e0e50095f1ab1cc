"""Carrying a wheel in parts: split and joined back bit for bit; a missing or corrupt part named."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import wheel_parts

REPO = Path(__file__).resolve().parents[1]


def _wheel(tmp_path: Path, size: int) -> Path:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return wheel


def test_split_and_join_give_back_the_same_bytes(tmp_path):
    wheel = _wheel(tmp_path, 10_000)
    manifest = wheel_parts.split(wheel, tmp_path / "carry", 3_000)
    assert [p["bytes"] for p in manifest["parts"]] == [3000, 3000, 3000, 1000]
    assert sorted(p.name for p in (tmp_path / "carry").iterdir()) == ["part-000", "part-001", "part-002", "part-003"]
    joined = wheel_parts.join(tmp_path / "carry", tmp_path / "out")
    assert joined.read_bytes() == wheel.read_bytes()
    assert hashlib.sha256(joined.read_bytes()).hexdigest() == manifest["sha256"]


def test_a_missing_and_a_corrupt_part_are_named(tmp_path):
    wheel = _wheel(tmp_path, 10_000)
    wheel_parts.split(wheel, tmp_path / "carry", 3_000)
    (tmp_path / "carry" / "part-001" / f"{wheel.name}.part-001").unlink()
    corrupt = tmp_path / "carry" / "part-002" / f"{wheel.name}.part-002"
    corrupt.write_bytes(b"y" + corrupt.read_bytes()[1:])
    _, problems, found = wheel_parts.check(tmp_path / "carry")
    assert problems == [f"{wheel.name}.part-001 missing", f"{wheel.name}.part-002 corrupt (SHA-256 differs)"]
    assert len(found) == 2
    with pytest.raises(ValueError, match="2 of 4 parts unusable"):
        wheel_parts.join(tmp_path / "carry", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parts_leave_room_for_the_tree_under_the_limit():
    assert wheel_parts.part_size(20.0) == int((64 - 4 - 20) * 2**20)
    with pytest.raises(ValueError, match="no room for a part"):
        wheel_parts.part_size(61.0)
    # the 255 MB onnxruntime-gpu wheel beside this tree: how many transfers it takes
    tree = wheel_parts.tree_mb(REPO)
    assert tree < 30 and -(-255e6 // wheel_parts.part_size(tree)) <= 10


def test_the_join_command_says_what_is_missing_in_one_line(tmp_path):
    wheel = _wheel(tmp_path, 5_000)
    wheel_parts.split(wheel, tmp_path / "carry", 2_000)
    (tmp_path / "carry" / "part-000" / f"{wheel.name}.part-000").unlink()
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "wheel_parts.py"), "join", "--from",
                             str(tmp_path / "carry"), "--target", str(tmp_path / "t")], capture_output=True, text=True)
    assert result.returncode == wheel_parts.MISSING_EXIT
    assert result.stderr.count("\n") == 1 and "part-000 missing" in result.stderr
