import pytest

from exporters.pipeline import ExportOptions, export
from resnet_bench.spec import ModelSpec

SMALL = ModelSpec(18, input_size=64)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def small_artifacts(store_dir):
    """ResNet-18 at 64x64 exported once for the session: ONNX and OpenVINO, fp32 and fp16."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    options = ExportOptions(targets=("onnx", "openvino"), precisions=("fp32", "fp16"), out=store_dir)
    return {(a.target, a.precision): a for a in export(SMALL, options)}
