"""ResNet as data: Table 1 of He et al. 2015, and what each layer costs.

Everything here is plain Python (no torch), so the FLOPs table, the export keys
and the reports can use it without building a network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

DEPTHS = (18, 34, 50, 101, 152)
VARIANTS = ("v1", "v1.5")
WIDTHS = (64, 128, 256, 512)

# depth -> (block, blocks per stage). Table 1.
ARCHITECTURES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

# Table 1, "FLOPs" row, in units of 1e9. Section 3.3 says these are multiply-adds.
PAPER_GMACS: dict[int, float] = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}

EXPANSION = {"basic": 1, "bottleneck": 4}


def check_depth(depth: int) -> int:
    if depth not in ARCHITECTURES:
        raise ValueError(f"depth must be one of {', '.join(map(str, DEPTHS))}, got {depth}")
    return depth


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant


def check_input_size(input_size: int) -> int:
    # conv1 (stride 2), maxpool (stride 2) and three strided stages need at least 32 pixels
    # to leave a 1x1 map for the average pool.
    if input_size < 32:
        raise ValueError(f"input size must be at least 32 pixels, got {input_size}")
    return input_size


@dataclass(frozen=True)
class Layer:
    """One conv or fc layer: what the paper counts."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    out_size: int  # spatial side of the output map (1 for fc)
    batchnorm: bool  # followed by a BatchNorm (adds 2 parameters per channel)

    @property
    def macs(self) -> int:
        return self.out_channels * self.out_size**2 * self.in_channels * self.kernel**2

    @property
    def params(self) -> int:
        weights = self.out_channels * self.in_channels * self.kernel**2
        # fc has a bias; convs do not (BatchNorm's shift replaces it).
        extra = 2 * self.out_channels if self.batchnorm else self.out_channels
        return weights + extra


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def layers(depth: int, variant: str = "v1.5", input_size: int = 224, num_classes: int = 1000,
           in_channels: int = 3) -> Iterator[Layer]:
    """Yield every conv and the fc of a ResNet in forward order, with torchvision's names."""
    check_depth(depth)
    check_variant(variant)
    check_input_size(input_size)
    block, counts = ARCHITECTURES[depth]
    expansion = EXPANSION[block]

    size = _conv_out(input_size, 7, 2, 3)
    yield Layer("conv1", in_channels, 64, 7, 2, size, True)
    size = _conv_out(size, 3, 2, 1)  # max pool
    channels = 64
    for stage, (width, count) in enumerate(zip(WIDTHS, counts, strict=True), start=1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            prefix = f"layer{stage}.{index}"
            out = _conv_out(size, 3, stride, 1)
            if block == "basic":
                yield Layer(f"{prefix}.conv1", channels, width, 3, stride, out, True)
                yield Layer(f"{prefix}.conv2", width, width, 3, 1, out, True)
            else:
                # v1 (the paper) strides the first 1x1 conv; v1.5 (torchvision) strides the 3x3,
                # which keeps more information and costs more MACs at the same parameter count.
                s1, s2 = (stride, 1) if variant == "v1" else (1, stride)
                mid = _conv_out(size, 1, s1, 0)
                yield Layer(f"{prefix}.conv1", channels, width, 1, s1, mid, True)
                yield Layer(f"{prefix}.conv2", width, width, 3, s2, out, True)
                yield Layer(f"{prefix}.conv3", width, width * expansion, 1, 1, out, True)
            if stride != 1 or channels != width * expansion:
                yield Layer(f"{prefix}.downsample.0", channels, width * expansion, 1, stride, out, True)
            channels = width * expansion
            size = out
    yield Layer("fc", channels, num_classes, 1, 1, 1, False)


def count_macs(depth: int, variant: str = "v1.5", input_size: int = 224, num_classes: int = 1000,
               in_channels: int = 3) -> int:
    """Multiply-adds of the convs and the fc for one image: the paper's "FLOPs"."""
    return sum(layer.macs for layer in layers(depth, variant, input_size, num_classes, in_channels))


def count_params(depth: int, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Trainable parameters (conv and fc weights, fc bias, BatchNorm scale and shift)."""
    return sum(layer.params for layer in layers(depth, "v1.5", 224, num_classes, in_channels))
