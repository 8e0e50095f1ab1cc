"""resnet-bench: export, check and benchmark ResNet-18..152 across runtimes.

The package is layered by role, each sub-package importing only from those below it (checked
by ``make lint``): ``util``; ``model``, ``numerics``, ``machine``, ``measure.timing``; ``results``;
``exporters`` (its own package); ``backends`` and ``measure.roofs``; ``parity``; ``scenarios``;
``sweep`` and ``gate``; ``report``; ``cli``. The public names below are the model's.
"""

from importlib import import_module

_PUBLIC = {"DEPTHS": "architecture", "PAPER_GMACS": "architecture", "VARIANTS": "architecture",
           "count_macs": "architecture", "count_params": "architecture", "synthetic_images": "images",
           **{name: "network" for name in ("ResNet", "WeightsError", "build_model", "resnet18", "resnet34",
                                           "resnet50", "resnet101", "resnet152")}}


def __getattr__(name: str):
    """The model's public names, imported on first use: ``import resnet_bench.gate.worker`` (or
    the CLI's ``--help``) does not pay for torch."""
    if name in _PUBLIC:
        return getattr(import_module(f"resnet_bench.model.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'resnet_bench' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "DEPTHS", "PAPER_GMACS", "VARIANTS", "ResNet", "WeightsError", "build_model", "count_macs",
    "count_params", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "synthetic_images",
]
