"""Carry a large wheel to a machine that takes at most 64 MiB of files per transfer, in parts.

    python benchmarks/wheel_parts.py split WHEEL [--out .gpu-carry] [--tree-mb N]
    python benchmarks/wheel_parts.py join [--from .gpu-carry] [--install --target DIR]

``split`` cuts WHEEL into parts so that each part, plus the rest of the working tree, stays
under the transfer limit, and writes ``<out>/part-NNN/`` folders, each holding one part and the
manifest (the wheel's name and size, the SHA-256 of every part and of the whole). Each folder is
carried in its own transfer (an ignored folder, named in ``carry``), back to back while the
machine keeps the files of the last run. ``join`` finds the parts already there, checks each
against the manifest, says which are missing or corrupt, and only when all are there and the
joined file matches the whole's checksum writes the wheel to ``<from>/wheel/`` (and, with
``--install``, installs it with ``pip install --no-deps --target DIR``: the package lands in DIR,
the folder to put on PYTHONPATH). A missing part is a finding, not a crash: the
answer names it, exit code 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

LIMIT_MB = 64  # what one transfer takes, the tree included
MARGIN_MB = 4  # headroom under the limit (the tree changes between transfers)
MANIFEST = "manifest.json"
MISSING_EXIT = 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_mb(repo: Path) -> float:
    """Size of the files git would carry (tracked and untracked, not ignored), in MiB."""
    names = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    paths = [repo / name.decode() for name in names if name]
    return sum(path.stat().st_size for path in paths if path.is_file()) / 2**20


def part_size(tree: float, limit_mb: float = LIMIT_MB, margin_mb: float = MARGIN_MB) -> int:
    """Bytes per part: what the limit leaves beside the tree (and the margin)."""
    room = limit_mb - margin_mb - tree
    if room < 1:
        raise ValueError(f"the tree alone is {tree:.1f} MiB: no room for a part under {limit_mb} MiB")
    return int(room * 2**20)


def split(wheel: Path, out: Path, size: int) -> dict:
    """Write ``out/part-NNN/{<wheel>.part-NNN, manifest.json}``; return the manifest."""
    data = wheel.read_bytes()
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    manifest = {"wheel": wheel.name, "bytes": len(data), "sha256": sha256(data),
                "parts": [{"name": f"{wheel.name}.part-{i:03d}", "bytes": len(c), "sha256": sha256(c)}
                          for i, c in enumerate(chunks)]}
    for i, chunk in enumerate(chunks):
        folder = out / f"part-{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / manifest["parts"][i]["name"]).write_bytes(chunk)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def check(root: Path) -> tuple[dict | None, list[str], list[Path]]:
    """(manifest, problems, the parts in order) of the parts found under ``root``: one problem per
    part that is missing or whose checksum differs."""
    manifests = sorted(root.glob(f"part-*/{MANIFEST}"))
    if not manifests:
        return None, [f"no parts under {root}"], []
    manifest = json.loads(manifests[0].read_text())
    problems, found = [], []
    for part in manifest["parts"]:
        paths = list(root.glob(f"part-*/{part['name']}"))
        if not paths:
            problems.append(f"{part['name']} missing")
            continue
        if sha256(paths[0].read_bytes()) != part["sha256"]:
            problems.append(f"{part['name']} corrupt (SHA-256 differs)")
            continue
        found.append(paths[0])
    return manifest, problems, found


def join(root: Path, target: Path) -> Path:
    """The wheel, joined from every part and checked whole; ValueError naming what is wrong."""
    manifest, problems, parts = check(root)
    if problems:
        raise ValueError(f"{len(problems)} of {len(manifest['parts']) if manifest else '?'} parts unusable: "
                         + "; ".join(problems))
    data = b"".join(path.read_bytes() for path in parts)
    if sha256(data) != manifest["sha256"]:
        raise ValueError(f"the joined {manifest['wheel']} does not match its SHA-256")
    target.mkdir(parents=True, exist_ok=True)
    wheel = target / manifest["wheel"]
    wheel.write_bytes(data)
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split")
    p.add_argument("wheel", type=Path)
    p.add_argument("--out", type=Path, default=Path(".gpu-carry"))
    p.add_argument("--tree-mb", type=float, default=None, help="the tree's size (default: measured with git)")
    p = sub.add_parser("join")
    p.add_argument("--from", dest="root", type=Path, default=Path(".gpu-carry"))
    p.add_argument("--install", action="store_true", help="install the joined wheel into --target")
    p.add_argument("--target", type=Path, default=None, help="with --install: the folder the package goes to")
    args = parser.parse_args()
    if args.command == "split":
        tree = args.tree_mb if args.tree_mb is not None else tree_mb(Path.cwd())
        manifest = split(args.wheel, args.out, part_size(tree))
        print(f"{len(manifest['parts'])} parts of at most {part_size(tree) / 2**20:.1f} MiB "
              f"(tree {tree:.1f} MiB) under {args.out}")
        return 0
    if args.install and args.target is None:
        parser.error("--install needs --target (the folder the package goes to)")
    try:
        wheel = join(args.root, args.root / "wheel")
    except ValueError as exc:
        print(f"wheel_parts: {exc}", file=sys.stderr)
        return MISSING_EXIT
    print(wheel)
    if args.install:  # --upgrade: a rerun replaces what an earlier one installed
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--upgrade", "--target",
                        str(args.target), str(wheel)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
