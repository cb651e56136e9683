"""Optimizers and learning-rate schedules, each a registry the train page lists and the config names."""
from __future__ import annotations

import math
from typing import Callable, Protocol

import torch
from torch import nn


class OptimizerSettings(Protocol):
    """What the optimizers read of a run's config (a TrainConfig has them all); the config names its optimizer and
    schedule from the registries below, so this module does not import it."""
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    bias_lr_factor: float
    backbone_lr_factor: float


def param_groups(model: nn.Module, config: OptimizerSettings) -> list[dict]:
    """No weight decay on biases and norm layers, as in torchvision's reference recipes; they learn
    `bias_lr_factor` times faster. A model with a `backbone` gets its backbone's learning rate scaled by
    `backbone_lr_factor` (discriminative rates). Each group's `lr_scale` multiplies the scheduled rate."""
    backbone = {id(p) for p in model.backbone.parameters()} if hasattr(model, "backbone") else set()
    groups = []
    for scale, members in ((config.backbone_lr_factor, lambda p: id(p) in backbone), (1.0, lambda p: id(p) not in backbone)):
        params = [p for p in model.parameters() if p.requires_grad and members(p)]
        groups += [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay, "lr_scale": scale},
                   {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0,
                    "lr_scale": scale * config.bias_lr_factor}]
    return [g for g in groups if g["params"]]


OPTIMIZERS: dict[str, Callable[[list[dict], OptimizerSettings], torch.optim.Optimizer]] = {
    "sgd": lambda groups, c: torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0),
    "adam": lambda groups, c: torch.optim.Adam(groups, lr=c.lr),
    "adamw": lambda groups, c: torch.optim.AdamW(groups, lr=c.lr),
}

# Each schedule maps progress in [0, 1] to a multiplier of the base learning rate.
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda t: 1.0,
    "step": lambda t: 0.1 ** int(t * 3 - 1e-9),  # divide by 10 at 1/3 and 2/3
    "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t)),
    "onecycle": lambda t: t / 0.25 if t < 0.25 else (1 - t) / 0.75,  # linear warm-up, linear decay to 0
}


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The scheduled rate for every group, times the group's own scale."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
