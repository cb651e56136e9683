"""Lessons 1-2 (why CNNs; the vision problems): the ImageNet challenge's winning error by year, and what
classification, detection and segmentation each output, computed on a small synthetic scene."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Winner:
    year: int
    model: str
    top5_error: float  # percent, on the ILSVRC classification test set
    layers: int | None  # weight layers (None: not a deep network)


# The ILSVRC classification winners (Russakovsky et al. 2015, and each model's paper).
IMAGENET_WINNERS = [
    Winner(2010, "NEC-UIUC (hand-made features + SVM)", 28.2, None),
    Winner(2011, "XRCE (Fisher vectors + SVM)", 25.8, None),
    Winner(2012, "AlexNet", 16.4, 8),
    Winner(2013, "ZFNet / Clarifai", 11.7, 8),
    Winner(2014, "GoogLeNet (Inception)", 6.7, 22),
    Winner(2015, "ResNet", 3.57, 152),
    Winner(2016, "Trimps-Soushen (ensemble)", 2.99, None),
    Winner(2017, "SENet", 2.25, 154),
]
HUMAN_TOP5_ERROR = 5.1  # one trained person on 1,500 test images (Karpathy, 2014)


@dataclass
class Scene:
    """A synthetic photo with its exact answers for the three tasks."""
    image: torch.Tensor  # (3, H, W) uint8
    classes: list[str]  # index 0 is the background
    mask: torch.Tensor  # (H, W) int: the class of each pixel (segmentation's output)
    boxes: list[tuple[str, int, int, int, int]]  # (class, x0, y0, x1, y1): detection's output
    label: str  # classification's output: one class for the whole image (the largest object)


def toy_scene(size: int = 96) -> Scene:
    """A disc and a square on a grey background: a scene whose true boxes and masks are known exactly."""
    classes = ["background", "disc", "square"]
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (rows - size * 0.38) ** 2 + (cols - size * 0.32) ** 2 <= (size * 0.22) ** 2
    square = (rows >= size * 0.55) & (rows < size * 0.85) & (cols >= size * 0.58) & (cols < size * 0.88)
    mask = torch.zeros(size, size, dtype=torch.long)
    mask[disc], mask[square] = 1, 2
    colours = torch.tensor([[200, 200, 200], [214, 69, 65], [59, 111, 216]], dtype=torch.uint8)
    image = colours[mask].permute(2, 0, 1).contiguous()
    boxes = []
    for index, name in enumerate(classes[1:], start=1):
        ys, xs = (mask == index).nonzero(as_tuple=True)
        boxes.append((name, int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    areas = torch.bincount(mask.flatten(), minlength=len(classes))[1:]
    return Scene(image, classes, mask, boxes, classes[1 + int(areas.argmax())])
