"""The CUDA paths: what runs here (ONNX Runtime's IO binding and provider check with the CPU
build) and what needs a GPU (marked gpu / tensorrt, skipped here with the reason).

The GPU tests need no OpenVINO (the GPU image has none): they export ONNX only."""

import numpy as np
import pytest
import torch

from exporters.pipeline import Exporter, ExportOptions
from exporters.tensorrt_export import unavailable_reason as tensorrt_reason
from resnet_bench.backends import BackendOptions, BackendUnavailable
from resnet_bench.backends.onnxruntime_backend import OnnxRuntimeBackend, bind_preallocated
from resnet_bench.backends.open import open_backend
from resnet_bench.measure.roofs import peaks
from resnet_bench.measure.timing import StopRule
from resnet_bench.model import synthetic_images
from resnet_bench.numerics import precision
from resnet_bench.numerics.tolerances import TOLERANCES, rel_l2
from resnet_bench.parity.verdict import check_runner
from resnet_bench.results import runs
from resnet_bench.results.runs import start
from resnet_bench.sweep.config import SweepConfig
from resnet_bench.sweep.sweep import Sweep
from tests.conftest import SMALL

ort = pytest.importorskip("onnxruntime")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def onnx_exporter(tmp_path_factory):
    exporter = Exporter(SMALL, ExportOptions(out=tmp_path_factory.mktemp("cuda-artifacts")))
    exporter.onnx("fp32")
    return exporter


@pytest.fixture(scope="module")
def images_and_reference(onnx_exporter):
    images = synthetic_images(16, 64, seed=9)
    with torch.inference_mode():
        return images.numpy(), onnx_exporter.model()(images).numpy()


