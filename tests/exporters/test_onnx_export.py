import numpy as np
import onnx
import pytest

from exporters.errors import ExportError
from exporters.onnx_export import batch_dim, read_onnx, run_onnxruntime
from exporters.pipeline import Exporter, ExportOptions, export
from resnet_bench.model import synthetic_images
from tests.conftest import SMALL

pytest.importorskip("onnxruntime")


def test_dynamic_batch_axis_runs_at_other_batches(small_artifacts):
    artifact = small_artifacts[("onnx", "fp32")]
    assert batch_dim(read_onnx(artifact.path)) == "batch"
    for batch in (1, 3, 5):  # the export example was 2
        out = run_onnxruntime(artifact.path, synthetic_images(batch, 64, seed=batch).numpy())
        assert out.shape == (batch, 1000)


def test_export_verifies_against_pytorch_at_batch_1_and_3(small_artifacts):
    verify = small_artifacts[("onnx", "fp32")].manifest["verify"]
    assert set(map(int, verify["batches"])) == {1, 3}
    for result in verify["batches"].values():
        assert result["rel_l2_err"] < 1e-5 and result["top1_agreement"] == 1.0


def test_fp16_onnx_has_fp16_weights_and_fp32_io(small_artifacts):
    model = onnx.load(str(small_artifacts[("onnx", "fp16")].path))
    conv_weights = [i for i in model.graph.initializer if i.dims and len(i.dims) == 4]
    assert conv_weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in conv_weights)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert small_artifacts[("onnx", "fp16")].bytes < 0.6 * small_artifacts[("onnx", "fp32")].bytes


def test_static_batch_is_fixed_and_refuses_other_batches(tmp_path):
    options = ExportOptions(static_batch=4, out=tmp_path)
    (artifact,) = export(SMALL, options)
    assert batch_dim(read_onnx(artifact.path)) == 4
    with pytest.raises(Exception, match="[Ii]nvalid"):  # ORT refuses a wrong batch size
        run_onnxruntime(artifact.path, synthetic_images(3, 64).numpy())


def test_verify_catches_a_batch_fixed_at_export(tmp_path, small_artifacts):
    # A file whose batch got fixed (as the exporter has been seen to do) fails verification.
    fixed = onnx.load(str(small_artifacts[("onnx", "fp32")].path))
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    fixed.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "fixed.onnx"
    onnx.save(fixed, str(path))
    exporter = Exporter(SMALL, ExportOptions(out=tmp_path))
    with pytest.raises(ExportError, match="batch 3"):
        exporter.verify(run_onnxruntime, path, "fp32", "onnxruntime")


@pytest.mark.parametrize("content", [b"", b"not a protobuf at all", "truncated"])
def test_unreadable_onnx_is_named(tmp_path, small_artifacts, content):
    path = tmp_path / "bad.onnx"
    if content == "truncated":
        content = small_artifacts[("onnx", "fp32")].path.read_bytes()[:5000]
    path.write_bytes(content)
    with pytest.raises(ExportError, match="cannot read ONNX file .*bad.onnx"):
        read_onnx(path)


def test_given_onnx_converts_to_openvino(tmp_path, small_artifacts):
    options = ExportOptions(targets=("openvino",), out=tmp_path, onnx=small_artifacts[("onnx", "fp32")].path)
    (artifact,) = export(SMALL, options)
    assert artifact.path.suffix == ".xml" and not artifact.cached
    assert artifact.manifest["verify"]["batches"]["3"]["rel_l2_err"] < 1e-5


def test_onnx_matches_pytorch_outputs(small_artifacts):
    model = SMALL.build()
    images = synthetic_images(3, 64, seed=99)
    ref = model(images).numpy()
    out = run_onnxruntime(small_artifacts[("onnx", "fp32")].path, images.numpy())
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-5
