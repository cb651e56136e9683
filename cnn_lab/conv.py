"""Convolution, activation and pooling on real images through torch.nn.functional, plus the magnifier's
arithmetic and the course's parameter-count argument."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
CHANNEL_MODES = ("depthwise", "full")  # the same kernel on each channel | one C-channel kernel summed (nn.Conv2d)


class ConvError(ValueError):
    """Settings that cannot be applied to this image; the message is one sentence."""


@dataclass
class ConvSettings:
    stride: int = 1
    padding: int = 1
    padding_mode: str = "zeros"
    dilation: int = 1
    channel_mode: str = "depthwise"
    normalise: bool = False  # divide the kernel by its sum, so that it keeps the brightness


def standardise(image: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """(C, H, W) pixels in [0, 1] -> what a trained network's first layer saw: per channel, minus mean, over std."""
    return (image - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


def prepare_kernel(kernel: torch.Tensor, normalise: bool) -> torch.Tensor:
    if not normalise:
        return kernel
    total = kernel.sum()
    if abs(total.item()) < 1e-8:
        raise ConvError("This kernel sums to zero (it detects edges), so it cannot be normalised to sum 1: "
                        "turn normalisation off.")
    return kernel / total


def weights_for(kernels: torch.Tensor, channels: int, mode: str) -> torch.Tensor:
    """(K, k, k) kernels -> conv weights: depthwise (C*K, 1, k, k) or full (K, C, k, k)."""
    if mode == "depthwise":
        return kernels.repeat(channels, 1, 1).unsqueeze(1)
    return kernels.unsqueeze(1).expand(-1, channels, -1, -1).contiguous()


def _check(shape: tuple[int, int], k: int, s: ConvSettings) -> None:
    h, w = shape
    if s.stride < 1 or s.dilation < 1 or s.padding < 0:
        raise ConvError("Stride and dilation must be at least 1, and padding at least 0.")
    if s.padding_mode == "reflect" and s.padding >= min(h, w):
        raise ConvError(f"Reflect padding must be smaller than the image side ({min(h, w)} px); use less padding.")
    span = s.dilation * (k - 1) + 1
    if span > min(h, w) + 2 * s.padding:
        raise ConvError(
            f"The kernel spans {span} px (size {k}, dilation {s.dilation}), more than the padded image "
            f"({h + 2 * s.padding}x{w + 2 * s.padding}): use a smaller kernel or dilation, or more padding."
        )


def convolve(image: torch.Tensor, kernels: torch.Tensor, s: ConvSettings) -> torch.Tensor:
    """image (C, H, W) float, kernels (K, k, k) or full weights (K, C, k, k) -> feature maps.

    depthwise: (C*K, H', W'), channel c with kernel j at index j*C + c; full: (K, H', W')."""
    if kernels.ndim == 4:  # learned filters: already (K, C, k, k)
        weight, groups = kernels, 1
    else:
        kernels = prepare_kernel(kernels, s.normalise) if s.normalise else kernels
        weight = weights_for(kernels, image.shape[0], s.channel_mode)
        groups = image.shape[0] if s.channel_mode == "depthwise" else 1
    _check(tuple(image.shape[1:]), weight.shape[-1], s)
    x = image.unsqueeze(0)
    if s.padding_mode != "zeros" and s.padding:
        x = F.pad(x, (s.padding,) * 4, mode=s.padding_mode)
        padding = 0
    else:
        padding = s.padding
    return F.conv2d(x, weight, stride=s.stride, padding=padding, dilation=s.dilation, groups=groups)[0]


def pool(maps: torch.Tensor, kind: str, kernel: int, stride: int) -> torch.Tensor:
    if kernel > min(maps.shape[-2:]):
        raise ConvError(f"The pooling window ({kernel}) is larger than the feature map ({maps.shape[-2]}x{maps.shape[-1]}).")
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    return fn(maps.unsqueeze(0), kernel, stride)[0]


@dataclass
class Stage:
    conv: torch.Tensor
    relu: torch.Tensor
    pooled: torch.Tensor


def conv_relu_pool(image: torch.Tensor, kernels: torch.Tensor, s: ConvSettings, pool_kind: str = "max",
                   pool_size: int = 2, stages: int = 1) -> list[Stage]:
    """conv -> ReLU -> pool, `stages` times; after the first stage the first kernel runs on each map on its own."""
    if stages > 1 and kernels.ndim == 4:
        raise ConvError("Stack mode works with the classic kernels; learned filters are shown one stage deep.")
    out, x = [], image
    for i in range(stages):
        conv = convolve(x, kernels if i == 0 else kernels[:1], s if i == 0 else replace(s, channel_mode="depthwise"))
        relu = torch.relu(conv)
        pooled = pool(relu, pool_kind, pool_size, pool_size)
        out.append(Stage(conv, relu, pooled))
        x = pooled
    return out


@dataclass
class Magnified:
    patch: torch.Tensor  # (C, k, k) the input values under the kernel (dilated taps only)
    kernel: torch.Tensor  # (C, k, k) the weights used
    products: torch.Tensor
    value: float


def magnify(image: torch.Tensor, kernel: torch.Tensor, s: ConvSettings, row: int, col: int,
            channel: int | None = None) -> Magnified:
    """The arithmetic behind one output value: channel c for depthwise, all channels for full."""
    k = kernel.shape[-1]
    kernel = prepare_kernel(kernel, s.normalise) if s.normalise else kernel
    x = image.unsqueeze(0)
    x = F.pad(x, (s.padding,) * 4, mode="constant" if s.padding_mode == "zeros" else s.padding_mode) if s.padding else x
    top, left = row * s.stride, col * s.stride
    span = s.dilation * (k - 1) + 1
    if top + span > x.shape[2] or left + span > x.shape[3] or row < 0 or col < 0:
        raise ConvError(f"The output has no position ({row}, {col}).")
    patch = x[0, :, top : top + span : s.dilation, left : left + span : s.dilation]
    if s.channel_mode == "depthwise":
        patch = patch[channel or 0 : (channel or 0) + 1]
    weights = kernel.expand_as(patch)
    products = patch * weights
    return Magnified(patch, weights, products, products.sum().item())


def linear_parameters(channels: int, height: int, width: int, outputs: int) -> int:
    """A fully connected layer from C x H x W to K outputs: C*H*W*K weights + K biases."""
    return channels * height * width * outputs + outputs


def conv_parameters(channels: int, kernel: int, outputs: int) -> int:
    """A k x k convolution from C to K channels: C*k*k*K weights + K biases, whatever the image size."""
    return channels * kernel * kernel * outputs + outputs