# -- runs anywhere ---------------------------------------------------------------------------
def test_io_binding_writes_into_the_preallocated_output(onnx_exporter, images_and_reference):
    """The CUDA path's binding, on the CPU device: ORT writes into our buffer, run after run."""
    images, reference = images_and_reference
    session = ort.InferenceSession(str(onnx_exporter.onnx("fp32").path), providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    value = ort.OrtValue.ortvalue_from_numpy(images[:4], "cpu", 0)
    output = bind_preallocated(ort, session, binding, value, "cpu")
    assert output.shape() == [4, 1000]
    pointer = output.data_ptr()
    for _ in range(2):
        session.run_with_iobinding(binding)
        assert binding.get_outputs()[0].data_ptr() == pointer  # nothing allocated by the run
    assert rel_l2(output.numpy(), reference[:4]) < 1e-5


def test_onnxruntime_cuda_that_falls_back_to_cpu_is_unavailable_and_prints_nothing(onnx_exporter, capfd):
    if "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available():
        pytest.skip("CUDA provider present: this checks the fallback")
    backend = OnnxRuntimeBackend(BackendOptions("cuda", "fp32"))
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider is not active.*CPUExecutionProvider"):
        backend.load(onnx_exporter.onnx("fp32").path)  # as a session quietly falling back would
    assert capfd.readouterr().out == ""  # --format json keeps stdout to itself


# -- needs a GPU ----------------------------------------------------------------------------
@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("graphs", [False, True])
@pytest.mark.parametrize("prec", ["fp32", "tf32", "fp16", "bf16"])
def test_torch_cuda_runs_what_the_table_says(prec, graphs, onnx_exporter, images_and_reference):
    images, reference = images_and_reference
    with open_backend("torch", BackendOptions("cuda", prec, cuda_graphs=graphs), onnx_exporter).backend as backend:
        verdict = check_runner(backend, "torch", images, reference)
        info = backend.describe()
        assert torch.backends.cudnn.benchmark is True and info["channels_last"] is True
    spec = precision.require("torch", "cuda", prec)
    assert verdict.status == "pass", verdict.reason
    assert verdict.rel_l2_err < TOLERANCES[spec.tolerance].max_rel_l2
    assert info["compute_precision"] == spec.compute and info["cuda_graphs"] is graphs


@pytest.mark.gpu
@needs_gpu
def test_cuda_graphs_run_their_argument(onnx_exporter, images_and_reference):
    images, reference = images_and_reference
    with open_backend("torch", BackendOptions("cuda", "fp32", cuda_graphs=True), onnx_exporter).backend as backend:
        first, second = backend.prepare(images[:4]), backend.prepare(images[4:8])
        out_second = backend.fetch(backend.run(second))
        out_first = backend.fetch(backend.run(first))
    assert rel_l2(out_first, reference[:4]) < 1e-4 and rel_l2(out_second, reference[4:8]) < 1e-4


@pytest.mark.gpu
@needs_gpu
def test_torch_cuda_throughput_workers_are_checked(onnx_exporter, images_and_reference):
    images, reference = images_and_reference
    options = BackendOptions("cuda", "fp32", mode="throughput", streams=3)
    with open_backend("torch", options, onnx_exporter).backend as backend:
        verdict = check_runner(backend, "torch", images, reference)
    assert verdict.status == "pass" and verdict.streams == 3


@pytest.mark.gpu
@needs_gpu
def test_gpu_roofs_separate_ieee_fp32_from_tf32():
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("TF32 needs compute capability 8.0 or later")
    roofs = peaks("cuda", 1)
    assert set(roofs) == {"fp32", "tf32", "fp16", "bf16"}
    assert roofs["tf32"] > 1.5 * roofs["fp32"]  # tensor cores: TF32 is several times IEEE fp32
    assert roofs["fp16"] > roofs["tf32"]


@pytest.mark.gpu
@needs_gpu
def test_onnxruntime_cuda(onnx_exporter, images_and_reference):
    reason = OnnxRuntimeBackend.unavailable_reason(BackendOptions("cuda", "fp32"))
    if reason:  # the GPU image has the CPU build: the cell must say so
        assert "CUDAExecutionProvider" in reason
        pytest.skip(reason)
    images, reference = images_and_reference
    for prec in ("fp32", "tf32"):
        with open_backend("onnxruntime", BackendOptions("cuda", prec), onnx_exporter).backend as backend:
            verdict = check_runner(backend, "onnxruntime", images, reference)
        assert verdict.status == "pass" and verdict.compute_precision == prec, verdict.reason
    options = BackendOptions("cuda", "fp32", mode="throughput", streams=2)
    with open_backend("onnxruntime", options, onnx_exporter).backend as backend:
        verdict = check_runner(backend, "onnxruntime", images, reference)
    assert verdict.status == "pass" and verdict.streams == 2


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(tensorrt_reason() is not None, reason=f"needs TensorRT and CUDA: {tensorrt_reason()}")
@pytest.mark.parametrize("mode", ["latency", "throughput"])
def test_tensorrt_every_batch_and_context(mode, tmp_path, images_and_reference):
    images, reference = images_and_reference
    exporter = Exporter(SMALL, ExportOptions(out=tmp_path, batches=(1, 4)))
    for prec in ("fp32", "tf32", "fp16"):
        options = BackendOptions("cuda", prec, mode=mode, streams=2)
        with open_backend("tensorrt", options, exporter).backend as backend:
            verdict = check_runner(backend, "tensorrt", images, reference)  # chunks of 8 and each context
            assert verdict.status == "pass", verdict.reason
            assert verdict.rel_l2_err < TOLERANCES[prec].max_rel_l2
            info = backend.describe()
            assert info["streams"] == (2 if mode == "throughput" else 1) and info["compute_precision"] == prec
            first, second = backend.prepare(images[:1]), backend.prepare(images[1:5])
            out = backend.fetch(backend.run(first))  # its argument, not the last prepared
            assert out.shape == (1, 1000) and rel_l2(out, reference[:1]) < 5e-2
            assert backend.fetch(backend.run(second)).shape == (4, 1000)


@pytest.mark.gpu
@needs_gpu
def test_cuda_sweep_rows(tmp_path, onnx_exporter):
    rule = StopRule(warmup_iters=2, warmup_s=0.0, min_iters=5, min_s=0.1, max_s=1.0)
    config = SweepConfig(device="cuda", depths=(18,), batches=(1, 8), backends=("torch", "onnxruntime"),
                                 precisions=("fp32", "tf32"), input_size=64, parity_images=16,
                                 artifacts=str(onnx_exporter.store.root), rule=rule)
    start(config, tmp_path / "run")
    Sweep(config, tmp_path / "run").run()
    frame = runs.load(tmp_path / "run")
    torch_rows = frame[frame.backend == "torch"]
    assert (torch_rows.status == "ok").all() and (torch_rows.parity_status == "pass").all()
    assert (torch_rows.compute_precision == torch_rows.precision).all()
    assert (torch_rows.gpu_sm_clock_mhz > 0).all() or torch_rows.telemetry_note.notna().all()
    assert (torch_rows.peak_gflops > 0).all()
    assert np.all(frame[frame.backend == "onnxruntime"].status.isin(["ok", "unavailable"]))
