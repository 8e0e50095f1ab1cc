"""Parity: does a backend compute what PyTorch fp32 computes, on the same inputs?

A cell is a verdict with its numbers (pass / fail / unavailable / error), never an exception.
Tolerances live in ``tolerances.TOLERANCES``; the precision table says which applies to a
backend x device x precision and what compute precision the backend must report.
A throughput-mode backend is checked through every one of its request streams (workers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from exporters.pipeline import Exporter
from resnet_bench import precision as precision_table
from resnet_bench.accuracy import agreement, top1_accuracy
from resnet_bench.backends import Backend, BackendOptions, BackendUnavailable
from resnet_bench.model import IMAGENET_MEAN, IMAGENET_STD, synthetic_images
from resnet_bench.runner import open_backend
from resnet_bench.tolerances import MIN_RELATIVE_ACCURACY, TOLERANCES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm"}
CHUNK = 8  # images per inference call: exercises a batch other than 1 (TensorRT profiles cover it)


@dataclass(frozen=True)
class Verdict:
    backend: str
    precision: str
    device: str
    status: str  # pass / fail / unavailable / error
    max_abs_err: float | None = None
    mean_abs_err: float | None = None
    rel_l2_err: float | None = None
    cosine: float | None = None
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    logit_noise: float | None = None  # accuracy.py: what top-1 agreement is judged against
    confident_images: int | None = None
    confident_top1_agreement: float | None = None
    reason: str = ""
    compute_precision: str | None = None
    threads: int | None = None
    streams: int | None = None
    provider: str | None = None

    def row(self) -> dict:
        return asdict(self)


def compare(output: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(np.asarray(output, np.float64) - np.asarray(reference, np.float64))
    metrics = agreement(output, reference)
    metrics.pop("images")
    return {"max_abs_err": float(diff.max()), "mean_abs_err": float(diff.mean()), **metrics}


def judge(metrics: dict, precision: str) -> str:
    """Empty when within tolerance, else the reason in words. ``precision`` is a tolerance key."""
    tolerance = TOLERANCES[precision]
    reasons = []
    if metrics["rel_l2_err"] > tolerance.max_rel_l2:
        reasons.append(f"rel L2 {metrics['rel_l2_err']:.2e} > {tolerance.max_rel_l2:.0e}")
    if metrics["top1_agreement"] < tolerance.min_top1:
        reasons.append(f"top-1 agreement {metrics['top1_agreement']:.1%} < {tolerance.min_top1:.0%}")
    return "; ".join(reasons)


def image_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder``, sorted (the order ``load_images`` stacks them); ValueError
    when it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def load_images(folder: str | Path, size: int = 224) -> np.ndarray:
    """Real images, as torchvision's ImageNet evaluation prepares them: resize the short side
    to 256/224 of ``size``, centre-crop ``size``, scale to [0, 1], normalise."""
    from PIL import Image

    files = image_files(folder)
    short = round(size * 256 / 224)
    batch = []
    for path in files:
        with Image.open(path) as image:
            image = image.convert("RGB")
            w, h = image.size
            scale = short / min(w, h)
            image = image.resize((max(short, round(w * scale)), max(short, round(h * scale))),
                                 Image.Resampling.BILINEAR)
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
            batch.append(np.asarray(image, np.float32) / 255.0)
    array = np.stack(batch).transpose(0, 3, 1, 2)
    mean = np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((array - mean) / std)


def parity_images(size: int, count: int = 32, seed: int = 0, folder: str | Path | None = None) -> np.ndarray:
    if folder is not None:
        return load_images(folder, size)
    return synthetic_images(count, size, seed=seed).numpy()


def _in_chunks(fn, images: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(images[i:i + CHUNK]) for i in range(0, len(images), CHUNK)])


def reference_logits(exporter: Exporter, images: np.ndarray) -> np.ndarray:
    model = exporter.model()
    with torch.inference_mode():
        return _in_chunks(lambda x: model(torch.from_numpy(x)).numpy(), images)


def check_cell(exporter: Exporter, backend: str, options: BackendOptions, images: np.ndarray,
               reference: np.ndarray) -> Verdict:
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    try:
        opened = open_backend(backend, options, exporter)
    except BackendUnavailable as exc:
        return Verdict(**cell, status="unavailable", reason=str(exc))
    except Exception as exc:  # a failing cell is a row, the matrix goes on
        return Verdict(**cell, status="error", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
    with opened.backend as runner:
        return check_runner(runner, backend, images, reference)


def _worker_outputs(runner: Backend, images: np.ndarray) -> list[np.ndarray]:
    """The images through each of a throughput-mode backend's workers (its request streams,
    made as the harness makes them: ``in_flight()`` calls of ``worker()`` per input)."""
    per_worker: list[list[np.ndarray]] = [[] for _ in range(runner.in_flight())]
    for i in range(0, len(images), CHUNK):
        prepared = runner.prepare(images[i:i + CHUNK])
        for outputs, work in zip(per_worker, [runner.worker(prepared) for _ in per_worker], strict=True):
            output = work()
            if output is None:
                raise ValueError(f"{runner.name} workers return no output to check")
            outputs.append(np.array(runner.fetch(output)))
    return [np.concatenate(outputs) for outputs in per_worker]


def _worst(metrics: list[dict]) -> dict:
    worst = max(metrics, key=lambda m: m["rel_l2_err"])
    return {**worst, "top1_agreement": min(m["top1_agreement"] for m in metrics),
            "top5_agreement": min(m["top5_agreement"] for m in metrics)}


def check_runner(runner: Backend, backend: str, images: np.ndarray, reference: np.ndarray) -> Verdict:
    """The verdict for a backend already loaded (the harness times the same instance next).
    In throughput mode every worker's output is checked, and the worst one is the verdict."""
    options = runner.options
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    try:
        if options.mode == "throughput":
            outputs = _worker_outputs(runner, images)
        else:
            outputs = [_in_chunks(runner.infer, images)]
    except Exception as exc:
        return Verdict(**cell, status="error", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
    return judge_outputs(runner, backend, outputs, reference)


def judge_outputs(runner: Backend, backend: str, outputs: list[np.ndarray], reference: np.ndarray) -> Verdict:
    """The verdict on outputs a backend gave for the reference's images (the worst of several,
    e.g. one per request stream), with what the runtime says it ran."""
    options = runner.options
    cell = dict(backend=backend, precision=options.precision, device=options.device)
    info = runner.describe()
    metrics = _worst([compare(output, reference) for output in outputs])
    reasons = [judge(metrics, precision_table.tolerance_key(backend, options.device, options.precision))]
    expected = precision_table.lookup(backend, options.device, options.precision)
    reported = info.get("compute_precision")
    if expected is not None and reported != expected.compute:
        reasons.append(f"runs {reported}, the precision table expects {expected.compute}")
    reason = "; ".join(r for r in reasons if r)
    return Verdict(**cell, status="fail" if reason else "pass", reason=reason, **metrics,
                   compute_precision=reported, threads=info.get("threads"),
                   streams=info.get("streams"), provider=info.get("provider"))


def run_parity(exporter: Exporter, backends: tuple[str, ...], device: str, precisions: tuple[str, ...],
               images: np.ndarray, threads: int | None = None, cuda_graphs: bool = False) -> list[Verdict]:
    reference = reference_logits(exporter, images)
    options = [BackendOptions(device, precision, threads, cuda_graphs=cuda_graphs) for precision in precisions]
    return [check_cell(exporter, backend, option, images, reference) for backend in backends for option in options]


# -- real weights and images: accuracy ------------------------------------------------------
@dataclass(frozen=True)
class AccuracyVerdict:
    """With real weights and images: top-1 agreement with PyTorch fp32 and, with labels,
    top-1 accuracy relative to fp32's (MLPerf: a cell keeps at least 99% of it)."""

    backend: str
    precision: str
    status: str  # pass / fail / unavailable / error
    images: int
    top1_agreement: float | None = None
    fp32_top1: float | None = None  # PyTorch fp32's accuracy against the labels
    top1: float | None = None  # this cell's accuracy against the labels
    relative_top1: float | None = None  # top1 / fp32_top1
    reason: str = ""

    def row(self) -> dict:
        return asdict(self)


def load_labelled_images(folder: str | Path, size: int = 224,
                         labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and their class indices. ``folder`` holds either class folders named by class
    index (``3/a.jpg``: class 3) or images; ``labels`` is a file of ``<image file> <class>``
    lines for the images directly in ``folder``. No labels: (images, None)."""
    folder = Path(folder)
    classes = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name) if folder.is_dir() else []
    if classes and labels is None:
        bad = [p.name for p in classes if not p.name.isdigit()]
        if bad:
            raise ValueError(f"class folder names must be class indices, got {bad[0]!r} in {folder}")
        parts = [load_images(p, size) for p in classes]
        return np.concatenate(parts), np.concatenate([np.full(len(x), int(p.name)) for x, p in zip(parts, classes,
                                                                                                     strict=True)])
    images = load_images(folder, size)
    if labels is None:
        return images, None
    table = {}
    for number, line in enumerate(Path(labels).read_text().splitlines(), 1):
        if line.strip():
            name, _, label = line.strip().rpartition(" ")
            if not name or not label.isdigit():
                raise ValueError(f"{labels}:{number}: expected '<image file> <class index>', got {line.strip()!r}")
            table[name.strip()] = int(label)
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)  # load_images' order
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"{labels} gives no class for {missing[0]} ({len(missing)} images unlabelled)")
    return images, np.array([table[n] for n in names])


def judge_accuracy(output: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
                   precision: str) -> dict:
    """The numbers of an AccuracyVerdict and the reason it fails ('' when it passes)."""
    tolerance = TOLERANCES[precision]
    agree = float(np.mean(np.argmax(output, 1) == np.argmax(reference, 1)))
    numbers: dict = {"top1_agreement": agree}
    reasons = []
    if agree < tolerance.min_real_top1:
        reasons.append(f"top-1 agreement {agree:.1%} < {tolerance.min_real_top1:.0%}")
    if labels is not None:
        fp32, top1 = top1_accuracy(reference, labels), top1_accuracy(output, labels)
        relative = top1 / fp32 if fp32 > 0 else None
        numbers.update(fp32_top1=fp32, top1=top1, relative_top1=relative)
        if relative is not None and relative < MIN_RELATIVE_ACCURACY:
            reasons.append(f"top-1 accuracy {top1:.1%} is {relative:.1%} of fp32's {fp32:.1%} "
                           f"(< {MIN_RELATIVE_ACCURACY:.0%})")
    return {**numbers, "reason": "; ".join(reasons)}


def accuracy_verdict(exporter: Exporter, backend: str, options: BackendOptions, images: np.ndarray,
                     labels: np.ndarray | None = None, reference: np.ndarray | None = None) -> AccuracyVerdict:
    """One backend x precision on real images against PyTorch fp32 (the exporter's weights)."""
    cell = dict(backend=backend, precision=options.precision, images=len(images))
    if reference is None:
        reference = reference_logits(exporter, images)
    try:
        opened = open_backend(backend, options, exporter)
    except BackendUnavailable as exc:
        return AccuracyVerdict(**cell, status="unavailable", reason=str(exc))
    except Exception as exc:
        return AccuracyVerdict(**cell, status="error", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
    with opened.backend as runner:
        try:
            output = _in_chunks(runner.infer, images)
        except Exception as exc:
            return AccuracyVerdict(**cell, status="error", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
    judged = judge_accuracy(output, reference, labels, options.precision)
    return AccuracyVerdict(**cell, status="fail" if judged["reason"] else "pass", **judged)
