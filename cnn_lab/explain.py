"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies, from the gradients
of that class's score with respect to a convolutional layer's feature maps."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnn_lab.hooks import hooked


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int | None = None) -> tuple[torch.Tensor, int]:
    """x (1, C, H, W) -> (a (H, W) map in [0, 1], the class it explains: `target` or the predicted one).

    Each feature map of `layer` is weighted by the mean gradient of the class score over it; the weighted sum,
    through a ReLU, is upsampled to the image."""
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        captured["maps"] = output[0] if isinstance(output, (tuple, list)) else output

    with hooked(model, [(layer, keep)]), torch.enable_grad():
        x = x.detach().requires_grad_(True)  # so frozen backbones still carry gradients to the layer
        scores = model(x)
        target = int(scores.argmax(1)) if target is None else target
        maps = captured["maps"]
        # the gradient with respect to the maps alone: the model's own .grad stay untouched (a shared model)
        (grads,) = torch.autograd.grad(scores[0, target], maps)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0].detach()
    return cam / cam.max().clamp_min(1e-8), target
