"""What identifies a model: everything that changes its weights or its graph."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

from resnet_bench.model.architecture import check_depth, check_input_size, check_variant
from resnet_bench.model.network import ResNet, build_model, weights_classes
from resnet_bench.util.files import file_sha256

SEEDED_CLASSES = 1000


@dataclass(frozen=True)
class ModelSpec:
    depth: int = 50
    variant: str = "v1.5"
    weights: str | None = None  # path of a torchvision-format state_dict; None: seeded
    num_classes: int | None = None  # None: the weights' own (a fine-tuned net's 10, say), 1000 when seeded
    input_size: int = 224
    seed: int = 0

    def __post_init__(self) -> None:
        check_depth(self.depth)
        check_variant(self.variant)
        check_input_size(self.input_size)
        if self.weights is not None and not Path(self.weights).is_file():
            raise ValueError(f"weights file not found: {self.weights}")
        if self.num_classes is None:  # resolved once: every key and every build sees the same count
            classes = _classes(*_stamp(self.weights)) if self.weights else SEEDED_CLASSES
            object.__setattr__(self, "num_classes", classes)
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")

    @property
    def name(self) -> str:
        return f"resnet{self.depth}-{self.variant}-{self.input_size}px"

    def key_fields(self) -> dict:
        """The fields an artifact key depends on: the weights by content, not by path."""
        fields = asdict(self)
        fields["weights"] = weights_sha256(self.weights) if self.weights else None
        if self.weights:
            fields.pop("seed")
        return fields

    def build(self) -> ResNet:
        return build_model(self.depth, self.variant, self.num_classes, weights=self.weights,
                           seed=self.seed)


def _stamp(path: str) -> tuple[str, int, int]:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=32)
def _classes(path: str, mtime_ns: int, size: int) -> int:  # read again when the file changes
    return weights_classes(path)


def weights_sha256(path: str) -> str:
    return _sha256_cached(*_stamp(path))


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:  # re-hashed when the file changes
    return file_sha256(path)
