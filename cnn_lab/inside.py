"""Inside a network: every layer's output for one image, read from the model itself with forward hooks, and
what the page shows of it: the architecture (output shape, parameters, receptive field), feature maps,
per-layer statistics, and the multiply-and-sum behind any one value of a convolution.

A "layer" is a leaf module (no children) or a convolution (some, like EfficientNet's same-padding convs, hold
their padding as a child), in the order the forward pass runs them.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab import runs
from cnn_lab.hooks import hooked
from cnn_lab.normalise import normalise

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)  # the layers that widen the receptive field
GLOBAL = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)  # after these a unit sees it all


@dataclass
class LayerOutput:
    name: str  # the module's path in the model, e.g. "body.0.conv"
    kind: str  # its class, e.g. "Conv2d"
    module: nn.Module
    input: torch.Tensor  # (C, H, W) or (F,): what the layer received, for the first image
    output: torch.Tensor  # what it gave
    parameters: int
    receptive_field: int | None  # in input pixels, a side; None once a unit sees the whole image
    jump: int  # input pixels between neighbouring outputs (cumulative stride)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape)


@dataclass
class Inspection:
    layers: list[LayerOutput]
    logits: torch.Tensor  # (classes,)
    probs: torch.Tensor

    def conv_layers(self) -> list[LayerOutput]:
        return [layer for layer in self.layers if isinstance(layer.module, nn.Conv2d)]

    def by_name(self, name: str) -> LayerOutput:
        return next(layer for layer in self.layers if layer.name == name)


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Leaf modules and convolutions (not the modules inside a convolution), by their path."""
    chosen: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f"{c}.") for c in chosen if isinstance(chosen[c], nn.Conv2d)):
            continue  # a convolution's own padding module
        if isinstance(module, nn.Conv2d) or (name and not any(True for _ in module.children())):
            chosen[name] = module
    return chosen


def _first(value) -> torch.Tensor | None:
    """The first image's tensor, copied (a later in-place ReLU must not change what was kept)."""
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    return value[0].detach().clone() if isinstance(value, torch.Tensor) and value.ndim >= 1 else None


def inspect(model: nn.Module, x: torch.Tensor) -> Inspection:
    """Run `x` (1, C, H, W, normalised as the model expects) once and keep every layer's input and output, in the
    order they ran, with receptive fields computed along that order (residual skips do not widen them)."""
    seen: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []

    def keep(name: str):
        def hook(module, inputs, output):
            inp, out = _first(inputs), _first(output)
            if inp is not None and out is not None:
                seen.append((name, module, inp, out))
        return hook

    with hooked(model, [(module, keep(name)) for name, module in layer_modules(model).items()]), torch.inference_mode():
        logits = model(x)[0]
    layers, rf, jump = [], 1, 1
    for name, module, inp, out in seen:
        if rf is not None and isinstance(module, SPATIAL):
            k, s, d = (_pair(getattr(module, a, 1))[0] for a in ("kernel_size", "stride", "dilation"))
            rf, jump = rf + (k - 1) * d * jump, jump * s
        elif isinstance(module, GLOBAL) or out.ndim < 3:
            rf = None
        params = sum(p.numel() for p in module.parameters(recurse=False))
        layers.append(LayerOutput(name, type(module).__name__, module, inp, out, params, rf, jump))
    return Inspection(layers, logits, logits.softmax(0))


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def sorted_channels(maps: torch.Tensor) -> list[int]:
    """Channels of a (C, H, W) output, the most active (highest mean) first."""
    return maps.flatten(1).mean(1).argsort(descending=True).tolist()


@dataclass
class LayerStats:
    mean: float
    std: float
    zero_share: float  # outputs exactly 0 (dead ReLU units on this input)
    saturated_share: float  # outputs at the top of a bounded activation (ReLU6: 6, sigmoid/tanh: 1), else 0


SATURATION = {"ReLU6": 6.0, "Sigmoid": 1.0, "Tanh": 1.0, "Hardtanh": 1.0}


def layer_stats(layer: LayerOutput) -> LayerStats:
    out = layer.output.float()
    top = SATURATION.get(layer.kind)
    saturated = (out.abs() >= top - 1e-3).float().mean().item() if top else 0.0
    return LayerStats(out.mean().item(), out.std().item() if out.numel() > 1 else 0.0,
                      (out == 0).float().mean().item(), saturated)


@dataclass
class ConvArithmetic:
    patch: torch.Tensor  # (C_in / groups, kh, kw): the input values under the kernel (after the layer's padding)
    weights: torch.Tensor  # the same shape: the kernel of the output channel
    bias: float
    value: float  # sum(patch * weights) + bias: the layer's output at that position


