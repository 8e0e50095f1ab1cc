"""The model and its data: ResNet as data (``architecture``: Table 1 of He et al. 2015, the
layers and what each costs), the network itself (``network``: torchvision's parameter names,
weights loading, seeded and calibrated initialisation), what identifies a model (``spec``),
the FLOPs table against the paper (``flops``), and the images a model is fed: seeded synthetic
ones and real ones prepared as torchvision's ImageNet evaluation does, with one labels reader
(``images``)."""

from importlib import import_module


def __getattr__(name: str):
    """The network's names, imported on first use (torch loads only when a model is wanted)."""
    if name == "synthetic_images":
        return import_module("resnet_bench.model.images").synthetic_images
    if name in __all__:
        return getattr(import_module("resnet_bench.model.network"), name)
    raise AttributeError(f"module 'resnet_bench.model' has no attribute {name!r}")


__all__ = ["ResNet", "WeightsError", "build_model", "load_state_dict", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "synthetic_images"]
