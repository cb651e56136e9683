"""A frozen backbone's features of every photo, computed once per (backbone, exact dataset, split, flip) and kept on
disk. Why cached features are fast: the frozen backbone is the expensive part, and its output for an image never
changes, so it runs once per image (batched, channels_last, inference mode) and the head then trains on (N, D)
vectors in seconds. Augmentation cannot apply there, since every epoch would need new features."""
from __future__ import annotations

import time

import torch
from torch import nn

from cnn_lab import data as datasets
from cnn_lab.backbones import Pretrained, inference_copy
from cnn_lab.device import bf16, inference_batch
from cnn_lab.downloads import Reporter
from cnn_lab.normalise import imagenet_stats, normalise
from cnn_lab.paths import cache_root, written_whole
from cnn_lab.transfer.sources import with_val_id


def extract_features(pretrained: Pretrained, images: torch.Tensor, device: torch.device, flip: bool = False,
                     reporter: Reporter | None = None, fast: bool = False) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, D) features. Fast on a CPU because it is batched (in batches of
    device.inference_batch), in inference mode (no autograd records) and channels_last (what the CPU's convolution
    kernels prefer); with `fast`, in bf16 where that is faster (device.fast_bf16: features within about 2% of
    float32's)."""
    # Move the weights outside inference mode, so they stay ordinary tensors that fine-tuning can train later.
    model = pretrained.features.to(device).eval().to(memory_format=torch.channels_last)
    model = inference_copy(model, example_input(images, device))
    with torch.inference_mode():
        batch = inference_batch(device, images.shape)
        return _extract(model, images, device, batch, flip, reporter or Reporter(), fast)


def example_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One blank image of the images' size, channels_last: what backbones.inference_copy traces the network with."""
    return torch.zeros(1, *images.shape[1:], device=device).contiguous(memory_format=torch.channels_last)


def _extract(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int, flip: bool,
             reporter: Reporter, fast: bool) -> torch.Tensor:
    mean, std = imagenet_stats(device)
    out, started = [], time.perf_counter()
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        count = len(batch)
        if device.type == "cuda" and count < batch_size:
            # Keep one input shape: every new shape makes cuDNN plan all its convolutions again.
            batch = torch.cat([batch, batch.new_zeros(batch_size - count, *batch.shape[1:])])
        x = normalise(batch, mean, std)
        x = (x.flip(-1) if flip else x).contiguous(memory_format=torch.channels_last)
        with bf16(device, fast):
            out.append(model(x).float()[:count].cpu())
        reporter.count(f"extracting features{' of the mirrored images' if flip else ''}", start + count, len(images),
                    started)
    return torch.cat(out)


def cached_features(backbone: str, pretrained: Pretrained, dataset: datasets.ImageDataset, split: str,
                    device: torch.device, flip: bool = False, reporter: Reporter | None = None) -> torch.Tensor:
    """Features of one split, computed once per (backbone, exact dataset, split, flip) and kept on disk. The training
    split's in bf16 where that is faster: most of the work. The validation and test splits' in float32, so that the
    accuracy a run reports is what its saved model gives."""
    folder = cache_root() / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{backbone}-{dataset.source_id or dataset.name}-{split}{'-flip' if flip else ''}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    features = extract_features(pretrained, dataset.splits[split].images, device, flip=flip, reporter=reporter,
                                fast=split == "train")
    with written_whole(path) as tmp:  # two people's probes of one dataset, or a killed app: never half a file
        torch.save(features, tmp)
    return features


def features_cached(backbone: str, dataset: datasets.ImageDataset) -> bool:
    """Whether a probe on this dataset (as loaded, before the validation split is made) needs no extraction."""
    return (cache_root() / "features" / f"{backbone}-{with_val_id(dataset)}-train.pt").exists()
