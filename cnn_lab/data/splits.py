"""What every dataset becomes: uint8 image tensors (N, C, H, W) with int64 labels, per split, and class names;
and the stratified splits that carve validation or test sets out of one."""
from __future__ import annotations

from dataclasses import dataclass

import torch

SPLITS = ("train", "val", "test")


class DatasetUnavailable(RuntimeError):
    """The data cannot be had right now (offline, not on this machine); the message says how to provide it."""


class DatasetError(ValueError):
    """A dataset folder or archive that cannot be used as it is; the message is one sentence."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageDataset:
    name: str
    classes: list[str]
    splits: dict[str, Split]  # "train", "test" and, when the source has one, "val"
    skipped: int = 0  # files that were not images or were corrupt
    source_id: str = ""  # names the exact source and settings (a hash), for caches built on top of this one

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"].images.shape[1:])

    def class_counts(self, split: str = "train") -> list[int]:
        return torch.bincount(self.splits[split].labels, minlength=len(self.classes)).tolist()


def stratified_split(labels: torch.Tensor, fractions: dict[str, float], seed: int = 0,
                     classes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Indices per split, the same class proportions in each; every class gets at least one image per split. A
    sentence about a class names it from `classes` where given."""
    generator = torch.Generator().manual_seed(seed)
    names = list(fractions)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) < len(names):
            name = classes[label] if classes else f"Class {label}"
            raise DatasetError(f"{name} has only {len(members)} readable image(s): at least {len(names)} are needed "
                               f"to put one in each of {', '.join(names)}.")
        members = members[torch.randperm(len(members), generator=generator)]
        counts = [max(1, round(fractions[name] * len(members))) for name in names[1:]]
        counts.insert(0, len(members) - sum(counts))
        if counts[0] < 1:
            raise DatasetError(f"Class {label} has too few images ({len(members)}) for the split {fractions}.")
        for name, chunk in zip(names, torch.split(members, counts)):
            parts[name].append(chunk)
    return {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}


def split_of(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


def split_one(split: Split, fractions: dict[str, float], seed: int,
              classes: list[str] | None = None) -> dict[str, Split]:
    return {name: split_of(split, index)
            for name, index in stratified_split(split.labels, fractions, seed, classes).items()}
