"""Model registry: each builder takes a ModelSpec, the input shape (C, H, W) and the class count."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from cnn_lab.activations import ACTIVATIONS, make_activation


class ModelError(ValueError):
    """A model that cannot be built for this input; the message is one sentence."""


@dataclass
class ModelSpec:
    name: str = "cnn"
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])  # conv widths (cnn, resnet)
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # hidden sizes (mlp)
    activation: str = "relu"
    activation_params: dict[str, float] = field(default_factory=dict)
    norm: str = "batch"  # from NORMS: batch | layer | none
    dropout: float = 0.0
    dropconnect: float = 0.0  # DropConnect on the linear layers: this fraction of their weights dropped per step
    linear_stem: bool = False  # speedrun: the stem's whitening filters alone, no activation (airbench: 24, GELU)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        """A spec from its JSON form; runs saved before `norm` existed said `batch_norm: true/false`."""
        values = dict(values)
        if "batch_norm" in values:
            values["norm"] = "batch" if values.pop("batch_norm") else "none"
        return cls(**values)

    def check(self) -> None:
        """Raise ModelError with one sentence for a spec that cannot be built, before any data loads: an unknown
        model, activation or normalisation, or an activation given another function's parameters (a link, a
        config or `--set model.activation=relu` that kept LeakyReLU's slope)."""
        for what, value, known in (("model", self.name, MODELS), ("activation", self.activation, ACTIVATIONS),
                                   ("normalisation", self.norm, NORMS)):
            if value not in known:
                raise ModelError(f"Unknown {what} {value!r}; choose one of {', '.join(known)}.")
        foreign = sorted(set(self.activation_params) - set(ACTIVATIONS[self.activation].params))
        if foreign:
            takes = ", ".join(ACTIVATIONS[self.activation].params) or "no parameters"
            raise ModelError(f"The activation {self.activation} has no parameter {foreign[0]!r} (it takes {takes}): "
                             "set model.activation_params to {} or to its own.")


Shape = tuple[int, int, int]


def _act(spec: ModelSpec) -> nn.Module:
    return make_activation(spec.activation, **spec.activation_params)


@dataclass(frozen=True)
class Norm:
    title: str
    conv: Callable[[int], nn.Module]  # channels -> a layer for (N, C, H, W) feature maps
    dense: Callable[[int], nn.Module]  # features -> a layer for (N, F) activations


NORMS: dict[str, Norm] = {
    "batch": Norm("Batch norm (statistics over the batch)", nn.BatchNorm2d, nn.BatchNorm1d),
    # LayerNorm of a feature map normalises each image over all its channels and pixels: GroupNorm with one group.
    "layer": Norm("Layer norm (statistics over each image's features)", lambda c: nn.GroupNorm(1, c), nn.LayerNorm),
    "none": Norm("None", lambda c: nn.Identity(), lambda f: nn.Identity()),
}


def _norm(spec: ModelSpec, channels: int, conv: bool = True) -> list[nn.Module]:
    """The spec's normalisation layer for this many channels (none: no layer)."""
    if spec.norm == "none":
        return []
    return [NORMS[spec.norm].conv(channels) if conv else NORMS[spec.norm].dense(channels)]


class DropConnectLinear(nn.Linear):
    """A linear layer with DropConnect (Wan et al. 2013): while training, each step drops a random fraction `p`
    of the weights (not of the activations, as dropout does) and scales the rest by 1 / (1 - p)."""

    def __init__(self, c_in: int, c_out: int, p: float, bias: bool = True):
        super().__init__(c_in, c_out, bias)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return super().forward(x)
        keep = torch.rand_like(self.weight) >= self.p
        return nn.functional.linear(x, self.weight * keep / (1 - self.p), self.bias)


def _linear(spec: ModelSpec, c_in: int, c_out: int, bias: bool = True) -> nn.Linear:
    """nn.Linear, or with DropConnect when the spec asks for it (same weights, so a saved run loads either way)."""
    return DropConnectLinear(c_in, c_out, spec.dropconnect, bias) if spec.dropconnect else nn.Linear(c_in, c_out, bias)


def _flat_size(body: nn.Module, shape: Shape) -> int:
    with torch.no_grad():
        return body(torch.zeros(2, *shape)).flatten(1).shape[1]  # two images: batch norm needs more than one


