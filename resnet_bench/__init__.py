"""resnet-bench: export, check and benchmark ResNet-18..152 across runtimes.

The package is layered by role, each sub-package importing only from those below it (checked
by ``make lint``): ``util``; ``model``, ``numerics``, ``machine``, ``measure.timing``; ``results``;
``exporters`` (its own package); ``backends`` and ``measure.roofs``; ``parity``; ``scenarios``;
``sweep`` and ``gate``; ``report``; ``cli``. The public names below are the model's.
"""

from resnet_bench.model.architecture import DEPTHS, PAPER_GMACS, VARIANTS, count_macs, count_params
from resnet_bench.model.images import synthetic_images
from resnet_bench.model.network import (
    ResNet,
    WeightsError,
    build_model,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)

__version__ = "0.1.0"

__all__ = [
    "DEPTHS", "PAPER_GMACS", "VARIANTS", "ResNet", "WeightsError", "build_model", "count_macs",
    "count_params", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "synthetic_images",
]
