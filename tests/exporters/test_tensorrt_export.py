"""TensorRT: the option, profile and key logic runs anywhere; building needs TensorRT + CUDA."""

import pytest

from exporters import tensorrt_export as trt_export
from exporters.errors import ExportError
from exporters.pipeline import ExportOptions, check_available, export
from tests.conftest import SMALL

ENV = trt_export.Environment(tensorrt="10.13.0", cuda="12.8", gpu="NVIDIA H100 80GB HBM3",
                             compute_capability="9.0")


def test_profile_covers_the_batches_and_optimises_the_largest():
    assert trt_export.profile_for((8, 1, 32)) == trt_export.Profile(1, 32, 32)
    assert trt_export.profile_for((4,)).shapes(3, 224) == ((4, 3, 224, 224),) * 3
    with pytest.raises(ValueError, match="at least 1"):
        trt_export.profile_for((0, 8))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        trt_export.Profile(8, 4, 16)


@pytest.mark.parametrize("change", [
    dict(compute_capability="8.0"), dict(tensorrt="11.0.0"), dict(cuda="13.0"), dict(gpu="NVIDIA A100"),
])
def test_engine_key_depends_on_gpu_and_versions(change):
    profile = trt_export.profile_for((1, 8))
    base = trt_export.engine_key_fields("k", "fp16", profile, ENV)
    env = trt_export.Environment(**{**vars(ENV), **change})
    other = trt_export.engine_key_fields("k", "fp16", profile, env)
    assert base != other


def test_engine_key_depends_on_profile_precision_and_source():
    fields = trt_export.engine_key_fields("k", "fp16", trt_export.profile_for((1, 8)), ENV)
    assert fields["strongly_typed"] is True
    assert fields != trt_export.engine_key_fields("k", "fp16", trt_export.profile_for((1, 32)), ENV)
    assert fields != trt_export.engine_key_fields("k", "fp32", trt_export.profile_for((1, 8)), ENV)
    assert fields != trt_export.engine_key_fields("j", "fp16", trt_export.profile_for((1, 8)), ENV)


def test_timing_cache_is_per_gpu_and_version(tmp_path):
    path = trt_export.timing_cache_path(tmp_path, ENV)
    assert path.name == "timing-sm90-trt10.13.0.cache"


def test_missing_tensorrt_is_refused_naming_what_is_missing():
    reason = trt_export.unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and CUDA are present here")
    with pytest.raises(ExportError, match="^tensorrt: (TensorRT is not installed|no CUDA device)"):
        check_available(("onnx", "tensorrt"))


@pytest.mark.tensorrt
@pytest.mark.skipif(trt_export.unavailable_reason() is not None,
                    reason=f"needs TensorRT and CUDA: {trt_export.unavailable_reason()}")
def test_build_engine_and_cache_hit(tmp_path):
    options = ExportOptions(targets=("tensorrt",), precisions=("fp32", "fp16"), batches=(1, 8), out=tmp_path)
    first = export(SMALL, options)
    assert all(a.path.suffix == ".engine" and a.bytes > 0 for a in first)
    assert all(a.cached for a in export(SMALL, options))
    assert any(tmp_path.joinpath("tensorrt").glob("timing-*.cache"))
