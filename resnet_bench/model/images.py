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
