"""The precision table, the TF32 settings it asks for (set and read back), and what uses it."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BACKENDS, BackendOptions, backend_class
from resnet_bench.backends.open import artifact_precision, open_backend
from resnet_bench.backends.torch_backend import TorchBackend, set_tf32, tf32_state
from resnet_bench.measure.timing import StopRule
from resnet_bench.model import synthetic_images
from resnet_bench.numerics import precision
from resnet_bench.numerics.tolerances import TOLERANCES, rel_l2, top1_agreement
from resnet_bench.parity.verdict import check_runner, judge
from resnet_bench.results.runs import start
from resnet_bench.sweep.config import SweepConfig
from resnet_bench.sweep.sweep import Sweep
from tests.conftest import SMALL


def test_the_table_is_what_every_backend_runs():
    for name in BACKENDS:
        assert backend_class(name).precisions == precision.supported(name), name
    for spec in precision.TABLE:
        assert spec.precision in precision.PRECISIONS and spec.tolerance in TOLERANCES
        assert spec.roof in precision.PRECISIONS
        assert (spec.tf32 is None) == (spec.device == "cpu"), spec


def test_fp32_on_a_gpu_is_ieee_fp32_everywhere_and_tf32_is_its_own_precision():
    gpu = [s for s in precision.TABLE if s.device == "cuda"]
    assert {s.backend for s in gpu} == {"torch", "torch-compile", "onnxruntime", "tensorrt"}
    for spec in gpu:
        if spec.precision == "tf32":
            assert spec.tf32 is True and spec.compute == spec.tolerance == spec.roof == "tf32"
        else:  # issue 12.1: TF32 is on by default in all three runtimes; fp32 turns it off
            assert spec.tf32 is False
        if spec.precision == "fp32":
            assert spec.compute == spec.tolerance == spec.roof == "fp32"


def test_artifact_precision_comes_from_the_table():
    assert artifact_precision("tensorrt", "cuda", "tf32") == "fp32"  # an fp32 graph, TF32 builder flag
    assert artifact_precision("onnxruntime", "cuda", "fp16") == "fp16"
    assert artifact_precision("openvino", "cpu", "bf16") == "fp32"
    assert artifact_precision("torch", "cuda", "bf16") is None  # the torch model, cast
    with pytest.raises(ValueError, match="^openvino on cuda runs nothing, not fp32$"):
        artifact_precision("openvino", "cuda", "fp32")


def test_roof_is_the_tables_key():
    # OpenVINO fp16 is fp16 weights computed in f32: its roof is the fp32 GEMM (was none).
    sweep = Sweep.__new__(Sweep)
    sweep.peaks = {"fp32": 100.0, "tf32": 400.0, "fp16": 800.0, "bf16": 800.0}
    cell = dict(backend="openvino", device="cpu", precision="fp16")
    assert sweep._peak(cell) == 100.0
    assert sweep._peak(dict(backend="torch", device="cuda", precision="fp32")) == 100.0  # not the TF32 roof
    assert sweep._peak(dict(backend="tensorrt", device="cuda", precision="tf32")) == 400.0


def test_torch_default_convolutions_are_tf32():
    # The trap of issue 12.1, checked in a fresh process: cuDNN convolutions default to TF32.
    code = "import torch; print(torch.backends.cudnn.conv.fp32_precision)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "tf32"


@pytest.mark.parametrize("name", ["torch", "torch-compile"])
def test_torch_cuda_settings_are_set_and_read_back(name):
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.conv.fp32_precision,
              torch.backends.cuda.matmul.fp32_precision)
    try:
        set_tf32(True)  # as a fresh process has it for convolutions
        torch.backends.cudnn.benchmark = False
        for prec, expected in [("fp32", "fp32"), ("tf32", "tf32"), ("fp16", "fp16"), ("bf16", "bf16")]:
            backend = backend_class(name)(BackendOptions("cuda", prec))
            backend._cuda_settings()  # what load() and every prepare() do (flags need no GPU)
            spec = precision.require(name, "cuda", prec)
            assert tf32_state() == {"conv": spec.tf32, "matmul": spec.tf32}
            assert torch.backends.cudnn.benchmark is True
            assert backend.compute_precision() == expected == spec.compute
        # what it reports is read back, not the request: TF32 switched on behind an fp32 backend shows
        set_tf32(True)
        assert backend_class(name)(BackendOptions("cuda", "fp32")).compute_precision() == "tf32"
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = before[1:]


def test_cuda_graphs_reach_the_torch_backend_from_the_options():
    assert TorchBackend(BackendOptions("cuda", "fp16", cuda_graphs=True)).cuda_graphs is True
    # graphs replay on one stream: throughput mode runs several, so it does not use them
    assert TorchBackend(BackendOptions("cuda", "fp16", mode="throughput", cuda_graphs=True)).cuda_graphs is False
    with pytest.raises(ValueError, match="CUDA graphs need device cuda"):
        BackendOptions("cpu", cuda_graphs=True)
    with pytest.raises(ValueError, match="CUDA graphs need device cuda"):
        SweepConfig(device="cpu", cuda_graphs=True)


def test_cli_takes_cuda_graphs_and_refuses_it_on_cpu():
    for command in (["bench"], ["parity", "--depth", "18"]):
        result = subprocess.run([sys.executable, "-m", "resnet_bench", *command, "--device", "cpu", "--cuda-graphs"],
                                capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "CUDA graphs need device cuda" in result.stderr


# -- TF32, emulated: the tolerance is between what correct TF32 gives and fp32's -------------
def _tf32(x: torch.Tensor, truncate: bool) -> torch.Tensor:
    bits = x.contiguous().view(torch.int32)
    bits = bits & ~0x1FFF if truncate else (bits + 0x0FFF + ((bits >> 13) & 1)) & ~0x1FFF
    return bits.view(torch.float32)


class _TF32(torch.overrides.TorchFunctionMode):
    """Round the inputs of every conv and fc to TF32's 10 mantissa bits (fp32 accumulation)."""

    def __init__(self, truncate: bool = False) -> None:
        super().__init__()
        self.truncate = truncate

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.nn.functional.conv2d, torch.nn.functional.linear):
            args = (_tf32(args[0], self.truncate), _tf32(args[1], self.truncate), *args[2:])
        return func(*args, **(kwargs or {}))


