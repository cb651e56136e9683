import pytest
import torch
import torch.nn.functional as F

from cnn_lab import conv, kernels


def test_hand_computed_3x3():
    image = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    k = torch.tensor([[[0, 1, 0], [1, -4, 1], [0, 1, 0.0]]])
    out = conv.convolve(image, k, conv.ConvSettings(padding=0))
    # the Laplacian of a linear ramp is zero inside
    assert out.shape == (1, 2, 2) and torch.allclose(out, torch.zeros(1, 2, 2))
    box = conv.convolve(image, kernels.make_kernel("box blur")[None], conv.ConvSettings(padding=0))
    assert box[0, 0, 0].item() == pytest.approx((0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10) / 9)


@pytest.mark.parametrize("mode", conv.PADDING_MODES)
@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 2, 1), (3, 0, 2), (1, 3, 3)])
def test_full_mode_matches_nn_conv2d(mode, stride, padding, dilation):
    torch.manual_seed(0)
    image = torch.rand(3, 23, 19)
    k = torch.randn(2, 3, 3)
    s = conv.ConvSettings(stride, padding, mode, dilation, "full")
    layer = torch.nn.Conv2d(3, 2, 3, stride, padding, dilation, bias=False, padding_mode=mode)
    layer.weight.data = k.unsqueeze(1).expand(-1, 3, -1, -1).clone()
    expected = layer(image[None])[0]
    assert torch.allclose(conv.convolve(image, k, s), expected, atol=1e-5)


def test_depthwise_gives_one_map_per_channel_summing_to_full():
    image = torch.rand(3, 16, 16)
    k = kernels.make_kernel("sobel x")[None]
    depth = conv.convolve(image, k, conv.ConvSettings(channel_mode="depthwise"))
    full = conv.convolve(image, k, conv.ConvSettings(channel_mode="full"))
    assert depth.shape == (3, 16, 16) and full.shape == (1, 16, 16)
    assert torch.allclose(depth.sum(0), full[0], atol=1e-5)


def test_magnifier_matches_convolution():
    torch.manual_seed(1)
    image = torch.rand(3, 12, 12)
    k = torch.randn(3, 3)
    for mode in conv.CHANNEL_MODES:
        s = conv.ConvSettings(stride=2, padding=1, dilation=2, channel_mode=mode, padding_mode="reflect")
        out = conv.convolve(image, k[None], s)
        m = conv.magnify(image, k, s, row=2, col=3, channel=1)
        expected = out[1 if mode == "depthwise" else 0, 2, 3].item()
        assert m.value == pytest.approx(expected, abs=1e-5)
        assert m.products.shape == m.patch.shape


def test_all_presets_and_gaussian_sums_to_one():
    for name, spec in kernels.KERNELS.items():
        for size in spec.sizes:
            assert kernels.make_kernel(name, size).shape == (size, size)
    assert kernels.make_kernel("gaussian blur", 5, sigma=1.5).sum().item() == pytest.approx(1.0)


def test_pool_and_stack():
    image = torch.rand(3, 64, 64)
    stages = conv.conv_relu_pool(image, kernels.make_kernel("sharpen")[None], conv.ConvSettings(), "max", 2, stages=3)
    assert [tuple(s.pooled.shape) for s in stages] == [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
    assert (stages[0].relu >= 0).all()
    assert torch.equal(stages[0].pooled, F.max_pool2d(stages[0].relu[None], 2)[0])


@pytest.mark.parametrize("settings, kernel, message", [
    (conv.ConvSettings(normalise=True), kernels.make_kernel("sobel x"), "sums to zero"),
    (conv.ConvSettings(padding=0), torch.ones(9, 9), "more than the padded image"),
    (conv.ConvSettings(padding=8, padding_mode="reflect"), torch.ones(3, 3), "Reflect padding"),
    (conv.ConvSettings(stride=0), torch.ones(3, 3), "at least 1"),
])
def test_bad_settings_one_sentence(settings, kernel, message):
    with pytest.raises(conv.ConvError, match=message):
        conv.convolve(torch.rand(3, 8, 8), kernel[None], settings)


def test_course_parameter_argument():
    assert conv.linear_parameters(3, 256, 256, 100) == 19_660_900
    assert conv.conv_parameters(3, 3, 100) == 2_800
    layer = torch.nn.Conv2d(3, 100, 3)
    assert conv.conv_parameters(3, 3, 100) == sum(p.numel() for p in layer.parameters())


def test_standardise_matches_the_trainers_normalisation():
    image = torch.rand(3, 5, 5)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    expected = (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(conv.standardise(image, mean, std), expected)
