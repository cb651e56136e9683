"""A transfer run from its config: the photos, the pretrained backbone, then a linear probe on cached features or
fine-tuning (on the frozen blocks' cached outputs, or end to end). Every mode runs through the same trainer and job
manager as the train page."""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from cnn_lab import data as datasets
from cnn_lab.backbones import BACKBONES, Pretrained, train_faster_on_cpu
from cnn_lab.limits import MAX_IMAGE_SIDE
from cnn_lab.metrics import Control, MetricLog
from cnn_lab.normalise import imagenet_stats
from cnn_lab.train import Saving, TrainConfig, TrainingError, TrainResult, download_reporter, fit, resolve_device
from cnn_lab.transfer.config import MAX_FROZEN_VIEWS, MODES, TransferConfig, trainer_config
from cnn_lab.transfer.features import cached_features
from cnn_lab.transfer.frozen import fine_tune_on_frozen_outputs
from cnn_lab.transfer.head import fit_head
from cnn_lab.transfer.model import TransferModel
from cnn_lab.transfer.sources import load_images, with_val


def probe_head(config: TransferConfig, model: TransferModel, log: MetricLog, control: Control) -> None:
    """LP-FT (Kumar et al. 2022): a random head sends large, random gradients into the pretrained blocks in the first
    steps and distorts their features; a linear probe's head starts close to right instead."""
    log.set_progress(stage="training a linear probe for the starting head")
    probe = run_transfer(replace(TransferConfig(), data=config.data, backbone=config.backbone,
                                 image_size=config.image_size, seed=config.seed, device=config.device), control=control)
    model.head.load_state_dict(probe.model.head.state_dict())
    model.feature_mean.copy_(probe.model.feature_mean)
    model.feature_std.copy_(probe.model.feature_std)


def _probe(config: TransferConfig, pretrained: Pretrained, images: datasets.ImageDataset, log: MetricLog,
           control: Control, saving: Saving | None, timings: dict) -> tuple[TransferModel, TrainResult]:
    """A linear probe: the backbone's features of every photo (and of its mirror, with flip_features), cached, then
    the head trained on them."""
    log.set_progress(stage="extracting features (once per dataset and backbone)")
    start = time.perf_counter()
    device = resolve_device(TrainConfig(device=config.device))
    flips = (False, True) if config.flip_features else (False,)
    reporter = download_reporter(log, control)
    feats = {split: [cached_features(config.backbone, pretrained, images, split, device, flip, reporter)
                     for flip in flips] for split in images.splits}
    timings["feature_seconds"] = time.perf_counter() - start
    model = TransferModel(pretrained, len(images.classes))
    return model, fit_head(model, images, feats, config, log, control, saving)


def _fine_tune(config: TransferConfig, model: TransferModel, images: datasets.ImageDataset, log: MetricLog,
               control: Control, saving: Saving | None) -> TrainResult:
    """Fine-tuning end to end: every image through the whole network at every step, flipped and augmented; the
    backbone learns slower than the head when it all trains (discriminative learning rates)."""
    if config.head_from_probe:
        probe_head(config, model, log, control)
    fine_config = trainer_config(config, dataset=images.name, optimizer="sgd", schedule="onecycle", augment=["flip"],
                                 augment_preset=config.augment_preset, normalisation="imagenet", channels_last=True,
                                 amp=True, tta=config.tta,
                                 backbone_lr_factor=config.backbone_lr_factor if config.mode == "full" else 1.0)
    if resolve_device(fine_config).type == "cpu":
        train_faster_on_cpu(model.trainable)
    return fit(fine_config, dataset=images, log=log, control=control, saving=saving, model=model)


def check(config: TransferConfig) -> None:
    """Refuse a config that cannot run, with one sentence, before any photo loads."""
    if config.mode not in MODES:
        raise TrainingError(f"Unknown mode {config.mode!r}; choose one of {', '.join(MODES)}.")
    if not (isinstance(config.image_size, int) and 32 <= config.image_size <= MAX_IMAGE_SIDE):
        raise TrainingError(f"The image size must be a whole number of pixels from 32 to {MAX_IMAGE_SIDE}, not "
                            f"{config.image_size!r} (the network was trained at 224).")
    trainer_config(config).validate()  # epochs, batch size, learning rate: the trainer's own sentences
    if not (isinstance(config.frozen_views, int) and 0 <= config.frozen_views <= MAX_FROZEN_VIEWS):
        raise TrainingError(f"The frozen views must be a whole number from 0 to {MAX_FROZEN_VIEWS}, not "
                            f"{config.frozen_views!r} (each view of each photo is kept in memory).")
    if config.mode == "partial" and config.frozen_views > 2 and not config.augment_preset:
        raise TrainingError("More than 2 views of each photo need an augmentation preset to draw them from: "
                            "choose one, or use 2 views (each photo and its mirror).")


def run_transfer(config: TransferConfig, log: MetricLog | None = None, control: Control | None = None,
                 saving: Saving | None = None) -> TrainResult:
    """Train as the config says; the result's model is a TransferModel that takes ImageNet-normalised images."""
    check(config)
    log, control = log or MetricLog(), control or Control()
    torch.manual_seed(config.seed)  # the new head's first weights: the same seed, the same run
    start = time.perf_counter()
    log.set_progress(stage="loading images")
    reporter = download_reporter(log, control)
    images = with_val(load_images(config, reporter), config.seed)
    loaded = time.perf_counter()
    pretrained = BACKBONES[config.backbone].load(reporter)
    timings = {"load_seconds": loaded - start, "backbone_seconds": time.perf_counter() - loaded}
    if config.mode == "probe":
        model, result = _probe(config, pretrained, images, log, control, saving, timings)
        probs = result.test_probs
    else:
        model = TransferModel(pretrained, len(images.classes), None if config.mode == "full" else config.unfreeze)
        if config.mode == "partial" and config.frozen_views:
            device = resolve_device(TrainConfig(device=config.device))
            result, probs, timings["frozen_seconds"] = fine_tune_on_frozen_outputs(config, model, images, device, log,
                                                                                   control, saving)
        else:
            result = _fine_tune(config, model, images, log, control, saving)
            probs = result.test_probs
    test = images.splits["test"]
    acc = (probs.argmax(1) == test.labels).float().mean().item()
    return TrainResult(model.cpu().eval(), images.classes, *imagenet_stats(), test.images, test.labels, probs,
                       result.test_loss, acc, result.best_epoch, result.stopped_early, result.stopped_by_user,
                       time.perf_counter() - start, result.parameters,
                       extras={**timings, "head_seconds": result.seconds})
