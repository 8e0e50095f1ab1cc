"""The images a model is fed, in one place: seeded synthetic images, real images prepared as
torchvision's ImageNet evaluation prepares them, and one reader of labels.

Parity, quantization calibration and LoadGen's accuracy runs all take their images from here,
so a folder given to any command is read by the same rules.

Labels come either as class folders named by class index (``3/a.jpg`` is class 3) or as a
labels file of ``<image file> <class index>`` lines for the images directly in a folder (the
file name may hold spaces; it is matched by name, without any folder part).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm"}
# Images per inference call when a set is run in pieces (parity, accuracy): a batch other than
# 1, and the largest TensorRT profiles must cover (exporters.tensorrt_export.plan_profiles).
CHUNK = 8


def synthetic_images(count: int, size: int = 224, seed: int = 0, in_channels: int = 3) -> torch.Tensor:
    """ImageNet-normalised images with spatial structure (smooth blobs, not pixel noise).

    Deterministic for a seed. Upsampled low-resolution noise gives each image its own colours
    and shapes, so a network's response differs from image to image as it does on photos.
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, in_channels, 8, 8, generator=generator)
    images = nn.functional.interpolate(coarse, size=(size, size), mode="bicubic",
                                       align_corners=False)
    images = images + 0.1 * torch.rand(count, in_channels, size, size, generator=generator)
    images = images.clamp(0, 1)
    if in_channels == 3:
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (images - mean) / std
    return (images - 0.5) / 0.25


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


def read_labels(labels: str | Path, folder: str | Path) -> np.ndarray:
    """The class index of every image in ``folder`` (in ``image_files`` order) from a labels
    file of ``<image file> <class index>`` lines; ValueError naming the line or the image."""
    labels = Path(labels)
    if not labels.is_file():
        raise ValueError(f"labels file not found: {labels}")
    table = {}
    for number, line in enumerate(labels.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, _, label = line.strip().rpartition(" ")
        if not name.strip() or not label.isdigit():
            raise ValueError(f"{labels}:{number}: expected '<image file> <class index>', got {line.strip()!r}")
        table[Path(name.strip()).name] = int(label)
    files = image_files(folder)
    missing = [f.name for f in files if f.name not in table]
    if missing:
        raise ValueError(f"{labels} gives no class for {missing[0]} ({len(missing)} images unlabelled)")
    names = {f.name for f in files}
    absent = [name for name in table if name not in names]
    if absent:
        raise ValueError(f"{labels} names {absent[0]}, which is not an image in {folder} ({len(absent)} such)")
    return np.array([table[f.name] for f in files])


def load_labelled_images(folder: str | Path, size: int = 224,
                         labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and their class indices: class folders named by index, or images with a labels
    file (``read_labels``). Images alone: (images, None)."""
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
    return images, (None if labels is None else read_labels(labels, folder))


def parity_images(size: int, count: int = 32, seed: int = 0, folder: str | Path | None = None) -> np.ndarray:
    """The images parity runs on: every image of ``folder``, or ``count`` seeded ones."""
    if folder is not None:
        return load_images(folder, size)
    return synthetic_images(count, size, seed=seed).numpy()


def in_chunks(fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """``fn`` over ``images`` in pieces of ``chunk``, outputs concatenated in order."""
    return np.concatenate([fn(images[i:i + chunk]) for i in range(0, len(images), chunk)])


def image_paths(folder: str | Path) -> list[Path]:
    """The image files of a folder and of its class folders (one level down), sorted."""
    folder = Path(folder)
    nested = sorted(p for sub in sorted(folder.iterdir()) if sub.is_dir() for p in sub.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    return nested or image_files(folder)


def _content(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def images_sha256(folder: str | Path) -> str:
    """One hash of a folder's images by content (their names and order do not count)."""
    import hashlib

    return hashlib.sha256("".join(sorted(_content(p) for p in image_paths(folder))).encode()).hexdigest()


def require_disjoint(calibration: str | Path, evaluation: str | Path) -> None:
    """ValueError when the calibration images include any of the evaluation images (by content):
    a quantization calibrated on the images it is judged on is judged on what it has seen."""
    seen = {_content(p): p.name for p in image_paths(calibration)}
    shared = [p.name for p in image_paths(evaluation) if _content(p) in seen]
    if shared:
        raise ValueError(f"--calibration-images {calibration} and --images {evaluation} share {len(shared)} images "
                         f"(e.g. {shared[0]}): calibrate on images the accuracy is not judged on")


def require_labels_fit(labels: np.ndarray, classes: int, where: str) -> None:
    """ValueError when a label names a class the weights do not have."""
    bad = labels[(labels < 0) | (labels >= classes)]
    if len(bad):
        raise ValueError(f"{where} names class {int(bad[0])}, outside the {classes} classes of the weights "
                         f"({len(bad)} labels out of range)")


@dataclass(frozen=True, eq=False)
class EvaluationSet:
    """The images a cell's parity and accuracy are judged on, with their labels when known."""

    images: np.ndarray = field(repr=False)
    labels: np.ndarray | None = field(repr=False)
    real: bool  # images from a folder, not seeded ones
    sha256: str | None  # the folder's images by content (None: seeded)


def evaluation_set(size: int, count: int = 32, folder: str | Path | None = None,
                   labels: str | Path | None = None) -> EvaluationSet:
    """Every image of ``folder`` (class folders give labels; so does a labels file), or ``count``
    seeded ones."""
    if folder is None:
        return EvaluationSet(parity_images(size, count), None, False, None)
    images, found = load_labelled_images(folder, size, labels)
    return EvaluationSet(images, found, True, images_sha256(folder))


def labels_of(folder: str | Path, labels: str | Path | None = None) -> np.ndarray | None:
    """The class indices a folder's images carry (class folders or a labels file), without
    reading the images; None when it has none."""
    folder = Path(folder)
    if labels is not None:
        return read_labels(labels, folder)
    classes = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if not classes:
        return None
    bad = [p.name for p in classes if not p.name.isdigit()]
    if bad:
        raise ValueError(f"class folder names must be class indices, got {bad[0]!r} in {folder}")
    return np.array([int(p.name) for p in classes for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES])
