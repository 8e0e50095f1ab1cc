"""Content-addressed artifact store.

An artifact is a folder ``<root>/<target>/<name>-<key16>/`` holding its files and a
``manifest.json``. The key is a hash of everything that changes the files. A folder is
built under a temporary name and renamed into place only once complete and verified, so a
killed export never leaves something that is reused; a manifest whose hashes do not match
the files makes the artifact be rebuilt.

Several processes may export or read the same spec at once: a build holds an exclusive lock
(flock) on the artifact's key, so the second waits and then finds the finished artifact; a
valid artifact is never removed, and a corrupt one is renamed aside (atomically) before the
new one takes its name, so a reader sees the old folder, the new one, or none, never a half.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from resnet_bench.util.files import file_sha256, write_atomic

MANIFEST = "manifest.json"


def artifact_key(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Artifact:
    target: str
    precision: str
    path: Path  # the main file (model.onnx, model.xml, model.engine)
    sha256: str
    bytes: int  # all the artifact's files (an IR is .xml + .bin)
    export_s: float
    cached: bool
    key: str
    manifest: dict

    def row(self) -> dict:
        return {"target": self.target, "precision": self.precision, "path": str(self.path),
                "sha256": self.sha256, "bytes": self.bytes, "export_s": round(self.export_s, 3),
                "cached": self.cached}


# A builder writes its files into the folder it is given and returns (main file name, extra
# manifest fields). Everything it needs comes from the closure.
Builder = Callable[[Path], tuple[str, dict]]


class ArtifactStore:
    def __init__(self, root: str | os.PathLike = "artifacts") -> None:
        self.root = Path(root)

    def folder(self, target: str, name: str, key: str) -> Path:
        return self.root / target / f"{name}-{key[:16]}"

    def lookup(self, target: str, name: str, key: str) -> Artifact | None:
        """The stored artifact, if complete and its files match the manifest's hashes."""
        folder = self.folder(target, name, key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            if manifest["key"] != key:
                return None
            for file, digest in manifest["files"].items():
                if file_sha256(folder / file) != digest:
                    return None
        except (OSError, ValueError, KeyError):
            return None
        main = folder / manifest["main"]
        return Artifact(target, manifest["precision"], main, manifest["files"][manifest["main"]],
                        sum(manifest["bytes"].values()), manifest["export_s"], True, key, manifest)

    @contextmanager
    def _locked(self, final: Path) -> Iterator[None]:
        """Exclusive lock per artifact key, held by one process at a time (released at exit,
        also when the process is killed)."""
        import fcntl

        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{final.parent.name}-{final.name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get_or_build(self, target: str, name: str, precision: str, key_fields: dict,
                     build: Builder) -> Artifact:
        key = artifact_key(key_fields)
        found = self.lookup(target, name, key)
        if found is not None:
            return found
        final = self.folder(target, name, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(final):
            found = self.lookup(target, name, key)  # built by another process while we waited
            if found is not None:
                return found
            return self._build(target, precision, key, key_fields, build, final)

    def _build(self, target: str, precision: str, key: str, key_fields: dict, build: Builder,
               final: Path) -> Artifact:
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
        try:
            start = time.perf_counter()
            main, extra = build(scratch)
            export_s = time.perf_counter() - start
            files = {p.name: file_sha256(p) for p in sorted(scratch.iterdir()) if p.is_file()}
            manifest = {"key": key, "target": target, "precision": precision, "main": main,
                        "files": files, "bytes": {f: (scratch / f).stat().st_size for f in files},
                        "export_s": export_s, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "key_fields": key_fields, **extra}
            write_atomic(scratch / MANIFEST, json.dumps(manifest, indent=2, default=str))
            aside = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
            if final.exists():  # stale or corrupt (lookup said so, under the lock): rename it aside
                os.rename(final, aside)
            os.replace(scratch, final)
            shutil.rmtree(aside, ignore_errors=True)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
        main_path = final / main
        return Artifact(target, precision, main_path, files[main], sum(manifest["bytes"].values()),
                        export_s, False, key, manifest)
