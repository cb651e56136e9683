"""Where one run stands between its epochs: what every epoch shares (Training), and early stopping's best epoch.
The loop moves them on; resume.py saves and restores them."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from cnn_lab.metrics import Control, EpochRecord, MetricLog, NormTrace, Pace
from cnn_lab.train.config import TrainConfig
from cnn_lab.train.device_data import DeviceData
from cnn_lab.train.tricks import Lookahead


@dataclass
class Training:
    """What every epoch of one run shares: the data on the device, the model and its optimizer, the tricks in use,
    and where the run stands."""

    config: TrainConfig
    data: DeviceData
    model: nn.Module
    optimizer: torch.optim.Optimizer
    log: MetricLog
    control: Control
    inputs: Callable[[torch.Tensor, int], torch.Tensor]  # (batch's indices, window) -> standardised, augmented images
    stem: nn.Conv2d | None  # the whitened first convolution (airbench), when config.whiten
    lookahead: Lookahead | None
    watched: dict[str, nn.Parameter]  # the weights whose norms the train page charts (weight_layers)
    norms: NormTrace | None  # each watched layer's weight and gradient norm over the steps, when asked for
    steps_per_epoch: int
    step: int = 0
    start: float = field(default_factory=time.perf_counter)
    pace: Pace = field(default_factory=Pace)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs


class EarlyStopping:
    """Stop when the validation loss has not improved for `patience` epochs, and keep the best epoch's weights."""

    def __init__(self, patience: int):
        self.patience, self.best_loss, self.best_epoch, self.bad_epochs = patience, math.inf, 0, 0
        self.best_state: dict | None = None

    def should_stop(self, record: EpochRecord, model: nn.Module) -> bool:
        if not self.patience or record.val_loss is None:
            return False
        if record.val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = record.val_loss, record.epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience
