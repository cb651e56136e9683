"""Well-known classification networks by name, from torchvision, with their ImageNet weights: what "Inside the
network" opens besides EfficientNet-Lite0 and your own runs.

Their weights are used when they are cached (torch's hub folder), found in CNN_LAB_DATA, or downloaded on request
(the page shows the download's progress); otherwise the page says so in one sentence and keeps EfficientNet-Lite0.
Each takes 224x224 RGB images normalised with ImageNet's statistics, and answers with ImageNet's 1,000 classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from cnn_lab.backbones import WEIGHTS_SERVER, hub_file, torchvision_weights_file
from cnn_lab.downloads import Reporter, fetch, reachable


@dataclass(frozen=True)
class Architecture:
    title: str
    about: str  # one plain sentence for a student
    transformer: bool = False  # no feature maps after its first layer: the page says which views apply


ARCHITECTURES: dict[str, Architecture] = {
    "resnet18": Architecture("ResNet-18", "18 layers with skip connections (2015): the course's transfer network."),
    "resnet50": Architecture("ResNet-50", "50 layers of bottleneck blocks with skip connections (2015)."),
    "vgg16": Architecture("VGG-16", "13 plain 3x3 convolutions and 3 dense layers (2014): simple and very large."),
    "mobilenet_v3_large": Architecture("MobileNetV3-Large", "Depthwise convolutions, built for phones (2019)."),
    "efficientnet_b0": Architecture("EfficientNet-B0", "Depthwise convolutions with squeeze-and-excitation (2019)."),
    "convnext_tiny": Architecture("ConvNeXt-Tiny", "A modern CNN with 7x7 depthwise convolutions (2022)."),
    "vit_b_16": Architecture("ViT-B/16", "A vision transformer (2020): the image cut into 16x16 patches, then "
                             "attention between them.", transformer=True),
}

TRANSFORMER_VIEWS = ("{title} is a transformer, not a CNN: only its first layer, the 16x16 convolution that cuts the "
                     "image into patches, has feature maps, a receptive field and arithmetic to show. The other "
                     "layers work on a list of patches (tokens); the table, the statistics and the class scores "
                     "apply to them, Grad-CAM and synthesis apply to the patch layer.")


def weights_of(name: str):
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def weights_file(name: str) -> Path | None:
    """Where this network's ImageNet weights are on this machine, if they are."""
    return torchvision_weights_file(weights_of(name))[0]


def weights_mb(name: str) -> float:
    return weights_of(name).meta.get("_file_size", 0.0)


def can_download() -> bool:
    return reachable(WEIGHTS_SERVER)


def download(name: str, reporter: Reporter) -> Path:
    """Fetch the weights into torch's hub folder, reporting progress to `reporter` (the page's download panel)."""
    weights = weights_of(name)
    return fetch(weights.url, hub_file(weights), f"{ARCHITECTURES[name].title}'s weights", reporter=reporter)
