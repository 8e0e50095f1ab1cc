"""Files that survive a kill (write to a temporary name, fsync, rename), file hashes, and the
source checkout this code runs from."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the resnet_bench package folder


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def repo_root() -> Path | None:
    """The source checkout holding this package (the folder with its pyproject.toml and
    results/), or None for an installed copy with no checkout around it."""
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "exporters").is_dir():
        return root
    return None


def require_repo_root(what: str) -> Path:
    root = repo_root()
    if root is None:
        raise ValueError(f"{what} needs the resnet-bench source checkout (this copy of the package is "
                         f"installed without one, at {PACKAGE})")
    return root
