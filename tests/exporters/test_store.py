import json
import multiprocessing
from pathlib import Path

import pytest

from exporters.pipeline import Exporter, ExportOptions, export
from exporters.store import MANIFEST, ArtifactStore, artifact_key
from resnet_bench.model.spec import ModelSpec
from tests.conftest import SMALL


def test_second_export_is_a_cache_hit_without_building_the_model(store_dir, small_artifacts):
    options = ExportOptions(targets=("onnx", "openvino"), precisions=("fp32", "fp16"), out=store_dir)
    exporter = Exporter(SMALL, options)
    again = [exporter.onnx("fp32"), exporter.openvino("fp16")]
    assert all(a.cached for a in again)
    assert exporter._model is None  # nothing was rebuilt or re-verified
    assert again[0].path == small_artifacts[("onnx", "fp32")].path
    assert again[0].sha256 == small_artifacts[("onnx", "fp32")].sha256


@pytest.mark.parametrize("change", [dict(variant="v1"), dict(seed=1), dict(input_size=96)])
def test_changed_spec_changes_the_key(change):
    base = ModelSpec(18, input_size=64)
    changed = ModelSpec(**{**vars(base), **change})
    assert artifact_key(base.key_fields()) != artifact_key(changed.key_fields())


def test_weights_are_keyed_by_content_not_path(tmp_path):
    import torch

    from resnet_bench.model import ResNet
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(ResNet(18).state_dict(), a)
    b.write_bytes(a.read_bytes())
    assert ModelSpec(18, weights=str(a)).key_fields() == ModelSpec(18, weights=str(b)).key_fields()
    torch.save(ResNet(18, num_classes=10).state_dict(), b)
    assert ModelSpec(18, weights=str(a)).key_fields() != ModelSpec(18, weights=str(b)).key_fields()


def _build(calls):
    def build(folder):
        calls.append(folder)
        (folder / "model.bin").write_bytes(b"x" * 1000)
        return "model.bin", {"note": "test"}
    return build


def test_store_hit_corrupt_and_killed(tmp_path):
    store, calls = ArtifactStore(tmp_path), []
    first = store.get_or_build("onnx", "m", "fp32", {"a": 1}, _build(calls))
    assert not first.cached and first.bytes == 1000 and len(calls) == 1
    assert store.get_or_build("onnx", "m", "fp32", {"a": 1}, _build(calls)).cached
    assert len(calls) == 1
    # A changed key field is another artifact.
    assert not store.get_or_build("onnx", "m", "fp32", {"a": 2}, _build(calls)).cached
    # Corrupt the file: the manifest's hash no longer matches, so it is rebuilt.
    first.path.write_bytes(b"y" * 1000)
    rebuilt = store.get_or_build("onnx", "m", "fp32", {"a": 1}, _build(calls))
    assert not rebuilt.cached and rebuilt.path.read_bytes() == b"x" * 1000
    # A manifest that is not JSON: rebuilt too.
    (first.path.parent / MANIFEST).write_text("{not json")
    assert not store.get_or_build("onnx", "m", "fp32", {"a": 1}, _build(calls)).cached


def test_killed_build_leaves_nothing_reused(tmp_path):
    store = ArtifactStore(tmp_path)

    def dies(folder):
        (folder / "model.bin").write_bytes(b"half")
        raise KeyboardInterrupt  # as if killed mid-write

    with pytest.raises(KeyboardInterrupt):
        store.get_or_build("onnx", "m", "fp32", {"a": 1}, dies)
    assert list((tmp_path / "onnx").iterdir()) == []  # the scratch folder is gone
    key = artifact_key({"a": 1})
    # And a scratch folder left by a SIGKILL (no manifest) is never taken for the artifact:
    leftover = tmp_path / "onnx" / f".tmp-m-{key[:16]}-x"
    leftover.mkdir()
    (leftover / "model.bin").write_bytes(b"half")
    assert store.lookup("onnx", "m", key) is None


def test_corrupt_exported_onnx_is_rebuilt(tmp_path):
    options = ExportOptions(out=tmp_path)
    (first,) = export(SMALL, options)
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.path.write_bytes(bytes(data))
    (again,) = export(SMALL, options)
    assert not again.cached and again.sha256 == first.sha256
    manifest = json.loads((again.path.parent / MANIFEST).read_text())
    assert manifest["files"]["model.onnx"] == again.sha256


def _export_when_both_are_ready(store: str, barrier, results) -> None:
    barrier.wait()
    (artifact,) = export(SMALL, ExportOptions(out=store))
    results.put(artifact.row())


def test_two_processes_export_the_same_spec_at_once(tmp_path):
    """Two real processes, started together on an empty store: one builds, the other waits for it
    and finds the finished artifact; neither fails, and nothing half-built is left."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_export_when_both_are_ready, args=(str(tmp_path), barrier, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    rows = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    assert sorted(row["cached"] for row in rows) == [False, True]  # built once
    assert rows[0]["path"] == rows[1]["path"] and rows[0]["sha256"] == rows[1]["sha256"]
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [Path(rows[0]["path"]).parent.name]
    (again,) = export(SMALL, ExportOptions(out=tmp_path))
    assert again.cached and str(again.path) == rows[0]["path"]
