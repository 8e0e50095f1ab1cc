"""TensorRT: the option, profile and key logic runs anywhere; building needs TensorRT + CUDA."""

import pytest

from exporters import tensorrt_export as trt_export
from exporters.errors import ExportError
from exporters.pipeline import ExportOptions, check_available, export
from resnet_bench.model.images import CHUNK
from tests.conftest import SMALL

ENV = trt_export.Environment(tensorrt="10.13.0", cuda="12.8", gpu="NVIDIA H100 80GB HBM3",
                             compute_capability="9.0", gpu_uuid="GPU-58e1f7b5-0000-0000-0000-000000000001")


def test_profile_validation():
    assert trt_export.Profile(4, 4, 4).shapes(3, 224) == ((4, 3, 224, 224),) * 3
    with pytest.raises(ValueError, match="at least 1"):
        trt_export.plan_profiles((0, 8))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        trt_export.Profile(8, 4, 16)


@pytest.mark.parametrize("batches", [(1,), (1, 8), (8, 1, 32), (64, 256)])
def test_each_timed_batch_runs_on_a_profile_optimised_for_it(batches):
    plan = trt_export.plan_profiles(batches)
    for batch in batches:  # issue 12.4: the opt shape is the batch the cell times, not the largest
        assert plan[trt_export.profile_index(plan, 1, 0, batch)].opt_batch == batch


@pytest.mark.parametrize("batches", [(1,), (1, 2), (64, 256)])
def test_profiles_cover_parity_chunks_and_the_odd_last_chunk(batches):
    # issue 12.2: `parity` (and `bench --batches 1`) fed chunks of 8 to a batch-1-only profile.
    plan = trt_export.plan_profiles(batches)
    assert trt_export.PARITY_CHUNK == CHUNK
    for batch in (*range(1, CHUNK + 1), *batches):
        index = trt_export.profile_index(plan, 1, 0, batch)
        assert plan[index].covers(batch)


def test_batch_outside_every_profile_is_refused_in_one_line():
    plan = trt_export.plan_profiles((1, 8))
    with pytest.raises(ValueError, match="^batch 64 is outside the engine's profiles \\(1..8\\)"):
        trt_export.profile_index(plan, 1, 0, 64)


@pytest.mark.parametrize("contexts", [2, 3, 4])
def test_concurrent_contexts_never_share_a_profile(contexts):
    # issue 12.3: each execution context used at once needs its own optimization profile.
    batches = (1, 8, 64)
    plan = trt_export.plan_profiles(batches, contexts)
    assert len(plan) == contexts * len(batches)
    for batch in (1, 5, 8, 64):
        used = [trt_export.profile_index(plan, contexts, c, batch) for c in range(contexts)]
        assert len(set(used)) == contexts
        assert all(plan[i].covers(batch) for i in used)
    owned = [{trt_export.profile_index(plan, contexts, c, b) for b in batches} for c in range(contexts)]
    assert all(a.isdisjoint(b) for i, a in enumerate(owned) for b in owned[i + 1:])
    with pytest.raises(ValueError, match="cannot serve context"):
        trt_export.profile_index(plan, contexts, contexts, 1)


@pytest.mark.parametrize("change", [
    dict(compute_capability="8.0"), dict(tensorrt="11.0.0"), dict(cuda="13.0"), dict(gpu="NVIDIA A100"),
])
def test_engine_key_depends_on_gpu_and_versions(change):
    profiles = trt_export.plan_profiles((1, 8))
    base = trt_export.engine_key_fields("k", "fp16", profiles, ENV)
    env = trt_export.Environment(**{**vars(ENV), **change})
    assert base != trt_export.engine_key_fields("k", "fp16", profiles, env)


def test_engine_key_depends_on_profiles_contexts_tf32_precision_and_source():
    profiles = trt_export.plan_profiles((1, 8))
    fields = trt_export.engine_key_fields("k", "fp32", profiles, ENV)
    assert fields["strongly_typed"] is True and fields["tf32"] is False
    assert fields != trt_export.engine_key_fields("k", "fp32", trt_export.plan_profiles((1, 32)), ENV)
    assert fields != trt_export.engine_key_fields("k", "fp32", trt_export.plan_profiles((1, 8), 2), ENV)
    assert fields != trt_export.engine_key_fields("k", "fp32", profiles, ENV, tf32=True)
    assert fields != trt_export.engine_key_fields("k", "fp16", profiles, ENV)
    assert fields != trt_export.engine_key_fields("j", "fp32", profiles, ENV)


def test_timing_cache_is_per_gpu_model_device_and_version(tmp_path):
    path = trt_export.timing_cache_path(tmp_path, ENV)
    assert path.name.startswith("timing-nvidia-h100-80gb-hbm3-") and path.name.endswith("-sm90-trt10.13.0.cache")
    # issue 12.6: two GPUs of one compute capability (an L40S and an RTX 4090 are both 8.9) or
    # two boards of one model never share a cache; other TensorRT versions neither.
    l40s = trt_export.Environment("10.13.0", "12.8", "NVIDIA L40S", "8.9", "GPU-aaaa")
    rtx = trt_export.Environment("10.13.0", "12.8", "NVIDIA GeForce RTX 4090", "8.9", "GPU-bbbb")
    other_board = trt_export.Environment(**{**vars(ENV), "gpu_uuid": "GPU-58e1f7b5-0000-0000-0000-000000000002"})
    paths = {trt_export.timing_cache_path(tmp_path, env) for env in (ENV, l40s, rtx, other_board)}
    assert len(paths) == 4


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
    assert all(a.manifest["tf32"] is False for a in first)  # TF32 cleared and read back
    assert all(a.cached for a in export(SMALL, options))
    assert any(tmp_path.joinpath("tensorrt").glob("timing-*.cache"))