def conv_arithmetic(layer: LayerOutput, channel: int, row: int, col: int) -> ConvArithmetic:
    """The multiply-and-sum that gives `layer`'s output at (channel, row, col), from its real input and weights."""
    conv = layer.module
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"{layer.name} is a {layer.kind}, not a convolution.")
    if not (0 <= channel < layer.shape[0] and 0 <= row < layer.shape[1] and 0 <= col < layer.shape[2]):
        raise ValueError(f"{layer.name}'s output has no value at channel {channel}, row {row}, column {col}.")
    x = layer.input.unsqueeze(0).float()
    pad = getattr(conv, "static_padding", None)  # EfficientNet's same-padding convs pad in a child module
    if isinstance(pad, nn.Module):
        x = pad(x)
    ph, pw = _pair(conv.padding) if not isinstance(conv.padding, str) else (0, 0)
    if conv.padding == "same":
        kh, kw = _pair(conv.kernel_size)
        dh, dw = _pair(conv.dilation)
        ph, pw = (dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    x = F.pad(x, (pw, pw, ph, ph), mode=mode) if ph or pw else x
    (kh, kw), (sh, sw), (dh, dw) = _pair(conv.kernel_size), _pair(conv.stride), _pair(conv.dilation)
    per_group = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    top, left = row * sh, col * sw
    patch = x[0, group * per_group:(group + 1) * per_group,
              top: top + dh * (kh - 1) + 1: dh, left: left + dw * (kw - 1) + 1: dw]
    weights = conv.weight[channel].detach().float()
    bias = float(conv.bias[channel].detach()) if conv.bias is not None else 0.0
    return ConvArithmetic(patch, weights, bias, float((patch * weights).sum()) + bias)


# ---------------------------------------------------------------- a whole test set through the model


@dataclass
class DatasetPass:
    """What the page needs of a whole test set, from one pass (the page caches it per model): for every
    convolution, each image's strongest response per channel and where it was; the penultimate features (the
    last linear layer's input); the predictions; and per-layer statistics over the first batch."""
    peaks: dict[str, torch.Tensor]  # layer -> (N, C) each channel's largest value in each image
    places: dict[str, torch.Tensor]  # layer -> (N, C) where it was, as row * width + column
    widths: dict[str, int]  # layer -> its output's width, to turn places back into rows and columns
    features: torch.Tensor  # (N, F)
    predicted: torch.Tensor  # (N,)
    batch_stats: dict[str, LayerStats]


def dataset_pass(model: nn.Module, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int = 256) -> DatasetPass:
    """Run uint8 (N, C, H, W) images through the model once, in batches, keeping what `DatasetPass` holds."""
    modules = layer_modules(model)
    convs = {name: m for name, m in modules.items() if isinstance(m, nn.Conv2d)}
    last_linear = [name for name, m in modules.items() if isinstance(m, nn.Linear)][-1:]
    peaks, places, widths, features = {n: [] for n in convs}, {n: [] for n in convs}, {}, []
    stats: dict[str, LayerStats] = {}
    first_batch = True

    def keep(name: str):
        def hook(module, inputs, output):
            if name in convs:
                flat = output.flatten(2)
                value, where = flat.max(2)
                peaks[name].append(value.float())
                places[name].append(where)
                widths[name] = output.shape[-1]
            if name in last_linear:
                features.append(inputs[0].flatten(1).float())
            if first_batch:
                stats[name] = layer_stats(LayerOutput(name, type(module).__name__, module, output, output, 0, None, 1))
        return hook

    predicted = []
    with hooked(model, [(module, keep(name)) for name, module in modules.items()]), torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = normalise(images[start:start + batch_size], mean, std)
            predicted.append(model(x).argmax(1))
            first_batch = False
    return DatasetPass({n: torch.cat(v) for n, v in peaks.items()}, {n: torch.cat(v) for n, v in places.items()},
                       widths, torch.cat(features) if features else torch.empty(len(images), 0),
                       torch.cat(predicted), stats)


def top_images(seen: DatasetPass, layer: str, channel: int, k: int = 9) -> list[tuple[int, float, int, int]]:
    """The k test images that excite `channel` of `layer` most: (image index, value, row, column of the peak)."""
    values, index = seen.peaks[layer][:, channel].topk(min(k, len(seen.predicted)))
    width = seen.widths[layer]
    return [(i, v, int(seen.places[layer][i, channel]) // width, int(seen.places[layer][i, channel]) % width)
            for i, v in zip(index.tolist(), values.tolist())]


def patch_box(row: int, col: int, receptive_field: int, jump: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The input pixels (top, left, bottom, right) that an output at (row, col) looks at, clipped to the image."""
    half = receptive_field // 2
    centre_r, centre_c = row * jump + jump // 2, col * jump + jump // 2
    return (max(0, centre_r - half), max(0, centre_c - half), min(size[0], centre_r + half + 1),
            min(size[1], centre_c + half + 1))


# Both projections show the same first 1,000 test images, so the two pictures compare point for point: t-SNE's
# cost grows faster than its points (1,000 keep it to seconds on 2 cores, docs/benchmarks-log.md), and ten thousand
# points took the browser a second to draw at every visit of the page.
PROJECTED_POINTS = 1000


def prepare_tsne() -> None:
    """Start importing t-SNE's library (scikit-learn: 1.6 s on 2 cores) in the background, once, so that a first
    t-SNE finds it loaded; a t-SNE asked for sooner waits for the same import (Python's import lock)."""
    if "sklearn.manifold" not in sys.modules:
        threading.Thread(target=importlib.import_module, args=("sklearn.manifold",), daemon=True).start()


def project(features: torch.Tensor, method: str = "pca", seed: int = 0) -> torch.Tensor:
    """Features (N, F) -> (min(N, PROJECTED_POINTS), 2), the first rows: PCA (the two directions of largest
    variance, found on all N), or t-SNE (scikit-learn). t-SNE starts from the PCA picture, reads the features
    through their 50 largest directions (the usual first step: it drops noise and time) and stops at 500
    iterations, where the clusters have settled."""
    centred = features - features.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    if method != "tsne":
        return (centred @ v[:2].T)[:PROJECTED_POINTS]
    from sklearn.manifold import TSNE

    reduced = (centred @ v[:50].T)[:PROJECTED_POINTS]
    start = reduced[:, :2] / (reduced[:, 0].std() + 1e-8) * 1e-4  # scikit-learn's own scale for a given start
    return torch.from_numpy(TSNE(2, init=start.numpy(), random_state=seed, perplexity=min(30, len(reduced) - 1),
                                 max_iter=500).fit_transform(reduced.numpy())).float()


SYNTHESIS_SIDE = 112  # the largest canvas synthesis paints: half of 224, at a quarter of the cost


class _Reached(Exception):
    """Raised by the hook once the chosen layer has run: the layers after it have nothing to add to its output."""


def _canvas(model: nn.Module, layer: nn.Module, shape: tuple[int, int, int], mean: torch.Tensor,
            std: torch.Tensor) -> tuple[int, int, int]:
    """The shape to paint: at most SYNTHESIS_SIDE a side when the network takes that, else its own input size (a
    network that checks its input's size before the layer, as a vision transformer does)."""
    if max(shape[1:]) <= SYNTHESIS_SIDE:
        return shape
    small = (shape[0], SYNTHESIS_SIDE, SYNTHESIS_SIDE)

    def stop(module, inputs, output):
        raise _Reached

    try:
        with hooked(model, [(layer, stop)]), torch.no_grad():
            model((torch.zeros(1, *small) - mean) / std)
    except _Reached:
        return small
    except Exception:  # noqa: BLE001 - refused before the layer (a size check, a reshape): paint at full size
        return shape
    return small


def synthesise(model: nn.Module, layer: nn.Module, channel: int, shape: tuple[int, int, int], mean: torch.Tensor,
               std: torch.Tensor, steps: int = 200, lr: float = 0.05, jitter: int = 1, seed: int = 0,
               on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """An image made to excite `channel` of `layer` (activation maximisation, as in Lucid / Lucent): gradient
    ascent on the pixels (through a sigmoid, so they stay in [0, 1]), each step on a copy shifted by up to
    `jitter` pixels, so that the result does not rely on one exact pixel grid. Returns uint8 (C, H', W').

    Two savings make it seconds on a CPU: each forward pass stops at the chosen layer (the rest of the network
    cannot change its output), and a canvas larger than SYNTHESIS_SIDE is painted at that side instead (a
    convolution's channel looks for a local pattern, and the pass never reaches the layers that fix the input
    size). `on_step(done, steps)` is called after each step, for a progress bar."""
    canvas = _canvas(model, layer, shape, mean, std)
    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.randn((1, *canvas), generator=generator) * 0.1).requires_grad_(True)  # logits of the pixels
    optimizer = torch.optim.Adam([pixels], lr=lr)
    caught: dict[str, torch.Tensor] = {}

    def catch(module, inputs, output):
        caught["maps"] = output
        raise _Reached

    with hooked(model, [(layer, catch)]), torch.enable_grad():
        for step in range(steps):
            image = torch.sigmoid(pixels)
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
            with contextlib.suppress(_Reached):
                model((torch.roll(image, (dy, dx), (2, 3)) - mean) / std)  # already in [0, 1]
            loss = -caught["maps"][0, channel].mean()
            # the gradient for the pixels alone: the model's own .grad stay untouched (a shared model)
            (pixels.grad,) = torch.autograd.grad(loss, [pixels])
            optimizer.step()
            if on_step is not None:
                on_step(step + 1, steps)
    return (torch.sigmoid(pixels.detach())[0] * 255).round().to(torch.uint8)


def run_test_set(record: runs.RunRecord) -> tuple[torch.Tensor, torch.Tensor]:
    """A training run's test images (uint8, at the size it was trained on) and labels, from its dataset (the
    data cache makes this quick); raises DatasetUnavailable or DatasetError with a sentence."""
    from cnn_lab.data import DATASETS, DatasetUnavailable, load_dataset
    from cnn_lab.limits import LimitError, allowed_folder

    dataset = record.config.get("dataset", "")
    if record.imported or not dataset:
        raise DatasetUnavailable("This run was imported from a file, so its training data is not on this server and "
                                 "its test images cannot be shown; a photo of your own works.")
    if dataset not in DATASETS:  # a folder's path read from a stored config: through the fence again
        try:
            dataset = str(allowed_folder(dataset, record.owner))
        except LimitError as error:
            raise DatasetUnavailable(str(error)) from None
    test = load_dataset(dataset).splits["test"]
    return test.images, test.labels
