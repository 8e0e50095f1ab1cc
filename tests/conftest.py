import functools

import pytest
import torch

from resnet_bench.model import build_model


@functools.cache
def _cached_model(depth: int, variant: str):
    return build_model(depth, variant)


@pytest.fixture
def resnet18_model():
    """The seeded, calibrated ResNet-18, built once per session (treat as read-only)."""
    return _cached_model(18, "v1.5")


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


# -- exported artifacts, shared by the exporter, backend and parity tests --------------------
from exporters.pipeline import ExportOptions, export  # noqa: E402
from resnet_bench.model.spec import ModelSpec  # noqa: E402

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


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """A ResNet-18 trained here on scikit-learn's handwritten digits (real labelled images, 10
    classes), with disjoint calibration and evaluation folders: built once per run of the suite."""
    pytest.importorskip("sklearn")
    from tests.fixtures.digits import build

    with torch.enable_grad():
        return build(tmp_path_factory.mktemp("digits"))