def linear(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """The course's linear classifier: flatten, one Linear layer."""
    c, h, w = shape
    return nn.Sequential(nn.Flatten(), _linear(spec, c * h * w, classes))


def dense_block(c_in: int, c_out: int, spec: ModelSpec) -> list[nn.Module]:
    """linear -> normalisation (if any) -> activation -> dropout (if on): one hidden layer of an MLP."""
    layers: list[nn.Module] = [_linear(spec, c_in, c_out, bias=spec.norm != "batch"), *_norm(spec, c_out, conv=False),
                               _act(spec)]
    if spec.dropout:
        layers.append(nn.Dropout(spec.dropout))
    return layers


def mlp(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """Flatten, then one dense block per hidden size, then a linear layer to the classes."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = shape[0] * shape[1] * shape[2]
    for hidden in spec.hidden:
        layers += dense_block(width, hidden, spec)
        width = hidden
    return nn.Sequential(*layers, _linear(spec, width, classes))


def course_cnn(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """The course's CNN: three 5x5 stride-2 convolutions 3-16-32-64, then an MLP 64-32-classes. With
    `course_spec` it is the course's exactly (LeakyReLU(0.2), no batch norm, no dropout); the course's own
    experiments change the activation, add batch norm after each convolution and dropout before each linear layer."""
    if min(shape[1:]) < 29:
        raise ModelError(
            f"The course CNN needs images of at least 29x29 pixels (three 5x5 stride-2 convolutions); "
            f"these are {shape[1]}x{shape[2]}: choose the configurable CNN or the MLP."
        )
    layers: list[nn.Module] = []
    for c_in, c_out in ((shape[0], 16), (16, 32), (32, 64)):
        layers += [nn.Conv2d(c_in, c_out, 5, stride=2, bias=spec.norm != "batch"), *_norm(spec, c_out), _act(spec)]
    body = nn.Sequential(*layers, nn.Flatten())
    dropout = lambda: [nn.Dropout(spec.dropout)] if spec.dropout else []  # noqa: E731
    return nn.Sequential(body, *dropout(), _linear(spec, _flat_size(body, shape), 32), _act(spec), *dropout(),
                         _linear(spec, 32, classes))


def conv_block(c_in: int, c_out: int, spec: ModelSpec, pool: bool) -> nn.Sequential:
    """conv 3x3 -> normalisation -> activation -> 2x2 max pool."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=spec.norm != "batch"), *_norm(spec, c_out),
                               _act(spec)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def cnn(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """Configurable CNN: one conv-BN-act-pool block per width, global max pool, dropout, linear head."""
    blocks, c, size = [], shape[0], min(shape[1:])
    for width in spec.widths:
        blocks.append(conv_block(c, width, spec, pool=size >= 2))
        c, size = width, size // 2 if size >= 2 else size
    return nn.Sequential(
        *blocks, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(spec.dropout), _linear(spec, c, classes)
    )


def lenet5(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """LeNet-5 (LeCun 1998) with the chosen activation: conv5-pool-conv5-pool, then 120-84-classes."""
    pad = 2 if min(shape[1:]) < 32 else 0
    body = nn.Sequential(
        nn.Conv2d(shape[0], 6, 5, padding=pad), _act(spec), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), _act(spec), nn.AvgPool2d(2), nn.Flatten(),
    )
    if min(shape[1:]) < 16:
        raise ModelError(f"LeNet-5 needs images of at least 16x16 pixels; these are {shape[1]}x{shape[2]}.")
    return nn.Sequential(body, _linear(spec, _flat_size(body, shape), 120), _act(spec), _linear(spec, 120, 84),
                         _act(spec), _linear(spec, 84, classes))


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1) shortcut, as in ResNet."""

    def __init__(self, c_in: int, c_out: int, stride: int, spec: ModelSpec):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = _act(spec)
        self.shortcut = (
            nn.Identity() if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet_small(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """A small ResNet: a 3x3 stem, then one residual block per width (stride 2 after the first)."""
    layers: list[nn.Module] = [nn.Conv2d(shape[0], spec.widths[0], 3, padding=1, bias=False),
                               nn.BatchNorm2d(spec.widths[0]), _act(spec)]
    c = spec.widths[0]
    for i, width in enumerate(spec.widths):
        layers.append(ResidualBlock(c, width, 1 if i == 0 else 2, spec))
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(spec.dropout), nn.Linear(c, classes))


class Scale(nn.Module):
    """Multiply by a constant: the speedrun net's logits are scaled down, which acts like a softmax temperature."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def speedrun(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """A VGG-like net for fast CIFAR-10 with airbench's ideas: a 2x2 stem (whitened by the trainer), three blocks
    of two convs with max pooling, convs that start as the identity, batch norm with fast-moving statistics and no
    learned scale, and logits scaled by 1/9."""
    if len(spec.widths) != 3:
        raise ModelError(f"The speedrun net has three blocks: give three conv widths, not {len(spec.widths)}.")
    widths = spec.widths
    act = lambda: nn.GELU()  # noqa: E731

    def conv(c_in: int, c_out: int) -> nn.Conv2d:
        layer = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        nn.init.dirac_(layer.weight.data[: min(c_in, c_out)])  # these filters pass their input channel through
        return layer

    def norm(c: int) -> nn.BatchNorm2d:
        layer = nn.BatchNorm2d(c, momentum=0.4, eps=1e-12)
        layer.weight.requires_grad_(False)  # the scale stays 1: only the shift is learned
        return layer

    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(conv(c_in, c_out), nn.MaxPool2d(2), norm(c_out), act(),
                             conv(c_out, c_out), norm(c_out), act())

    # A 2x2 stem (32 -> 31 pixels) that the trainer sets to whiten image patches: airbench's whitening filters (12
    # for RGB) and their negatives, then GELU; or, linear, the filters alone, which halves the first block's first
    # conv (a fifth of each step on a CPU) for the same accuracy in the CPU presets.
    patch = shape[0] * 2 * 2
    stem = [nn.Conv2d(shape[0], patch, 2, bias=True)] if spec.linear_stem else [
        nn.Conv2d(shape[0], 2 * patch, 2, bias=True), act()]
    return nn.Sequential(
        *stem, block(stem[0].out_channels, widths[0]), block(widths[0], widths[1]), block(widths[1], widths[2]),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[2], classes, bias=False), Scale(1 / 9),
    )


# ---------------------------------------------------------------- the classic architectures (lesson 25), for 32x32


def alexnet_small(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """AlexNet's shape (Krizhevsky 2012) scaled to 32x32: five convolutions (a large first kernel, then 3x3),
    three max pools, and a three-layer classifier with dropout. Its parameters sit mostly in the linear layers."""
    if min(shape[1:]) < 16:
        raise ModelError(f"The AlexNet-style net needs images of at least 16x16 pixels; these are {shape[1]}x{shape[2]}.")

    def conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=spec.norm != "batch"), *_norm(spec, c_out), _act(spec)]

    body = nn.Sequential(*conv(shape[0], 64, 5), nn.MaxPool2d(3, 2, 1), *conv(64, 128, 5), nn.MaxPool2d(3, 2, 1),
                         *conv(128, 192, 3), *conv(192, 192, 3), *conv(192, 128, 3), nn.MaxPool2d(3, 2, 1), nn.Flatten())
    return nn.Sequential(body, nn.Dropout(spec.dropout), _linear(spec, _flat_size(body, shape), 512), _act(spec),
                         nn.Dropout(spec.dropout), _linear(spec, 512, 256), _act(spec), _linear(spec, 256, classes))


def vgg_small(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """VGG's idea (Simonyan 2014): only 3x3 convolutions, two per stage, the width doubling as a max pool halves
    the size. Two 3x3 layers see as far as one 5x5 with fewer parameters. One stage per width."""
    layers, c, size = [], shape[0], min(shape[1:])
    for width in spec.widths:
        for c_in in (c, width):
            layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=spec.norm != "batch"), *_norm(spec, width), _act(spec)]
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(spec.dropout),
                         _linear(spec, c, classes))


class InceptionBlock(nn.Module):
    """GoogLeNet's Inception block (Szegedy 2014): four branches side by side, concatenated along the channels:
    a 1x1 conv; a 1x1 "reduce" then 3x3; a 1x1 reduce then 5x5; a 3x3 max pool then 1x1. The 1x1 convolutions
    shrink the channels before the costly kernels. `c_out` is split evenly over the branches."""

    def __init__(self, c_in: int, c_out: int, act: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        b, reduce3, reduce5 = c_out // 4, max(1, c_out // 8), max(1, c_out // 16)
        self.branch1 = nn.Sequential(nn.Conv2d(c_in, b, 1), act())
        self.branch3 = nn.Sequential(nn.Conv2d(c_in, reduce3, 1), act(), nn.Conv2d(reduce3, b, 3, padding=1), act())
        self.branch5 = nn.Sequential(nn.Conv2d(c_in, reduce5, 1), act(), nn.Conv2d(reduce5, b, 5, padding=2), act())
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, c_out - 3 * b, 1), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.pool(x)], dim=1)


def inception_small(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    """A 3x3 stem, then one Inception block per width with a max pool after each but the last, global average
    pool and a linear head (GoogLeNet's shape, two blocks instead of nine)."""
    if any(width < 4 for width in spec.widths):
        raise ModelError("Each Inception block needs a width of at least 4 channels: one or more for each of its "
                         "four branches.")
    stem = spec.widths[0] // 2
    layers: list[nn.Module] = [nn.Conv2d(shape[0], stem, 3, padding=1), _act(spec)]
    c, size = stem, min(shape[1:])
    for i, width in enumerate(spec.widths):
        layers.append(InceptionBlock(c, width, lambda: _act(spec)))
        if i < len(spec.widths) - 1 and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(spec.dropout),
                         _linear(spec, c, classes))


@dataclass(frozen=True)
class ModelInfo:
    title: str
    build: Callable[[ModelSpec, Shape, int], nn.Module]
    settings: tuple[str, ...]  # the ModelSpec fields this model reads: the train page shows only these


MODELS: dict[str, ModelInfo] = {
    "linear": ModelInfo("Linear classifier", linear, ()),
    "mlp": ModelInfo("MLP", mlp, ("hidden", "activation", "norm", "dropout", "dropconnect")),
    "course_cnn": ModelInfo("Course CNN (3 conv 5x5/2 + MLP)", course_cnn,
                            ("activation", "norm", "dropout", "dropconnect")),
    "cnn": ModelInfo("Configurable CNN (conv-BN-act-pool blocks)", cnn,
                     ("widths", "activation", "norm", "dropout", "dropconnect")),
    "lenet5": ModelInfo("LeNet-5", lenet5, ("activation", "dropconnect")),
    "alexnet": ModelInfo("AlexNet-style (lesson 25, for 32x32)", alexnet_small,
                         ("activation", "norm", "dropout", "dropconnect")),
    "vgg": ModelInfo("VGG-style: two 3x3 convs a stage (lesson 25)", vgg_small,
                     ("widths", "activation", "norm", "dropout", "dropconnect")),
    "inception": ModelInfo("Inception blocks with 1x1 convs (lesson 25)", inception_small,
                           ("widths", "activation", "dropout", "dropconnect")),
    "resnet_small": ModelInfo("Small ResNet", resnet_small, ("widths", "activation", "dropout")),
    "speedrun": ModelInfo("Speedrun net (airbench ideas)", speedrun, ("widths", "linear_stem")),
}

# The course's choices: LeakyReLU(0.2), no batch norm, no dropout.
COURSE_CHOICES = dict(activation="leaky_relu", activation_params={"negative_slope": 0.2}, norm="none", dropout=0.0)


def course_spec(name: str, **changes) -> ModelSpec:
    """A model as the course builds it, with `changes` on top (its experiments: dropout, batch norm, ...)."""
    return ModelSpec(name, **(COURSE_CHOICES | changes))


def build_model(spec: ModelSpec, shape: Shape, classes: int) -> nn.Module:
    if spec.name not in MODELS:
        raise ModelError(f"Unknown model {spec.name!r}; choose one of {', '.join(MODELS)}.")
    if spec.norm not in NORMS:
        raise ModelError(f"Unknown normalisation {spec.norm!r}; choose one of {', '.join(NORMS)}.")
    if not 0 <= spec.dropconnect < 1:
        raise ModelError(f"DropConnect must drop a fraction in [0, 1) of the weights, not {spec.dropconnect}.")
    return MODELS[spec.name].build(spec, shape, classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ModelCost:
    """What a model takes before it is built: its parameters, and the values one image's forward pass keeps for the
    backward pass (every layer's output)."""
    parameters: int
    activations_per_image: int


def model_cost(spec: ModelSpec, shape: Shape, classes: int) -> ModelCost:
    """The model sized on the `meta` device: its tensors have shapes but no memory, so a spec of ten billion
    parameters (a typo such as hidden 2560000) is measured in milliseconds and allocates nothing."""
    outputs: list[int] = []

    def count(module: nn.Module, inputs, output) -> None:
        outputs.append(output.numel() if isinstance(output, torch.Tensor) else 0)

    with torch.device("meta"):
        model = build_model(spec, shape, classes)
        leaves = [m for m in model.modules() if not list(m.children())]
        handles = [m.register_forward_hook(count) for m in leaves]
        try:
            model.train()(torch.zeros(2, *shape))  # two images: batch norm needs more than one
        finally:
            for handle in handles:
                handle.remove()
    return ModelCost(count_parameters(model), sum(outputs) // 2)


def first_conv_weights(model: nn.Module) -> torch.Tensor | None:
    """The first Conv2d's weights (out, in, k, k), for drawing the learned filters."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else conv.weight.detach().cpu()