def test_tf32_fails_the_fp32_tolerance_and_passes_its_own(resnet18_model):
    images = synthetic_images(32, 64, seed=3)
    with torch.inference_mode():
        reference = resnet18_model(images).numpy()
        with _TF32():
            tf32 = resnet18_model(images).numpy()
    metrics = {"rel_l2_err": rel_l2(tf32, reference), "top1_agreement": top1_agreement(tf32, reference)}
    assert 1e-4 < metrics["rel_l2_err"] < 2e-2
    assert judge(metrics, "fp32").startswith("rel L2")  # fp32 that is TF32 fails fp32 parity
    assert judge(metrics, "tf32") == ""


def test_parity_checks_every_throughput_worker(store_dir, small_artifacts):
    exporter = Exporter(SMALL, ExportOptions(out=store_dir))
    images = synthetic_images(16, 64, seed=4).numpy()
    with torch.inference_mode():
        reference = exporter.model()(torch.from_numpy(images)).numpy()
    options = BackendOptions("cpu", "fp32", mode="throughput", streams=2)
    with open_backend("onnxruntime", options, exporter).backend as backend:
        calls = []
        real = backend.worker

        def counting(prepared):
            calls.append(prepared)
            return real(prepared)

        backend.worker = counting
        verdict = check_runner(backend, "onnxruntime", images, reference)
    assert verdict.status == "pass" and verdict.rel_l2_err < 1e-5
    assert len(calls) == 2 * 2  # two chunks of 8, each through both request streams


def test_throughput_instances_are_parity_checked_before_timing(tmp_path, store_dir, small_artifacts, monkeypatch):
    """A throughput-mode instance that computes something else is caught (issue 12.3)."""
    real_load = TorchBackend.load

    def load(self, model):  # fault injection: throughput instances get one tampered weight
        real_load(self, model)
        if self.options.mode == "throughput":
            with torch.no_grad():
                self.model.conv1.weight[0] += 1.0

    monkeypatch.setattr(TorchBackend, "load", load)
    rule = StopRule(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, max_s=1.0)
    config = SweepConfig(depths=(18,), batches=(1,), backends=("torch",), input_size=64, parity_images=8,
                                 artifacts=str(store_dir), rule=rule, roofs=False)
    start(config, tmp_path / "run")
    rows = {row["mode"]: row for row in Sweep(config, tmp_path / "run").run().rows}
    assert rows["latency"]["parity_status"] == "pass" and rows["latency"]["status"] == "ok"
    assert rows["throughput"]["parity_status"] == "fail" and rows["throughput"]["status"] == "parity_failed"
    assert rows["throughput"]["valid"] is False and rows["throughput"]["rel_l2_err"] > 1e-4
    assert np.isfinite(rows["latency"]["host_peak_rss_mb"]) and rows["latency"]["host_peak_rss_mb"] > 0
