import os
import sys

import numpy as np
import pytest
import torch

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BACKENDS, BackendOptions, BackendUnavailable, _register, backend_class
from resnet_bench.cpus import available_cpus
from resnet_bench.model import synthetic_images
from resnet_bench.runner import open_backend
from resnet_bench.tolerances import rel_l2
from tests.conftest import SMALL

CPU_BACKENDS = ["torch", "onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def exporter(store_dir, small_artifacts):
    return Exporter(SMALL, ExportOptions(out=store_dir))


@pytest.fixture(scope="module")
def images_and_reference(exporter):
    images = synthetic_images(3, 64, seed=21)
    with torch.no_grad():
        return images.numpy(), exporter.model()(images).numpy()


def test_registry_rejects_duplicates_and_unknown_names():
    assert set(BACKENDS) == {"torch", "torch-compile", "onnxruntime", "openvino", "tensorrt"}
    with pytest.raises(ValueError, match="registered twice"):
        _register("torch", "x:y")
    with pytest.raises(ValueError, match="unknown backend 'tvm'"):
        backend_class("tvm")


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_cpu_backend_lifecycle_and_what_it_ran(name, exporter, images_and_reference):
    images, reference = images_and_reference
    opened = open_backend(name, BackendOptions("cpu", "fp32"), exporter)
    with opened.backend as backend:
        out = backend.infer(images)
        again = backend.fetch(backend.run(backend.prepare(images[:1])))
        info = backend.describe()
    assert out.shape == (3, 1000) and again.shape == (1, 1000)
    assert rel_l2(out, reference) < 1e-5
    assert np.allclose(again, out[:1], rtol=1e-4, atol=1e-4)
    # The thread count is the CPUs this process may run on, not the host's count.
    assert info["threads"] == available_cpus() == len(os.sched_getaffinity(0))
    assert info["streams"] == 1 and info["provider"]
    assert opened.load_s > 0


def test_openvino_reports_what_it_compiled(exporter):
    opened = open_backend("openvino", BackendOptions("cpu", "fp16"), exporter)
    with opened.backend as backend:
        info = backend.describe()
    assert info["performance_hint"] == "LATENCY"
    assert info["compute_precision"] == "f32"  # fp16 weights, computed in f32 on the CPU
    throughput = BackendOptions("cpu", "fp32", mode="throughput")
    with open_backend("openvino", throughput, exporter).backend as backend:
        assert backend.describe()["performance_hint"] == "THROUGHPUT"


def test_explicit_threads_are_used(exporter):
    with open_backend("onnxruntime", BackendOptions("cpu", threads=1), exporter).backend as backend:
        assert backend.describe()["threads"] == 1
    with open_backend("openvino", BackendOptions("cpu", threads=1), exporter).backend as backend:
        assert backend.describe()["threads"] == 1


def test_missing_runtime_is_unavailable_not_an_error(monkeypatch, exporter):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(BackendUnavailable, match="onnxruntime is not installed"):
        open_backend("onnxruntime", BackendOptions("cpu"), exporter)
    # ... and the others still run.
    with open_backend("torch", BackendOptions("cpu"), exporter).backend as backend:
        assert backend.infer(synthetic_images(1, 64).numpy()).shape == (1, 1000)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the reason given without a GPU")
@pytest.mark.parametrize("name", ["torch", "onnxruntime", "tensorrt"])
def test_cuda_cells_are_unavailable_with_a_reason_without_gpu(name, exporter):
    with pytest.raises(BackendUnavailable, match="CUDA|TensorRT"):
        open_backend(name, BackendOptions("cuda"), exporter)


def test_unsupported_precision_is_unavailable():
    reason = backend_class("torch").unavailable_reason(BackendOptions("cpu", "fp16"))
    assert reason == "torch on cpu runs fp32, bf16, not fp16"
    assert "does not run on cuda" in backend_class("openvino").unavailable_reason(BackendOptions("cuda"))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="device must be one of cpu, cuda"):
        BackendOptions("tpu")
    with pytest.raises(ValueError, match="mode"):
        BackendOptions(mode="offline")


def test_torch_compile_compiles_outside_the_timed_call(exporter, images_and_reference):
    images, reference = images_and_reference
    with open_backend("torch-compile", BackendOptions("cpu"), exporter).backend as backend:
        prepared = backend.prepare(images)
        assert 3 in backend.compile_s  # the first call per shape happened in prepare()
        out = backend.fetch(backend.run(prepared))
    assert rel_l2(out, reference) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision, max_err", [("fp32", 1e-2), ("fp16", 5e-2), ("bf16", 1e-1)])
def test_torch_cuda(precision, max_err, exporter, images_and_reference):
    images, reference = images_and_reference
    # fp32 on CUDA may use TF32 convolutions (cuDNN's default): looser than CPU fp32.
    for graphs in (False, True):
        opened = open_backend("torch", BackendOptions("cuda", precision), exporter)
        opened.backend.cuda_graphs = graphs
        with opened.backend as backend:
            out = backend.infer(images)
        assert rel_l2(out, reference) < max_err
