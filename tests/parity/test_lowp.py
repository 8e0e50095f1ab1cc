"""int8 and bf16 cells: accuracy metrics, real-weights accuracy with labels, ISA, roofs."""

import numpy as np
import pytest
import torch

from exporters.pipeline import Exporter, ExportOptions
from resnet_bench.backends import BackendOptions, backend_class
from resnet_bench.machine import isa
from resnet_bench.measure import roofs
from resnet_bench.model.images import load_images, load_labelled_images, parity_images
from resnet_bench.model.spec import ModelSpec
from resnet_bench.numerics.agreement import agreement, logit_noise
from resnet_bench.parity.accuracy import AccuracyBudget, accuracy_columns
from resnet_bench.parity.verdict import judge, reference_logits, run_parity
from tests.conftest import SMALL


def _logits(margins, classes=10, seed=0):
    """Reference logits whose top-1 margin per image is given exactly."""
    rng = np.random.default_rng(seed)
    ref = rng.uniform(-3, 0, (len(margins), classes))
    ref[:, 0], ref[:, 1] = 1.0, 1.0 - np.asarray(margins)
    return ref


def test_noise_only_flips_images_whose_margin_is_below_it():
    margins = np.r_[np.full(50, 0.001), np.full(50, 1.0)]  # half coin tosses, half clear
    ref = _logits(margins)
    out = ref + np.random.default_rng(1).normal(0, 0.02, ref.shape)
    metrics = agreement(out, ref)
    assert 0.03 < metrics["logit_noise"] < 0.1  # d is N(0, 0.028): its 95th percentile ~0.055
    assert metrics["top1_agreement"] < 0.9  # coin tosses flipped
    assert metrics["confident_images"] == 50 and metrics["confident_top1_agreement"] == 1.0
    assert judge(metrics, "bf16") == ""  # judged by the error (rel L2 ~0.01), not by top-1


def test_errors_that_land_on_clear_decisions_show_below_the_noise():
    ref = _logits(np.full(50, 1.0))
    out = ref + np.random.default_rng(2).normal(0, 0.001, ref.shape)
    out[:2, 1] += 1.5  # two clear decisions overturned
    metrics = agreement(out, ref)
    assert logit_noise(out, ref) < 0.01 and metrics["confident_images"] == 50
    assert metrics["confident_top1_agreement"] == 0.96 == metrics["top1_agreement"]


def test_accuracy_relative_to_fp32_follows_mlperf_rule():
    labels = np.arange(100) % 10
    ref = np.full((100, 10), -1.0)
    ref[np.arange(100), labels] = 1.0
    ref[80:, :] = 0.0
    ref[80:, 0] = 1.0  # fp32 right on 80 of 100 (and on those of class 0 among the last 20)
    fp32_right = np.argmax(ref, 1) == labels
    out = ref.copy()
    flipped = np.flatnonzero(fp32_right)[:2]
    out[flipped, (labels[flipped] + 1) % 10] = 5.0  # the cell gets 2 of fp32's right answers wrong
    judged = accuracy_columns(out, ref, labels, "int8")
    assert judged["reference_accuracy_top1"] == pytest.approx(fp32_right.mean())
    assert judged["accuracy_top1"] == pytest.approx(fp32_right.mean() - 0.02)
    assert judged["accuracy_drop"] == pytest.approx(0.02 / fp32_right.mean())  # 2.5% of fp32's
    assert judged["accuracy_status"] == "fail" and "over the 1.0% allowed" in judged["accuracy_reason"]
    assert judged["accuracy_drop_low"] < judged["accuracy_drop"] < judged["accuracy_drop_high"]
    # a 3% budget takes it; the same logits judged against themselves lose nothing
    assert accuracy_columns(out, ref, labels, "int8", AccuracyBudget(max_drop=0.03))["accuracy_status"] == "pass"
    same = accuracy_columns(ref, ref, labels, "int8")
    assert same["accuracy_status"] == "pass" and same["accuracy_drop"] == 0 and same["top1_agreement"] == 1.0
    no_labels = accuracy_columns(out, ref, None, "int8")
    assert no_labels["top1_agreement"] == 0.98 and no_labels["accuracy_status"] == "pass"
    assert "accuracy_top1" not in no_labels
    seeded = accuracy_columns(out, ref, labels, "int8", real=False)
    assert seeded["accuracy_status"] == "not established" and "give --weights" in seeded["accuracy_reason"]
    assert accuracy_columns(out, ref, labels, "fp16", real=False)["accuracy_status"] == "not needed"


def _pngs(folder, count, seed):
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 255, (4, 4, 3), np.uint8)
        Image.fromarray(coarse).resize((90, 72), Image.Resampling.BICUBIC).save(folder / f"img{i:02d}.png")
    return folder


