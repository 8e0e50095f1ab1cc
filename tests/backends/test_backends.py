import os
import sys

import numpy as np
import pytest
import torch

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BACKENDS, BackendOptions, BackendUnavailable, _register, backend_class
from resnet_bench.backends.base import split_threads
from resnet_bench.backends.open import open_backend
from resnet_bench.machine.cpus import available_cpus
from resnet_bench.measure.timing import StopRule, measure_concurrent
from resnet_bench.model import synthetic_images
from resnet_bench.numerics.tolerances import rel_l2
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
        info = backend.describe()
    assert rel_l2(out, reference) < 1e-5
    assert (info["compile_graphs"], info["graph_breaks"], info["recompiles"]) == (1, 0, 0)


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


# -- threads: --threads N is N threads in total, in every mode ---------------------------------
@pytest.mark.parametrize("total, cpus, streams, split", [
    (1, 2, None, (1, 1)), (2, 2, None, (2, 1)), (4, 2, None, (2, 2)), (3, 2, None, (1, 3)),
    (6, 4, None, (3, 2)), (8, 64, None, (8, 1)), (4, 2, 4, (4, 1)), (6, 2, 3, (3, 2))])
def test_throughput_splits_the_threads_over_its_requests(total, cpus, streams, split):
    assert split_threads(total, cpus, streams) == split


@pytest.mark.parametrize("threads, streams", [(1, 2), (2, 4), (3, 2)])
def test_streams_that_cannot_share_the_threads_are_refused(threads, streams):
    with pytest.raises(ValueError, match=rf"streams \({streams}\) must divide threads \({threads}\)"):
        BackendOptions("cpu", threads=threads, mode="throughput", streams=streams)


SHORT = StopRule(warmup_iters=2, warmup_s=0, min_iters=4, min_s=0, max_s=5)


def _run_throughput(backend, images):
    prepared = backend.prepare(images)
    measure_concurrent([backend.worker(prepared) for _ in range(backend.in_flight())], SHORT)
    return backend.describe()


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_one_thread_in_throughput_mode_is_one_thread(name, exporter, images_and_reference):
    options = BackendOptions("cpu", "fp32", threads=1, mode="throughput")
    with open_backend(name, options, exporter).backend as backend:
        assert backend.in_flight() * backend.threads_per_request() == 1
        info = _run_throughput(backend, images_and_reference[0][:1])
    assert (info["threads"], info["in_flight"], info["threads_per_request"]) == (1, 1, 1)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_throughput_threads_are_the_total_by_default(name, exporter, images_and_reference):
    cpus = available_cpus()
    with open_backend(name, BackendOptions("cpu", "fp32", mode="throughput"), exporter).backend as backend:
        info = _run_throughput(backend, images_and_reference[0][:1])
    assert info["threads"] == cpus and info["in_flight"] * info["threads_per_request"] == cpus


def test_onnxruntime_sessions_have_the_threads_of_a_request(exporter, images_and_reference):
    options = BackendOptions("cpu", "fp32", threads=4, mode="throughput", streams=2)
    with open_backend("onnxruntime", options, exporter).backend as backend:
        assert (backend.in_flight(), backend.threads_per_request()) == (2, 2)
        prepared = backend.prepare(images_and_reference[0][:1])
        workers = [backend.worker(prepared) for _ in range(2)]
        # A session's intra-op pool is shared by its concurrent runs: one session per request.
        assert len({id(s) for s in backend.sessions}) == 2
        assert [s.get_session_options().intra_op_num_threads for s in backend.sessions] == [2, 2]
        measure_concurrent(workers, SHORT)
        assert backend.describe()["threads"] == 4


def test_torch_worker_threads_use_their_share(exporter, images_and_reference):
    """torch's intra-op pool is sized per calling thread: each worker thread must set its own."""
    options = BackendOptions("cpu", "fp32", threads=4, mode="throughput", streams=2)
    before = torch.get_num_threads()
    try:
        with open_backend("torch", options, exporter).backend as backend:
            info = _run_throughput(backend, images_and_reference[0][:1])
            assert backend.worker_threads == [2, 2]  # torch.get_num_threads() inside each worker thread
        assert (info["threads"], info["in_flight"], info["threads_per_request"]) == (4, 2, 2)
    finally:
        torch.set_num_threads(before)


def test_openvino_takes_the_threads_in_total(exporter):
    options = BackendOptions("cpu", "fp32", threads=2, mode="throughput")
    with open_backend("openvino", options, exporter).backend as backend:
        info = backend.describe()
    assert info["threads"] == min(2, available_cpus())  # INFERENCE_NUM_THREADS, read back
    assert info["in_flight"] * info["threads_per_request"] <= info["threads"]


