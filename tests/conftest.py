import functools

import pytest
import torch

from resnet_bench.model import build_model


@functools.cache
def _cached_model(depth: int, variant: str):
    return build_model(depth, variant)


@pytest.fixture
def resnet18_model():
    """The seeded, calibrated ResNet-18, built once per session (treat as read-only)."""
    return _cached_model(18, "v1.5")


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield
