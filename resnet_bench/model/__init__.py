"""The model and its data: ResNet as data (``architecture``: Table 1 of He et al. 2015, the
layers and what each costs), the network itself (``network``: torchvision's parameter names,
weights loading, seeded and calibrated initialisation), what identifies a model (``spec``),
the FLOPs table against the paper (``flops``), and the images a model is fed: seeded synthetic
ones and real ones prepared as torchvision's ImageNet evaluation does, with one labels reader
(``images``)."""

from resnet_bench.model.images import synthetic_images
from resnet_bench.model.network import (
    ResNet,
    WeightsError,
    build_model,
    load_state_dict,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)

__all__ = ["ResNet", "WeightsError", "build_model", "load_state_dict", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "synthetic_images"]
