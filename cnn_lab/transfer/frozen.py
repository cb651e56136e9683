"""Fine-tuning for a CPU: the frozen blocks, most of the work, run once over a few views of each photo, and only the
blocks that train run at every step, on those cached outputs."""
from __future__ import annotations

import time
from typing import Callable

import torch

from cnn_lab import augment
from cnn_lab import data as datasets
from cnn_lab.backbones import inference_copy, train_faster_on_cpu
from cnn_lab.device import bf16, fast_bf16, inference_batch
from cnn_lab.metrics import Control, MetricLog, StoppedBeforeTraining
from cnn_lab.normalise import imagenet_stats
from cnn_lab.train import Saving, TrainingError, TrainResult, fit
from cnn_lab.transfer.config import TransferConfig, trainer_config
from cnn_lab.transfer.features import example_input
from cnn_lab.transfer.head import fit_head
from cnn_lab.transfer.model import FromFrozenOutput, TransferModel


def frozen_outputs(model: TransferModel, images: torch.Tensor, views: int, augmenter: Callable | None,
                   device: torch.device, control: Control | None = None, done: Callable[[int], None] | None = None,
                   fast: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run the frozen blocks over `views` views of (N, 3, H, W) uint8 images: the image, its mirror, then draws of
    `augmenter`, in batches of device.inference_batch. Per view: the frozen blocks' outputs (N, C, h, w) and the whole
    backbone's features (N, D). The control's Stop ends it between batches; `done` hears how many images went
    through after each batch. With `fast`, in bf16 where that is faster (device.fast_bf16)."""
    captured: list[torch.Tensor] = []
    backbone = model.backbone.to(device).eval().to(memory_format=torch.channels_last)
    cut = next(name for name, module in backbone.named_modules() if module is model.cut())
    backbone = inference_copy(backbone, example_input(images, device))
    # a copy: the activation after it may clip its output in place
    handle = backbone.get_submodule(cut).register_forward_hook(lambda module, inputs, output:
                                                               captured.append(output.clone()))
    mean, std = imagenet_stats(device)
    outputs, features = [[] for _ in range(views)], [[] for _ in range(views)]
    batch_size = inference_batch(device, images.shape)
    try:
        with torch.no_grad(), bf16(device, fast):  # not inference_mode: the outputs become training inputs
            for start in range(0, len(images), batch_size):
                if control is not None and control.stop_requested.is_set():
                    raise StoppedBeforeTraining("Stopped while the frozen blocks ran over the photos; nothing was "
                                                "trained.")
                batch = images[start : start + batch_size].to(device).float() / 255
                for view in range(views):
                    x = batch if view == 0 else batch.flip(-1) if view == 1 else augmenter(batch)
                    captured.clear()
                    features[view].append(backbone(((x - mean) / std).contiguous(memory_format=torch.channels_last))
                                          .float().cpu())
                    outputs[view].append(captured[0].float().contiguous().cpu())
                if done is not None:
                    done(len(batch) * views)
    finally:
        handle.remove()
    return [torch.cat(o) for o in outputs], [torch.cat(f) for f in features]


# EfficientNet-Lite0's folded forward pass at 224 px on 2 slow CPU cores (docs/benchmarks-log.md, 4 Dec)
CPU_IMAGES_PER_S = 50


def views_per_photo(config: TransferConfig, split: str) -> int:
    """How many views of each photo of a split the frozen blocks run over: the config's for training; each
    validation and test photo and its mirror."""
    return config.frozen_views if split == "train" else 2


def frozen_pass_minutes(config: TransferConfig, sizes: dict[str, int]) -> tuple[int, float]:
    """The frozen pass's photos and views (given each split's size) and about how many minutes it takes on 2 CPU
    cores at the config's image size."""
    passes = sum(size * views_per_photo(config, split) for split, size in sizes.items())
    speed = CPU_IMAGES_PER_S * (2 if fast_bf16(torch.device("cpu")) else 1)  # bf16: twice as fast (the log)
    return passes, passes / speed * (config.image_size / 224) ** 2 / 60


def fine_tune_on_frozen_outputs(config: TransferConfig, model: TransferModel, images: datasets.ImageDataset,
                                 device: torch.device, log: MetricLog, control: Control,
                                 saving: Saving | None = None) -> tuple[TrainResult, torch.Tensor, float]:
    """Fine-tuning for a CPU: the frozen blocks, most of the work, run once on `frozen_views` views of each training
    image (the image, its mirror, augmented draws) and once on each validation and test image and its mirror; only
    the blocks that train run at every step, on those cached outputs. Each epoch sees every view. Tested on the mean
    of the image and its mirror. Returns the result, the test probabilities and the seconds the frozen blocks took."""
    if not model.frozen:
        raise TrainingError("Caching the frozen blocks' outputs needs frozen blocks: unfreeze fewer blocks.")
    stage = f"the frozen blocks run once over {config.frozen_views} views of each photo"
    total, _ = frozen_pass_minutes(config, {split: len(data) for split, data in images.splits.items()})
    passed = 0

    def done(count: int) -> None:
        nonlocal passed
        passed += count
        log.set_progress(stage=f"{stage} ({passed:,} of {total:,})", stage_fraction=passed / total)

    log.set_progress(stage=stage, stage_fraction=0.0)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    augmenter = (augment.batch_augmenter(augment.load_preset(config.augment_preset), (config.image_size,) * 2, group=4)
                 if config.augment_preset else None)
    outputs, feats = {}, {}
    for split, data in images.splits.items():
        # the training views in bf16 where it is faster (most of the work); validation and test in float32, so that
        # the accuracy the run reports is what its saved model gives
        outputs[split], feats[split] = frozen_outputs(model, data.images, views_per_photo(config, split), augmenter,
                                                      device, control, done, fast=split == "train")
    frozen_seconds = time.perf_counter() - start
    if config.head_from_probe:
        log.set_progress(stage="training a linear probe for the starting head")
        fit_head(model, images, feats, TransferConfig(seed=config.seed, device=config.device), MetricLog(), control)
    labels = {split: images.splits[split].labels for split in images.splits}
    trunk_data = datasets.ImageDataset(images.name, images.classes, {
        "train": datasets.Split(torch.cat(outputs["train"]), labels["train"].repeat(config.frozen_views)),
        **{split: datasets.Split(outputs[split][0], labels[split]) for split in ("val", "test")}})
    fine_config = trainer_config(config, dataset=images.name, optimizer="sgd", schedule="onecycle",
                                 normalisation="none", channels_last=True, amp=True)
    tail = FromFrozenOutput(model)
    if device.type == "cpu":
        train_faster_on_cpu(model.trainable)
    # the run folder keeps the whole model; the checkpoint is the tail's (the frozen blocks never change)
    save = (Saving(lambda _, epochs, state: saving.on_epoch(model, epochs, state), saving.resume_from)
            if saving else None)
    result = fit(fine_config, dataset=trunk_data, log=log, control=control, saving=save, model=tail)
    tail.eval()
    with torch.no_grad():
        probs = torch.stack([torch.cat([torch.softmax(tail(chunk.to(device)).float(), 1).cpu()
                                        for chunk in view.split(64)]) for view in outputs["test"]]).mean(0)
    return result, probs, frozen_seconds
