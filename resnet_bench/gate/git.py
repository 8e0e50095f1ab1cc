"""The gate's git side: the base ref checked out into a temporary worktree, and the default base."""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

# Where a tree keeps the gate's worker: this layout, and the flat one before the sub-packages.
WORKER_PATHS = ("resnet_bench/gate/worker.py", "resnet_bench/gate_worker.py")


@contextmanager
def worktree(ref: str, repo: Path):
    """A checkout of ``ref`` in a temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="resnet-bench-base-"))
    try:
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(folder), ref],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise ValueError(f"cannot check out {ref!r}: {exc.stderr.strip().splitlines()[-1]}") from None
    try:
        if not any((folder / path).is_file() for path in WORKER_PATHS):
            raise ValueError(f"{ref} predates the gate (it has no {' or '.join(WORKER_PATHS)})")
        yield folder
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(folder)], capture_output=True)


def tree_provenance(tree: Path) -> dict:
    """The commit a source tree is at and whether its code differs from it (``None`` for a tree
    that is not a git checkout, e.g. a copied folder): what a gate row says it measured."""
    from resnet_bench.machine.fingerprint import checkout_state

    return checkout_state(tree)


def merge_base(repo: Path, branch: str = "main") -> str:
    result = subprocess.run(["git", "-C", str(repo), "merge-base", "HEAD", branch], capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"no merge-base between HEAD and {branch}; pass --ref")
    return result.stdout.strip()
