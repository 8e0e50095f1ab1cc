import pytest
import torch

from resnet_bench.model import ResNet, WeightsError, build_model, synthetic_images


def test_torchvision_names_and_no_conv_bias():
    model = ResNet(50)
    keys = set(model.state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight",
                "layer1.0.downsample.1.weight", "layer4.2.conv3.weight", "layer4.2.bn3.num_batches_tracked",
                "fc.weight", "fc.bias"):
        assert key in keys
    assert not any(k.startswith("layer") and k.endswith("conv1.bias") for k in keys)
    assert model.state_dict()["layer2.0.conv1.weight"].shape == (128, 256, 1, 1)


def test_basic_block_keys(resnet18_model):
    keys = set(resnet18_model.state_dict())
    assert "layer1.0.downsample.0.weight" not in keys  # 64 -> 64, stride 1: identity shortcut
    assert "layer2.0.downsample.0.weight" in keys
    assert "layer1.0.conv3.weight" not in keys


@pytest.mark.parametrize("variant, strided", [("v1", "conv1"), ("v1.5", "conv2")])
def test_variant_stride_placement(variant, strided):
    block = ResNet(50, variant).layer2[0]
    assert getattr(block, strided).stride == (2, 2)
    assert {"conv1", "conv2"} - {strided} == {n for n in ("conv1", "conv2")
                                               if getattr(block, n).stride == (1, 1)}


def test_seeded_build_is_deterministic(resnet18_model):
    again = build_model(18)
    for key, value in resnet18_model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    other = build_model(18, seed=1)
    assert not torch.equal(other.fc.weight, again.fc.weight)


@pytest.mark.parametrize("depth, size", [(18, 224), (50, 224)])
def test_output_depends_on_input_like_a_trained_net(depth, size, resnet18_model):
    model = resnet18_model if depth == 18 else build_model(depth)
    logits = model(synthetic_images(32, size, seed=1234))
    assert len(set(logits.argmax(1).tolist())) >= 16
    assert 0.5 < logits.std(1).mean().item() < 2.0


def test_weights_round_trip_strict(tmp_path, resnet18_model):
    path = tmp_path / "resnet18.pth"
    source = build_model(18, seed=3)
    torch.save(source.state_dict(), path)
    loaded = build_model(18, weights=path)
    x = synthetic_images(2, 64, seed=5)
    assert torch.equal(loaded(x), source(x))
    assert not torch.equal(loaded(x), resnet18_model(x))


def test_weights_in_a_checkpoint_dict(tmp_path):
    source = build_model(18, seed=3)
    torch.save({"state_dict": source.state_dict(), "epoch": 90}, tmp_path / "ckpt.pth")
    loaded = build_model(18, weights=tmp_path / "ckpt.pth")
    assert torch.equal(loaded.fc.weight, source.fc.weight)


def _save_truncated(tmp_path, model):
    path = tmp_path / "full.pth"
    torch.save(model.state_dict(), path)
    data = path.read_bytes()
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"),
    ("truncated", "cannot read"),
    ("not_a_state_dict", "does not hold a state_dict"),
    ("wrong_depth", "does not fit resnet18: unexpected: layer1.0.conv3.weight"),
    ("wrong_shape", r"shape: fc.weight \(10, 512\) != \(1000, 512\)"),
])
def test_bad_weights_are_named(tmp_path, case, message, resnet18_model):
    path = tmp_path / f"{case}.pth"
    if case == "truncated":
        path = _save_truncated(tmp_path, resnet18_model)
    elif case == "not_a_state_dict":
        torch.save([torch.zeros(3)], path)
    elif case == "wrong_depth":
        torch.save(ResNet(50).state_dict(), path)
    elif case == "wrong_shape":
        torch.save(ResNet(18, num_classes=10).state_dict(), path)
    with pytest.raises(WeightsError, match=message):
        build_model(18, weights=path)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="depth must be one of 18, 34, 50, 101, 152, got 20"):
        build_model(20)
    with pytest.raises(ValueError, match="variant"):
        build_model(18, variant="v2")