# -- torch-compile times what its label says ----------------------------------------------------
@pytest.fixture
def dynamo_capture_only(monkeypatch):
    """Dynamo's own graph capture, guards and recompile limit, with its "eager" compiler instead
    of inductor's code generation (tens of seconds per graph on 2 cores); dynamo config restored."""
    from resnet_bench.backends.torch_backend import TorchCompileBackend
    config = torch._dynamo.config
    names = [n for n in ("recompile_limit", "accumulated_recompile_limit", "fail_on_recompile_limit_hit")
             if hasattr(config, n)]
    saved = {name: getattr(config, name) for name in names}  # (monkeypatch trips on its aliases)
    monkeypatch.setattr(TorchCompileBackend, "compiler", "eager")
    yield TorchCompileBackend
    for name, value in saved.items():
        setattr(config, name, value)


class Tiny(torch.nn.Module):
    """A conv net dynamo traces in a fraction of a second; ``broken`` puts a graph break inside."""

    def __init__(self, broken: bool = False):
        super().__init__()
        self.conv, self.broken = torch.nn.Conv2d(3, 4, 3), broken

    def forward(self, x):
        x = self.conv(x)
        if self.broken:
            torch._dynamo.graph_break()
        return x.relu()


@pytest.mark.slow  # dynamo traces ResNet-18 nine times: about 45 s on 2 busy cores
def test_torch_compile_compiles_more_batch_sizes_than_the_default_limit(dynamo_capture_only, resnet18_model):
    from torch._dynamo.utils import counters
    images = synthetic_images(9, 32, seed=3).numpy()
    with dynamo_capture_only(BackendOptions("cpu")) as backend:
        backend.load(resnet18_model)
        graphs_before = counters["stats"]["unique_graphs"]
        for batch in range(1, 10):  # more batch sizes than dynamo's default limit (8) per code object
            backend.prepare(images[:batch])
        assert counters["stats"]["unique_graphs"] - graphs_before == 9  # none ran eager
        info = backend.describe()
    assert (info["compile_graphs"], info["graph_breaks"], info["recompiles"]) == (9, 0, 0)


@pytest.mark.parametrize("dynamo_raises", [True, False])
def test_torch_compile_fallback_to_eager_is_an_error(dynamo_raises, dynamo_capture_only, monkeypatch):
    from resnet_bench.backends import torch_backend
    monkeypatch.setattr(dynamo_capture_only, "recompile_limit", 2)
    if not dynamo_raises:  # as on a torch without fail_on_recompile_limit_hit: our own check
        set_limit = torch_backend._set_recompile_limit
        monkeypatch.setattr(torch_backend, "_set_recompile_limit", lambda limit: (
            set_limit(limit), setattr(torch._dynamo.config, "fail_on_recompile_limit_hit", False)))
    images = synthetic_images(3, 16, seed=3).numpy()
    with dynamo_capture_only(BackendOptions("cpu")) as backend:
        backend.load(Tiny())
        backend.prepare(images[:1])
        backend.prepare(images[:2])
        with pytest.raises(Exception, match="recompile"):
            backend.prepare(images[:3])


def test_torch_compile_reports_graph_breaks_and_recompiles(dynamo_capture_only):
    images = synthetic_images(2, 16, seed=3).numpy()
    with dynamo_capture_only(BackendOptions("cpu")) as backend:
        backend.load(Tiny(broken=True))
        backend.prepare(images[:1])
        compiled = backend.describe()
        backend.run(torch.from_numpy(images))  # a batch prepare() never saw compiles inside the timed call
        timed = backend.describe()
    assert (compiled["compile_graphs"], compiled["graph_breaks"], compiled["recompiles"]) == (2, 1, 0)
    assert timed["recompiles"] == 2  # one graph each side of the break


def test_torch_compile_recompiles_in_prepare_after_another_model_reset_dynamo(dynamo_capture_only):
    images = synthetic_images(1, 16, seed=3).numpy()
    with dynamo_capture_only(BackendOptions("cpu")) as first:
        first.load(Tiny())
        first.prepare(images)
        with dynamo_capture_only(BackendOptions("cpu", mode="throughput")) as second:
            second.load(Tiny())  # resets dynamo: first's graph is gone
        first.prepare(images)  # ... so it compiles again here, not in the timed call
        assert first.describe()["compile_graphs"] == 2 and first.describe()["recompiles"] == 0
