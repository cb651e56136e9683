"""Accuracy per class, the confusion matrix, misclassified examples and top-k predictions."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab.augment import TTA_VIEWS
from cnn_lab.normalise import normalise


def confusion_matrix(probs: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, classes) counts: row = true class, column = predicted class."""
    return torch.bincount(labels * classes + probs.argmax(1), minlength=classes * classes).view(classes, classes)


def per_class_accuracy(probs: torch.Tensor, labels: torch.Tensor, classes: int) -> list[float]:
    matrix = confusion_matrix(probs, labels, classes).float()
    return (matrix.diag() / matrix.sum(1).clamp_min(1)).tolist()


def misclassified(probs: torch.Tensor, labels: torch.Tensor, true: int, predicted: int) -> torch.Tensor:
    """Indices of the test images of class `true` predicted as `predicted`, most confident first."""
    index = torch.nonzero((labels == true) & (probs.argmax(1) == predicted)).flatten()
    return index[probs[index, predicted].argsort(descending=True)]


def top_k(probs: torch.Tensor, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most likely classes of one image's probability vector."""
    values, index = probs.topk(min(k, len(classes)))
    return [(classes[i], v) for i, v in zip(index.tolist(), values.tolist())]


@torch.no_grad()
def classify(model: nn.Module, image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             tta: bool = False) -> torch.Tensor:
    """Probabilities for one uint8 image (C, H, W) at the model's input size; with `tta`, the mean over the
    test-time views (flip, shifts) and a centre crop zoomed back to full size."""
    model.eval()
    x = normalise(image[None], mean, std)
    if not tta:
        return torch.softmax(model(x), 1)[0]
    h, w = x.shape[-2:]
    zoom = F.interpolate(x[..., h // 16 : h - h // 16, w // 16 : w - w // 16], size=(h, w), mode="bilinear",
                         align_corners=False)
    views = [view(x) for view in TTA_VIEWS.values()] + [zoom]
    return torch.stack([torch.softmax(model(v), 1)[0] for v in views]).mean(0)
