"""The canonical ResNet: Table 1 of He et al. 2015 with torchvision's parameter names.

A torchvision-format state_dict loads with ``strict=True``. Depth is data
(``model.architecture.ARCHITECTURES``); one builder makes every depth.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from resnet_bench.model.architecture import (
    ARCHITECTURES,
    EXPANSION,
    WIDTHS,
    check_depth,
    check_variant,
)
from resnet_bench.model.images import synthetic_images
from resnet_bench.util.errors import first_message


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, downsample: nn.Module | None,
                 variant: str) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, downsample: nn.Module | None,
                 variant: str) -> None:
        super().__init__()
        # v1 (the paper) puts the stride on the first 1x1 conv, which discards three quarters
        # of the input before any 3x3 sees it; v1.5 (torchvision) moves it to the 3x3.
        s1, s2 = (stride, 1) if variant == "v1" else (1, stride)
        self.conv1 = _conv1x1(in_channels, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, s2)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    def __init__(self, depth: int, variant: str = "v1.5", num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        check_depth(depth)
        check_variant(variant)
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        self.depth, self.variant = depth, variant
        block_name, counts = ARCHITECTURES[depth]
        block = BLOCKS[block_name]
        expansion = EXPANSION[block_name]

        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for stage, (width, count) in enumerate(zip(WIDTHS, counts, strict=True), start=1):
            blocks = []
            for index in range(count):
                stride = 2 if stage > 1 and index == 0 else 1
                downsample = None
                if stride != 1 or channels != width * expansion:
                    downsample = nn.Sequential(_conv1x1(channels, width * expansion, stride),
                                               nn.BatchNorm2d(width * expansion))
                blocks.append(block(channels, width, stride, downsample, variant))
                channels = width * expansion
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class WeightsError(ValueError):
    """A weights file that cannot be used for the model asked for."""


def load_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state_dict safely (``weights_only=True``); raise WeightsError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise WeightsError(f"cannot read weights file {path}: {first_message(exc)}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint around the state_dict
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state_dict of tensors "
                           f"(found {type(state).__name__})")
    return state


def weights_classes(path: str | os.PathLike) -> int:
    """The class count of a torchvision-format state_dict: the rows of its ``fc.weight``."""
    state = load_state_dict(path)
    if "fc.weight" not in state or state["fc.weight"].dim() != 2:
        raise WeightsError(f"weights file {path} has no fc.weight of shape (classes, features): not a ResNet's")
    return int(state["fc.weight"].shape[0])


def _mismatches(model: nn.Module, state: dict[str, Tensor], limit: int = 3) -> list[str]:
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            problems.append(f"{label}: {', '.join(items[:limit])}{more}")
    return problems


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    state = load_state_dict(path)
    problems = _mismatches(model, state)
    if problems:
        raise WeightsError(f"weights file {path} does not fit resnet{model.depth}: "
                           + "; ".join(problems))
    model.load_state_dict(state, strict=True)


@torch.no_grad()
def _calibrate(model: ResNet, seed: int, images: int = 64, size: int = 128) -> None:
    """Make an untrained net behave like a trained one in what the suite measures.

    A freshly initialised deep ResNet gives the same top-1 class for every input, which
    makes top-1 agreement meaningless. So: (1) estimate every BatchNorm's statistics on
    synthetic images (cumulative average, as if the net had been trained on them), then
    (2) centre and scale each class's logit over those images, so every class wins for
    some inputs and per-image logits have a spread near 1.
    """
    calibration = synthetic_images(images, size=size, seed=seed + 1,
                                   in_channels=model.conv1.in_channels)
    batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in batchnorms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the calibration batches
    model.train()
    for batch in calibration.split(16):
        model(batch)
    for bn in batchnorms:
        bn.momentum = 0.1
    model.eval()
    logits = model(calibration)
    mean, std = logits.mean(0), logits.std(0).clamp_min(1e-6)
    model.fc.weight.div_(std[:, None])
    model.fc.bias.sub_(mean).div_(std)


def _initialise(model: ResNet, seed: int, zero_init_residual: bool) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            module.weight.data.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    bound = 1.0 / model.fc.in_features**0.5
    model.fc.weight.data.uniform_(-bound, bound, generator=generator)
    model.fc.bias.data.uniform_(-bound, bound, generator=generator)
    # Scale each residual branch's last BatchNorm by 1/sqrt(blocks) (SkipInit/Fixup style),
    # as training does to these scales. With scale 1 an untrained ResNet-152 is so sensitive
    # that its own fp32 and fp64 outputs differ by 1e-3 (relative L2), which would make fp32
    # parity between runtimes untestable; with 1/sqrt(blocks) they differ by ~5e-6.
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    scale = 0.0 if zero_init_residual else len(blocks) ** -0.5
    for block in blocks:
        nn.init.constant_(block.last_bn().weight, scale)


def build_model(depth: int, variant: str = "v1.5", num_classes: int = 1000, in_channels: int = 3,
                zero_init_residual: bool = False, weights: str | os.PathLike | None = None,
                seed: int = 0) -> ResNet:
    """Build a ResNet in eval mode on the CPU.

    With ``weights``, load a torchvision-format state_dict from that file. Without, initialise
    deterministically from ``seed`` and calibrate (see ``_calibrate``), so that two calls give
    identical weights and the outputs vary with the input as a trained net's do.
    """
    model = ResNet(depth, variant, num_classes, in_channels)
    if weights is not None:
        load_weights(model, weights)
    else:
        _initialise(model, seed, zero_init_residual)
        _calibrate(model, seed)
    return model.eval()


def resnet18(**kwargs) -> ResNet:
    return build_model(18, **kwargs)


def resnet34(**kwargs) -> ResNet:
    return build_model(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    return build_model(50, **kwargs)


def resnet101(**kwargs) -> ResNet:
    return build_model(101, **kwargs)


def resnet152(**kwargs) -> ResNet:
    return build_model(152, **kwargs)
