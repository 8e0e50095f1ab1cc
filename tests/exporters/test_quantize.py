import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from exporters.errors import ExportError
from exporters.onnx_export import read_onnx, run_onnxruntime
from exporters.openvino_export import compile_cpu, run_openvino
from exporters.pipeline import Exporter, ExportOptions, export
from exporters.quantize import calibration_set, conv_precision_summary, executed_precisions, ort_scheme
from exporters.tensorrt_int8 import check_qdq
from resnet_bench.model import synthetic_images
from resnet_bench.numerics.tolerances import TOLERANCES, rel_l2
from tests.conftest import SMALL

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def int8(store_dir, small_artifacts):
    """ResNet-18 at 64x64: the QDQ ONNX, the NNCF IR and the TensorRT (symmetric) QDQ ONNX."""
    exporter = Exporter(SMALL, ExportOptions(out=store_dir))
    return {"onnx": exporter.onnx("int8"), "openvino": exporter.openvino("int8"),
            "tensorrt": exporter.onnx_int8("tensorrt")}


def _write_pngs(folder, count, seed, blank=False):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = np.full((80, 96, 3), 128, np.uint8) if blank else rng.integers(0, 255, (80, 96, 3), np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def test_qdq_onnx_has_int8_weights_runs_and_agrees_with_pytorch(int8, small_artifacts):
    artifact = int8["onnx"]
    model = read_onnx(artifact.path)
    conv_weights = [i for i in model.graph.initializer if len(i.dims) == 4]
    assert conv_weights and all(i.data_type == onnx.TensorProto.INT8 for i in conv_weights)
    assert artifact.bytes < 0.35 * small_artifacts[("onnx", "fp32")].bytes
    qdq = artifact.manifest["qdq"]
    assert qdq["quantized_compute_nodes"] == qdq["compute_nodes"] == 21  # 20 convs and the fc
    assert qdq["activation_types"] == ["uint8"]
    assert artifact.manifest["scheme"] == ort_scheme("u8s8").key_fields()
    accuracy = artifact.manifest["accuracy"]
    assert accuracy["images"] == 32 and 0 < accuracy["rel_l2_err"] < TOLERANCES["int8"].max_rel_l2
    assert accuracy["cosine"] > 0.9 and accuracy["confident_images"] <= 32
    assert set(map(int, artifact.manifest["verify"]["batches"])) == {1, 3}
    images = synthetic_images(5, 64, seed=3).numpy()  # a batch size neither export nor verify used
    ref = run_onnxruntime(small_artifacts[("onnx", "fp32")].path, images)
    out = run_onnxruntime(artifact.path, images)
    assert out.shape == (5, 1000) and 1e-3 < rel_l2(out, ref) < 0.5  # quantized, not a copy


def test_nncf_ir_runs_its_convolutions_in_int8(int8, small_artifacts):
    artifact = int8["openvino"]
    assert artifact.manifest["preset"] == "performance" and artifact.manifest["subset_size"] == 32
    assert artifact.path.with_suffix(".bin").stat().st_size < 0.35 * \
        small_artifacts[("openvino", "fp32")].path.with_suffix(".bin").stat().st_size
    counts = executed_precisions(compile_cpu(artifact.path))
    assert counts == artifact.manifest["executed"]
    assert conv_precision_summary(counts) == "int8 20/20 convolutions"
    fp32 = executed_precisions(compile_cpu(small_artifacts[("openvino", "fp32")].path))
    assert conv_precision_summary(fp32) == "f32 convolutions"
    assert artifact.manifest["accuracy"]["rel_l2_err"] < TOLERANCES["int8"].max_rel_l2


def test_reexport_is_a_cache_hit_and_calibration_is_in_the_key(tmp_path, store_dir, int8):
    again = Exporter(SMALL, ExportOptions(out=store_dir))
    assert again.onnx("int8").cached and again.onnx("int8").key == int8["onnx"].key
    assert again.openvino("int8").cached and again.openvino("int8").key == int8["openvino"].key
    one = _write_pngs(tmp_path / "one", 6, seed=1)
    other = shutil.copytree(one, tmp_path / "elsewhere")  # same images, another path
    first = Exporter(SMALL, ExportOptions(out=store_dir, calibration_images=one)).onnx("int8")
    moved = Exporter(SMALL, ExportOptions(out=store_dir, calibration_images=other)).onnx("int8")
    assert first.key != int8["onnx"].key and not first.cached
    assert moved.key == first.key and moved.cached
    assert first.manifest["calibration"]["kind"] == "folder" and first.manifest["calibration"]["count"] == 6
    s8 = Exporter(SMALL, ExportOptions(out=store_dir, ort_int8="s8s8")).onnx("int8")
    assert s8.key != int8["onnx"].key and s8.manifest["qdq"]["activation_types"] == ["int8"]


def test_calibration_set_is_seeded_and_hashed(tmp_path):
    a, b = calibration_set(64, 8), calibration_set(64, 8)
    assert a.sha256 == b.sha256 and np.array_equal(a.images, b.images)
    assert calibration_set(64, 9).sha256 != a.sha256
    assert [len(x) for x in calibration_set(64, 20).batches()] == [8, 8, 4]
    with pytest.raises(ValueError, match="no images"):
        calibration_set(64, folder=_write_pngs(tmp_path / "none", 0, seed=0))
    with pytest.raises(ValueError, match="unknown ONNX Runtime int8 scheme 'u4'"):
        ExportOptions(ort_int8="u4")


def test_a_calibration_that_misses_the_range_fails_verification(tmp_path, store_dir):
    # Blank (mid-grey) calibration images give every activation a tiny range: real inputs then
    # saturate, and the export refuses the artifact instead of storing a broken one.
    blank = _write_pngs(tmp_path / "blank", 4, seed=0, blank=True)
    exporter = Exporter(SMALL, ExportOptions(out=store_dir, calibration_images=blank))
    with pytest.raises(ExportError, match=r"\(int8\) disagrees with PyTorch"):
        exporter.onnx("int8")


def test_tensorrt_qdq_is_symmetric_int8_with_float_bias(int8):
    artifact = int8["tensorrt"]
    model = onnx.load(str(artifact.path))
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [initializers[n.input[2]] for n in model.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert check_qdq(artifact.path)["int8_compute_nodes"] == 21
    assert artifact.manifest["accuracy"]["rel_l2_err"] < TOLERANCES["int8"].max_rel_l2
    with pytest.raises(ExportError, match="uint8 zero point, not int8 0"):
        check_qdq(int8["onnx"].path)  # the asymmetric CPU model is refused for TensorRT


@pytest.mark.tensorrt
def test_tensorrt_int8_engine_builds(tmp_path):
    pytest.importorskip("tensorrt")
    from exporters.tensorrt_export import unavailable_reason

    if unavailable_reason():
        pytest.skip(unavailable_reason())
    (engine,) = export(SMALL, ExportOptions(targets=("tensorrt",), precisions=("int8",), out=tmp_path))
    assert engine.manifest["quantize_layers"] > 0 and engine.path.stat().st_size > 0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "resnet_bench", "export", *args], capture_output=True, text=True)


def test_cli_exports_int8_for_both_runtimes_then_hits_the_cache(tmp_path, store_dir, int8):
    store = shutil.copytree(store_dir, tmp_path / "store")  # fp32 sources already there
    args = ("--depth", "18", "--input-size", "64", "--to", "onnx,openvino", "--precision", "int8",
            "--calibration-count", "8", "--out", str(store), "--format", "json")
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)  # stdout is only JSON, whatever the quantizers print
    assert [(r["target"], r["precision"], r["cached"]) for r in rows] == [("onnx", "int8", False),
                                                                          ("openvino", "int8", False)]
    again = json.loads(_cli(*args).stdout)
    assert [r["cached"] for r in again] == [True, True] and [r["path"] for r in again] == [r["path"] for r in rows]
    out = run_openvino(rows[1]["path"], synthetic_images(2, 64).numpy())
    assert out.shape == (2, 1000)
    bad = _cli("--depth", "18", "--precision", "int4", "--out", str(store))
    assert bad.returncode == 2 and "unknown precision 'int4'" in bad.stderr
