"""Which version of a package is installed, read from its metadata (nothing is imported)."""

from __future__ import annotations

from importlib import metadata


def package_version(*names: str) -> str | None:
    """The installed version of the first of ``names`` that is installed (distribution names,
    e.g. ``package_version("onnxruntime", "onnxruntime-gpu")``), or None."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
