"""Fitting a transfer model's linear head on cached features, with the same trainer as every other run."""
from __future__ import annotations

import torch

from cnn_lab import data as datasets
from cnn_lab.metrics import Control, MetricLog
from cnn_lab.models import ModelSpec
from cnn_lab.train import Saving, TrainResult, fit
from cnn_lab.transfer.config import TransferConfig, trainer_config
from cnn_lab.transfer.model import TransferModel


def fit_head(model: TransferModel, images: datasets.ImageDataset, feats: dict[str, list[torch.Tensor]],
             config: TransferConfig, log: MetricLog, control: Control, saving: Saving | None = None) -> TrainResult:
    """Train the model's linear head on cached features, one list of views per split: on every view of the training
    images; validated and tested on the mean of the views (test-time augmentation)."""
    splits = {
        "train": datasets.Split(torch.cat(feats["train"])[..., None, None],
                                images.splits["train"].labels.repeat(len(feats["train"]))),
        **{s: datasets.Split(torch.stack(feats[s]).mean(0)[..., None, None], images.splits[s].labels)
           for s in ("val", "test")},
    }
    head_data = datasets.ImageDataset(images.name, images.classes, splits)
    head_config = trainer_config(config, dataset=images.name, model=ModelSpec("linear"), optimizer="sgd",
                                 schedule="cosine", patience=0)
    result = fit(head_config, dataset=head_data, log=log, control=control, saving=saving)
    model.head.load_state_dict({"weight": result.model[1].weight, "bias": result.model[1].bias})
    # the trainer standardised (features / 255 - mean) / std: fold that into the model's buffers
    model.feature_mean.copy_(result.mean.flatten() * 255)
    model.feature_std.copy_(result.std.flatten() * 255)
    return result
