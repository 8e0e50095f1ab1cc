"""resnet-bench: export, check and benchmark ResNet-18..152 across runtimes."""

from resnet_bench.architecture import DEPTHS, PAPER_GMACS, VARIANTS, count_macs, count_params
from resnet_bench.model import (
    ResNet,
    WeightsError,
    build_model,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    synthetic_images,
)

__version__ = "0.1.0"

__all__ = [
    "DEPTHS", "PAPER_GMACS", "VARIANTS", "ResNet", "WeightsError", "build_model", "count_macs",
    "count_params", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "synthetic_images",
]
