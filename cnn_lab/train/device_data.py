"""The data a run trains on, moved to the device once: every split as one uint8 tensor, batched by indexing, so
the loop does no per-image Python work; and the per-channel statistics its inputs are standardised with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from cnn_lab import data as datasets
from cnn_lab.normalise import NORMALISATIONS, normalise

if TYPE_CHECKING:
    from cnn_lab.train.config import TrainConfig


@dataclass
class DeviceData:
    """Every split as uint8 on the device, plus the per-channel mean and std of the training images."""

    train: datasets.Split
    val: datasets.Split | None
    test: datasets.Split
    mean: torch.Tensor  # (1, C, 1, 1) float
    std: torch.Tensor
    classes: list[str]

    def normalise(self, images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 images -> standardised floats (per-channel mean 0, std 1 over the training set)."""
        x = normalise(images, self.mean, self.std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_device(dataset: datasets.ImageDataset, config: TrainConfig, device: torch.device) -> DeviceData:
    """The config's share of the training images (max_train), a validation split carved from them when the dataset
    has none, the normalisation's statistics from the training images, and every split moved to the device."""
    train = dataset.splits["train"]
    if config.max_train and config.max_train < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))[: config.max_train]
        train = datasets.split_of(train, keep)
    val = dataset.splits.get("val")
    if val is None and config.val_fraction > 0:
        parts = datasets.stratified_split(
            train.labels, {"train": 1 - config.val_fraction, "val": config.val_fraction}, config.seed, dataset.classes
        )
        train, val = datasets.split_of(train, parts["train"]), datasets.split_of(train, parts["val"])
    mean, std = NORMALISATIONS[config.normalisation].mean_std(train.images)

    def move(split: datasets.Split | None) -> datasets.Split | None:
        return None if split is None else datasets.Split(split.images.to(device), split.labels.to(device))

    return DeviceData(move(train), move(val), move(dataset.splits["test"]), mean.to(device), std.to(device),
                      dataset.classes)
