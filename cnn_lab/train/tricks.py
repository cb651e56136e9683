"""Two of airbench's tricks, each named where the loop uses it: a first convolution set to whiten image patches,
and lookahead (the weights pulled to their running average every few steps)."""
from __future__ import annotations

import torch
from torch import nn


def whiten_init(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set a k x k conv (with 2 * k*k*C outputs) to whiten image patches: PCA directions over sqrt(eigenvalue),
    each with both signs. One of airbench's tricks; the layer is then frozen."""
    c, k = conv.in_channels, conv.kernel_size[0]
    patches = images.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
    patches = patches - patches.mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh((patches.T @ patches / len(patches)).double())
    filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).view(-1, c, k, k)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([filters, -filters]).float()[: conv.out_channels])
        conv.weight.requires_grad_(False)


class Lookahead:
    """airbench's lookahead: every few steps the weights move to a running average of themselves. The average
    leans on the past more as training ends (its decay grows as progress cubed), which steadies the last epochs."""

    every = 5

    def __init__(self, model: nn.Module):
        # state_dict's tensors share storage with the model's: copying into them sets the model's weights
        self.weights = [v for v in model.state_dict().values() if v.is_floating_point()]
        self.average = [v.clone() for v in self.weights]

    @torch.no_grad()
    def update(self, progress: float) -> None:
        decay = 0.95**self.every * progress**3
        for average, weight in zip(self.average, self.weights):
            average.lerp_(weight, 1 - decay)
            weight.copy_(average)
