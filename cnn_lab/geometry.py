"""Output-size arithmetic, receptive fields, coverage maps and a layer-stack calculator, all checked
against what torch does (and rejects)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab.models import InceptionBlock


class GeometryError(ValueError):
    """A geometry torch would reject; the message is one sentence."""


@dataclass
class Layer:
    kind: str = "conv"  # conv | maxpool | avgpool | convT | inception | flatten | linear
    kernel: int = 3
    stride: int = 1
    padding: int | str = 0  # an integer, or "same" / "valid" for conv
    dilation: int = 1
    out_channels: int = 16  # conv / convT; out_features for linear
    ceil_mode: bool = False  # pooling
    output_padding: int = 0  # convT
    padding_mode: str = "zeros"  # conv


def conv_size(size: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """out = floor((in + 2p - d(k-1) - 1) / s) + 1"""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def pool_size(size: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """As conv_size, rounding up with ceil_mode; a last window that would start in the right padding is dropped."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def conv_transpose_size(size: int, k: int, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0) -> int:
    """out = (in - 1)s - 2p + d(k-1) + output_padding + 1"""
    return (size - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


def padding_of(layer: Layer) -> int:
    """An integer padding for the arithmetic; 'same' pads (d(k-1)) / 2 per side (torch pads asymmetrically when odd)."""
    if layer.padding == "valid":
        return 0
    if layer.padding == "same":
        return layer.dilation * (layer.kernel - 1) // 2
    return int(layer.padding)


def check(layer: Layer, size: tuple[int, int]) -> None:
    """Raise GeometryError with the verdict torch would give."""
    if min(layer.kernel, layer.stride, layer.dilation) < 1:
        raise GeometryError("Kernel, stride and dilation must each be at least 1.")
    if isinstance(layer.padding, int) and layer.padding < 0:
        raise GeometryError("Padding must be at least 0.")
    if layer.padding == "same" and layer.kind == "conv" and layer.stride > 1:
        raise GeometryError("padding='same' is not supported for strided convolutions (stride > 1), as in torch.")
    if layer.kind in ("maxpool", "avgpool") and padding_of(layer) > layer.kernel // 2:
        raise GeometryError(
            f"Pooling padding ({layer.padding}) must be at most half the kernel size ({layer.kernel} // 2 = "
            f"{layer.kernel // 2})."
        )
    if layer.kind == "convT" and layer.output_padding >= max(layer.stride, layer.dilation):
        raise GeometryError("output_padding must be smaller than either the stride or the dilation.")
    if layer.kind == "conv" and layer.padding_mode in ("reflect", "circular") and padding_of(layer) > min(size) - (
        1 if layer.padding_mode == "reflect" else 0
    ):
        raise GeometryError(f"{layer.padding_mode} padding ({layer.padding}) must be smaller than the input side.")
    out = output_size(layer, size, checked=False)
    if min(out) < 1:
        raise GeometryError(
            f"The output would be {out[0]}x{out[1]}: the kernel's span {layer.dilation * (layer.kernel - 1) + 1} "
            f"is larger than the padded input {size[0] + 2 * padding_of(layer)}x{size[1] + 2 * padding_of(layer)}."
        )


def output_size(layer: Layer, size: tuple[int, int], checked: bool = True) -> tuple[int, int]:
    if checked:
        check(layer, size)
    p, k, s, d = padding_of(layer), layer.kernel, layer.stride, layer.dilation
    if layer.kind == "conv":
        if layer.padding == "same":
            return size
        return tuple(conv_size(n, k, s, p, d) for n in size)
    if layer.kind in ("maxpool", "avgpool"):
        d = d if layer.kind == "maxpool" else 1
        return tuple(pool_size(n, k, s, p, d, layer.ceil_mode) for n in size)
    if layer.kind == "convT":
        return tuple(conv_transpose_size(n, k, s, p, d, layer.output_padding) for n in size)
    if layer.kind == "inception":  # every branch keeps the size (1x1, padded 3x3 and 5x5, 3x3 pool of stride 1)
        return size
    raise GeometryError(f"{layer.kind} has no spatial output size.")


def torch_layer(layer: Layer, in_channels: int) -> nn.Module:
    """The same layer in torch, for the page's one-line code and for checking the arithmetic."""
    if layer.kind == "conv":
        return nn.Conv2d(in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, layer.dilation,
                         padding_mode=layer.padding_mode)
    if layer.kind == "maxpool":
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode)
    if layer.kind == "avgpool":
        return nn.AvgPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if layer.kind == "convT":
        return nn.ConvTranspose2d(in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
                                  layer.output_padding, dilation=layer.dilation)
    if layer.kind == "inception":
        return InceptionBlock(in_channels, layer.out_channels)
    raise GeometryError(f"{layer.kind} is not a spatial layer.")


def code_line(layer: Layer, in_channels: int) -> str:
    if layer.kind == "inception":
        return f"InceptionBlock({in_channels}, {layer.out_channels})"
    return f"nn.{torch_layer(layer, in_channels)!r}".replace("nn.nn.", "nn.")


