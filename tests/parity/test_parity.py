import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.model.images import load_images, parity_images
from resnet_bench.parity.verdict import compare, judge, run_parity
from tests.conftest import SMALL


def test_compare_identical_and_swapped():
    ref = np.random.default_rng(0).normal(size=(4, 10))
    same = compare(ref, ref)
    assert same["rel_l2_err"] == 0 and same["top1_agreement"] == 1 and same["top5_agreement"] == 1
    assert same["cosine"] == pytest.approx(1.0)
    swapped = ref.copy()
    top = ref[0].argmax()
    swapped[0, top] = ref[0].min() - 1
    result = compare(swapped, ref)
    assert result["top1_agreement"] == 0.75 and result["max_abs_err"] > 0
    assert "top-1 agreement 75.0% < 99%" in judge(result, "fp32")
    assert judge(same, "fp32") == ""


def test_tolerance_depends_on_precision():
    metrics = {"rel_l2_err": 3e-3, "top1_agreement": 1.0}
    assert judge(metrics, "fp16") == ""
    assert judge(metrics, "fp32").startswith("rel L2 3.00e-03 > 1e-04")


def test_real_images_are_resized_cropped_and_normalised(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for i, size in enumerate([(300, 200), (640, 480), (224, 224)]):
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_images(tmp_path)
    assert images.shape == (3, 3, 224, 224) and images.dtype == np.float32
    assert -2.2 < images.min() and images.max() < 2.7  # ImageNet-normalised [0, 1]
    with pytest.raises(ValueError, match="no images"):
        load_images(_empty(tmp_path))
    with pytest.raises(ValueError, match="image folder not found"):
        parity_images(224, folder=tmp_path / "missing")


def _empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_cpu_matrix_passes_and_reports_threads(store_dir, small_artifacts):
    exporter = Exporter(SMALL, ExportOptions(out=store_dir))
    verdicts = run_parity(exporter, ("torch", "onnxruntime", "openvino"), "cpu", ("fp32", "fp16"),
                          parity_images(64, count=32))
    by_cell = {(v.backend, v.precision): v for v in verdicts}
    for cell in [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "fp16"),
                 ("onnxruntime", "fp16")]:
        assert by_cell[cell].status == "pass", by_cell[cell]
        assert by_cell[cell].threads == len(os.sched_getaffinity(0))
    assert by_cell[("torch", "fp16")].status == "unavailable"
    assert by_cell[("onnxruntime", "fp32")].rel_l2_err < 1e-5


def _tampered(path, out):
    model = onnx.load(str(path))
    weight = next(i for i in model.graph.initializer if len(i.dims) == 4)  # the first conv's
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] += 1.0  # one weight, about 20 standard deviations off
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    onnx.save(model, str(out))
    return out


def test_a_tampered_weight_fails_parity_naming_the_backend(tmp_path, small_artifacts):
    tampered = _tampered(small_artifacts[("onnx", "fp32")].path, tmp_path / "tampered.onnx")
    exporter = Exporter(SMALL, ExportOptions(out=tmp_path, onnx=tampered))
    (verdict,) = run_parity(exporter, ("onnxruntime",), "cpu", ("fp32",), parity_images(64, count=32))
    assert verdict.backend == "onnxruntime" and verdict.status == "fail"
    assert verdict.reason.startswith("rel L2")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "resnet_bench", "parity", *args],
                          capture_output=True, text=True)


def test_cli_json_and_exit_codes(store_dir, small_artifacts):
    ok = _cli("--depth", "18", "--input-size", "64", "--out", str(store_dir), "--count", "8",
              "--backends", "torch,onnxruntime,openvino,tensorrt", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ok.stdout)
    keys = {"backend", "precision", "device", "status", "max_abs_err", "rel_l2_err", "top1_agreement",
            "reason"}
    assert all(keys <= set(row) for row in rows)
    trt = next(r for r in rows if r["backend"] == "tensorrt")
    assert trt["status"] == "unavailable" and trt["reason"]
    bad = _cli("--backends", "torch,tvm")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown backend 'tvm'" in bad.stderr
    bad = _cli("--device", "tpu")
    assert bad.returncode == 2 and "device must be one of" in bad.stderr


def test_cli_exit_1_on_failure(tmp_path, store_dir, small_artifacts):
    tampered = _tampered(small_artifacts[("onnx", "fp32")].path, tmp_path / "t.onnx")
    # Put the tampered file where the store expects the artifact, with a consistent manifest,
    # as a corrupted-but-recorded export would be: parity (not the cache) must catch it.
    import shutil

    from exporters.store import MANIFEST
    from resnet_bench.util.files import file_sha256
    store = tmp_path / "store"
    shutil.copytree(store_dir, store)
    folder = store / small_artifacts[("onnx", "fp32")].path.relative_to(store_dir).parent
    shutil.copy(tampered, folder / "model.onnx")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["model.onnx"] = file_sha256(folder / "model.onnx")
    (folder / MANIFEST).write_text(json.dumps(manifest))
    result = _cli("--depth", "18", "--input-size", "64", "--out", str(store), "--count", "8",
                  "--backends", "torch,onnxruntime", "--format", "json")
    assert result.returncode == 1
    rows = {r["backend"]: r for r in json.loads(result.stdout)}
    assert rows["onnxruntime"]["status"] == "fail" and rows["torch"]["status"] == "pass"