def test_real_weights_and_labelled_folder_end_to_end(tmp_path):
    pytest.importorskip("onnxruntime")
    weights = tmp_path / "resnet18.pth"
    torch.save(SMALL.build().state_dict(), weights)
    spec = ModelSpec(18, weights=str(weights), input_size=64)
    exporter = Exporter(spec, ExportOptions(out=tmp_path / "store"))
    flat = _pngs(tmp_path / "flat", 12, seed=4)
    predicted = reference_logits(exporter, load_images(flat, 64)).argmax(1)
    # Class folders named by class index: fp32 is right on 9 images and wrong on 3.
    classes = tmp_path / "classes"
    truth = predicted.copy()
    truth[:3] = (truth[:3] + 1) % 1000
    lines = []
    for i, path in enumerate(sorted(flat.iterdir())):
        (classes / str(truth[i])).mkdir(parents=True, exist_ok=True)
        (classes / str(truth[i]) / path.name).write_bytes(path.read_bytes())
        lines.append(f"{path.name} {truth[i]}")
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n")

    images, labels = load_labelled_images(classes, 64)
    assert images.shape == (12, 3, 64, 64) and sorted(labels) == sorted(truth)
    flat_images, flat_labels = load_labelled_images(flat, 64, labels=tmp_path / "labels.txt")
    assert np.array_equal(flat_labels, truth) and np.array_equal(flat_images, load_images(flat, 64))

    verdicts = {v.precision: v for v in run_parity(exporter, ("onnxruntime",), "cpu", ("fp32", "int8"), images)}
    reference = reference_logits(exporter, images)
    fp32 = accuracy_columns(verdicts["fp32"].output, reference, labels, "fp32")
    assert fp32["accuracy_status"] == "pass" and fp32["top1_agreement"] == 1.0
    assert fp32["reference_accuracy_top1"] == fp32["accuracy_top1"] == 0.75 and fp32["accuracy_drop"] == 0
    int8 = accuracy_columns(verdicts["int8"].output, reference, labels, "int8")
    assert int8["reference_accuracy_top1"] == 0.75 and int8["accuracy_images"] == 12
    assert int8["accuracy_drop"] == pytest.approx(1 - int8["accuracy_top1"] / 0.75)
    assert int8["accuracy_status"] == ("pass" if int8["accuracy_top1"] >= 0.99 * 0.75 else "fail")

    with pytest.raises(ValueError, match="class folder names must be class indices"):
        (classes / "cats").mkdir()
        load_labelled_images(classes, 64)
    (tmp_path / "short.txt").write_text(lines[0] + "\n")
    with pytest.raises(ValueError, match="gives no class for img01.png"):
        load_labelled_images(flat, 64, labels=tmp_path / "short.txt")


def test_int8_and_bf16_parity_cells_on_the_small_model(store_dir, small_artifacts):
    pytest.importorskip("nncf")
    exporter = Exporter(SMALL, ExportOptions(out=store_dir))
    verdicts = run_parity(exporter, ("torch", "onnxruntime", "openvino"), "cpu", ("int8", "bf16"),
                          parity_images(64, count=32))
    cells = {(v.backend, v.precision): v for v in verdicts}
    for cell in [("onnxruntime", "int8"), ("openvino", "int8")]:
        assert cells[cell].status == "pass", cells[cell]
        assert 1e-3 < cells[cell].rel_l2_err < 0.5 and cells[cell].logit_noise > 0
    assert cells[("openvino", "int8")].compute_precision == "int8"  # read back: every convolution ran int8
    assert cells[("torch", "int8")].status == "unavailable"
    assert cells[("onnxruntime", "bf16")].status == "unavailable"
    if isa.bf16_unavailable_reason() is None:
        for cell in [("torch", "bf16"), ("openvino", "bf16")]:
            assert cells[cell].status == "pass", cells[cell]
            assert 1e-4 < cells[cell].rel_l2_err < 0.1


def test_cpu_flags_and_bf16_reason(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512bw avx512_vnni\n\nprocessor\t: 1\n")
    flags = isa.cpu_flags(cpuinfo)
    assert flags == {"fpu", "avx2", "avx512bw", "avx512_vnni"}
    assert isa.int8_isa(flags) == "AVX512-VNNI" and isa.int8_isa(frozenset({"avx2"})) == "AVX2"
    assert "no bf16 instructions" in isa.bf16_unavailable_reason(flags)
    assert isa.bf16_unavailable_reason(frozenset({"avx512_bf16"})) is None
    assert isa.cpu_flags(tmp_path / "missing") == frozenset()
    monkeypatch.setattr(isa, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    reason = backend_class("torch").unavailable_reason(BackendOptions(precision="bf16"))
    assert reason and "no bf16 instructions" in reason


def test_int8_gemms_compute_the_product_they_are_timed_on():
    a, b = roofs._operands(64)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    torch_mm = roofs.INT8_GEMMS["torch._int_mm"](64, 1)().numpy()
    assert np.array_equal(torch_mm, a.astype(np.int8).astype(np.int64) @ b.astype(np.int64))
    pytest.importorskip("onnxruntime")
    assert np.array_equal(roofs.INT8_GEMMS["onnxruntime MatMulInteger"](64, 1)()[0], exact)
    pytest.importorskip("openvino")
    from exporters.quantize import executed_precisions

    fn = roofs.INT8_GEMMS["openvino int8 MatMul"](64, 1)
    out = next(iter(fn().values())) / 1e-4  # dequantization scales 0.01 x 0.01
    assert np.abs(out - exact).max() < 0.01 * np.abs(exact).max()  # int8 requantization, not exact
    import openvino as ov

    compiled = ov.Core().compile_model(roofs._openvino_int8_model(a, b), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert executed_precisions(compiled)["FullyConnected"] == {"i8": 1}  # the product runs in int8
