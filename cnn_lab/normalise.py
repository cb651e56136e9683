"""One home for turning pixels into what a network reads: uint8 values in 0..255, scaled to [0, 1], then
standardised per channel, (x - mean) / std. Pretrained backbones expect ImageNet's statistics; the trainer
computes each dataset's own, or another of NORMALISATIONS, as its config names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def own_mean_std(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each channel's mean and std; of uint8 images from each channel's histogram of its 256 values (exact, with
    no float copy of the whole set, which is several times slower on a CPU)."""
    if images.dtype == torch.uint8:
        counts = torch.stack([torch.bincount(c.flatten(), minlength=256) for c in images.transpose(0, 1)]).double()
        values = torch.arange(256, dtype=torch.float64, device=images.device) / 255
        n = counts.sum(1)
        mean = counts @ values / n
        std = ((counts @ values**2 / n - mean**2).clamp_min(0) * n / (n - 1)).sqrt()
    else:  # a frozen backbone's features, scaled like pixels
        floats = images.float() / 255
        mean, std = floats.mean(dim=(0, 2, 3)), floats.std(dim=(0, 2, 3))
    return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1).clamp_min(1e-3)


@dataclass(frozen=True)
class Normalisation:
    title: str
    mean_std: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # uint8 train images -> (1, C, 1, 1) each


NORMALISATIONS: dict[str, Normalisation] = {
    "dataset": Normalisation("the dataset's own mean and std per channel", own_mean_std),
    "course": Normalisation("the course's Normalize(0.5, 0.5): pixels to [-1, 1]",
                            lambda images: (torch.full((1, images.shape[1], 1, 1), 0.5),) * 2),
    "imagenet": Normalisation("ImageNet's mean and std (what pretrained backbones expect)",
                              lambda images: imagenet_stats()),
    # normalise() divides by 255 first, so a std of 1/255 gives the inputs back as they are
    "none": Normalisation("none: the inputs are features already (a frozen backbone's cached outputs)",
                          lambda images: (torch.zeros(1, images.shape[1], 1, 1),
                                          torch.full((1, images.shape[1], 1, 1), 1 / 255))),
}
