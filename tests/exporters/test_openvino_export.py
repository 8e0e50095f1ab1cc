import pytest

from exporters.openvino_export import run_openvino
from resnet_bench.model import synthetic_images
from resnet_bench.numerics.tolerances import rel_l2, top1_agreement

pytest.importorskip("openvino")


def test_ir_files_and_fp16_compressed_weights(small_artifacts):
    fp32, fp16 = small_artifacts[("openvino", "fp32")], small_artifacts[("openvino", "fp16")]
    for artifact in (fp32, fp16):
        assert artifact.path.suffix == ".xml"
        assert artifact.path.with_suffix(".bin").is_file()
        assert set(artifact.manifest["files"]) == {"model.xml", "model.bin"}
    assert fp16.path.with_suffix(".bin").stat().st_size < 0.6 * fp32.path.with_suffix(".bin").stat().st_size


def test_ir_reloads_and_matches_onnx_and_pytorch(small_artifacts):
    for precision, max_err in (("fp32", 1e-5), ("fp16", 2e-2)):
        verify = small_artifacts[("openvino", precision)].manifest["verify"]["batches"]
        assert set(map(int, verify)) == {1, 3}
        assert all(v["rel_l2_err"] < max_err and v["top1_agreement"] == 1.0 for v in verify.values())
    images = synthetic_images(5, 64, seed=3).numpy()  # a batch neither export nor verify used
    from exporters.onnx_export import run_onnxruntime
    ref = run_onnxruntime(small_artifacts[("onnx", "fp32")].path, images)
    out = run_openvino(small_artifacts[("openvino", "fp32")].path, images)
    assert out.shape == (5, 1000) and rel_l2(out, ref) < 1e-5 and top1_agreement(out, ref) == 1.0
