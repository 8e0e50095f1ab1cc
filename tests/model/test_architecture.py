import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resnet_bench.model import ResNet
from resnet_bench.model.architecture import DEPTHS, PAPER_GMACS, count_macs, count_params, layers

# REFERENCE.md: torchvision's _ops (v1.5) and parameter counts.
TORCHVISION_GMACS = {18: 1.814, 34: 3.664, 50: 4.089, 101: 7.801, 152: 11.514}
PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}


@pytest.mark.parametrize("depth", DEPTHS)
def test_v1_matches_paper_table_1(depth):
    gmacs = count_macs(depth, "v1") / 1e9
    assert abs(gmacs - PAPER_GMACS[depth]) / PAPER_GMACS[depth] < 0.02


@pytest.mark.parametrize("depth", DEPTHS)
def test_v15_matches_torchvision(depth):
    gmacs = count_macs(depth, "v1.5") / 1e9
    assert abs(gmacs - TORCHVISION_GMACS[depth]) / TORCHVISION_GMACS[depth] < 0.005


def test_v15_costs_more_than_v1_only_for_bottlenecks():
    assert count_macs(18, "v1") == count_macs(18, "v1.5")
    assert count_macs(50, "v1.5") > count_macs(50, "v1")


@pytest.mark.parametrize("depth", DEPTHS)
def test_params(depth):
    assert count_params(depth) == PARAMS[depth]
    with torch.device("meta"):
        model = ResNet(depth)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[depth]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("variant", ["v1", "v1.5"])
@pytest.mark.parametrize("size", [224, 97])
def test_analytic_count_agrees_with_torch_flop_counter(depth, variant, size):
    # An independent count: torch counts 2 FLOPs per multiply-add of convs and matmuls.
    with torch.device("meta"):
        model = ResNet(depth, variant)
        x = torch.empty(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    assert counter.get_total_flops() == 2 * count_macs(depth, variant, size)


def test_layer_names_are_real_parameters():
    with torch.device("meta"):
        model = ResNet(50)
    names = dict(model.named_parameters())
    for layer in layers(50):
        assert f"{layer.name}.weight" in names


@pytest.mark.parametrize("bad", [
    dict(depth=20), dict(depth=50, variant="v2"), dict(depth=18, input_size=0),
])
def test_bad_arguments_name_the_problem(bad):
    with pytest.raises(ValueError, match="depth|variant|input size"):
        count_macs(**bad)
