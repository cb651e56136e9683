"""One home for turning pixels into what a network reads: uint8 values in 0..255, scaled to [0, 1], then
standardised per channel, (x - mean) / std. Pretrained backbones expect ImageNet's statistics; the trainer
computes each dataset's own (train.config's NORMALISATIONS)."""
from __future__ import annotations

import torch

# The per-channel mean and std of ImageNet's training photos, in [0, 1]: what every torchvision backbone expects.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_stats(device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet's mean and std as (1, 3, 1, 1) tensors, ready to broadcast over a batch."""
    return (torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
            torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> floats standardised with a (1, C, 1, 1) mean and std: (x / 255 - mean) / std."""
    return (images.float() / 255 - mean) / std