def coverage(layer: Layer, size: tuple[int, int]) -> torch.Tensor:
    """How many windows cover each input pixel (conv and pooling): border pixels get fewer without padding."""
    check(layer, size)
    p = padding_of(layer)
    ones = torch.ones(1, 1, size[0] + 2 * p, size[1] + 2 * p)
    d = layer.dilation if layer.kind != "avgpool" else 1
    patches = F.unfold(ones, layer.kernel, dilation=d, stride=layer.stride)  # the windows that start inside
    counts = F.fold(patches, ones.shape[-2:], layer.kernel, dilation=d, stride=layer.stride)[0, 0]
    return counts[p : p + size[0], p : p + size[1]]


def window(layer: Layer, row: int, col: int) -> list[tuple[int, int]]:
    """The padded-input cells (row, col) that output cell (row, col) reads: the kernel's taps, dilation included."""
    p0 = (row * layer.stride, col * layer.stride)
    d = layer.dilation if layer.kind != "avgpool" else 1
    return [(p0[0] + i * d, p0[1] + j * d) for i in range(layer.kernel) for j in range(layer.kernel)]


@dataclass
class StackRow:
    layer: str
    output: tuple[int, ...]
    parameters: int
    receptive_field: int
    jump: int  # cumulative stride: how far apart, in input pixels, two neighbouring outputs look


@dataclass
class Stack:
    input_shape: tuple[int, int, int]
    layers: list[Layer] = field(default_factory=list)


def stack_table(stack: Stack) -> list[StackRow]:
    """Each layer's output shape, parameters, receptive field and cumulative stride; checked against torch."""
    c, h, w = stack.input_shape
    shape: tuple[int, ...] = (c, h, w)
    rf, jump, rows = 1, 1, []
    for layer in stack.layers:
        if layer.kind == "flatten":
            shape, params, name = (math.prod(shape),), 0, "Flatten"
        elif layer.kind == "linear":
            if len(shape) != 1:
                raise GeometryError("A linear layer needs a flattened input: add a flatten row before it.")
            params, name = shape[0] * layer.out_channels + layer.out_channels, f"Linear({shape[0]}, {layer.out_channels})"
            shape = (layer.out_channels,)
        else:
            if len(shape) != 3:
                raise GeometryError(f"{layer.kind} needs a (C, H, W) input, but the input is flat here.")
            h, w = output_size(layer, shape[1:])
            module = torch_layer(layer, shape[0])
            channels = layer.out_channels if layer.kind in ("conv", "convT", "inception") else shape[0]
            params, name = sum(p.numel() for p in module.parameters()), code_line(layer, shape[0]).removeprefix("nn.")
            if layer.kind == "convT":
                jump = max(1, jump // layer.stride)
            elif layer.kind == "inception":
                rf += 4 * jump  # its widest branch: a 5x5 convolution
            else:
                d = layer.dilation if layer.kind != "avgpool" else 1
                rf += (layer.kernel - 1) * d * jump
                jump *= layer.stride
            shape = (channels, h, w)
        rows.append(StackRow(name, shape, params, rf, jump))
    return rows


STACKS: dict[str, Stack] = {
    "The course's CNN on 3x32x32": Stack((3, 32, 32), [
        Layer("conv", 5, 2, 0, out_channels=16), Layer("conv", 5, 2, 0, out_channels=32),
        Layer("conv", 5, 2, 0, out_channels=64), Layer("flatten"), Layer("linear", out_channels=32),
        Layer("linear", out_channels=10),
    ]),
    "ResNet18 stem on 3x224x224": Stack((3, 224, 224), [
        Layer("conv", 7, 2, 3, out_channels=64), Layer("maxpool", 3, 2, 1),
    ]),
    "LeNet-5 on 1x32x32": Stack((1, 32, 32), [
        Layer("conv", 5, 1, 0, out_channels=6), Layer("avgpool", 2, 2), Layer("conv", 5, 1, 0, out_channels=16),
        Layer("avgpool", 2, 2), Layer("flatten"), Layer("linear", out_channels=120), Layer("linear", out_channels=84),
        Layer("linear", out_channels=10),
    ]),
    # Lesson 25's classics, as the model registry builds them for 32x32 (with no normalisation layers)
    "AlexNet-style on 3x32x32": Stack((3, 32, 32), [
        Layer("conv", 5, 1, 2, out_channels=64), Layer("maxpool", 3, 2, 1), Layer("conv", 5, 1, 2, out_channels=128),
        Layer("maxpool", 3, 2, 1), Layer("conv", 3, 1, 1, out_channels=192), Layer("conv", 3, 1, 1, out_channels=192),
        Layer("conv", 3, 1, 1, out_channels=128), Layer("maxpool", 3, 2, 1), Layer("flatten"),
        Layer("linear", out_channels=512), Layer("linear", out_channels=256), Layer("linear", out_channels=10),
    ]),
    "VGG-style on 3x32x32": Stack((3, 32, 32), [
        *(layer for width in (32, 64, 128) for layer in (
            Layer("conv", 3, 1, 1, out_channels=width), Layer("conv", 3, 1, 1, out_channels=width),
            Layer("maxpool", 2, 2))),
        Layer("avgpool", 4, 4), Layer("flatten"), Layer("linear", out_channels=10),
    ]),
    "Inception blocks on 3x32x32": Stack((3, 32, 32), [
        Layer("conv", 3, 1, 1, out_channels=16), Layer("inception", out_channels=32), Layer("maxpool", 2, 2),
        Layer("inception", out_channels=64), Layer("maxpool", 2, 2), Layer("inception", out_channels=128),
        Layer("avgpool", 8, 8), Layer("flatten"), Layer("linear", out_channels=10),
    ]),
}
