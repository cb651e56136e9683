"""What a training run is asked to do: TrainConfig, the one object the pages, the CLI, links and saved runs
exchange, and its checks, which refuse an impossible setting with one sentence before any data loads."""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field

import torch

from cnn_lab import data as datasets
from cnn_lab.augment import BATCHED_AUGMENTS
from cnn_lab.limits import LimitError, check_training_memory
from cnn_lab.models import MODELS, ModelCost, ModelSpec, build_model, model_cost
from cnn_lab.normalise import NORMALISATIONS
from cnn_lab.train.optim import OPTIMIZERS, SCHEDULES


class TrainingError(RuntimeError):
    """A run that cannot go on (NaN loss, out of memory, impossible settings); the message is one sentence."""


@dataclass
class TrainConfig:
    dataset: str = "cifar10"
    model: ModelSpec = field(default_factory=ModelSpec)
    optimizer: str = "sgd"  # from OPTIMIZERS: sgd | adam | adamw
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 256
    epochs: int = 5
    schedule: str = "onecycle"  # from SCHEDULES: constant | step | cosine | onecycle
    label_smoothing: float = 0.0
    augment: list[str] = field(default_factory=list)  # from augment.BATCHED_AUGMENTS: "flip", "crop"
    augment_preset: str = ""  # a pipeline saved on the augmentation page, applied batched on the device
    crop_padding: int = 4  # the "crop" augmentation's reflect padding: shifts of up to this many pixels
    patience: int = 0  # early stopping on the validation loss, in epochs; 0 = off
    val_fraction: float = 0.1  # carved from train when the dataset has no validation split
    max_train: int = 0  # use only this many training images (0 = all), for quick runs
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = False
    amp: bool = False  # bf16 autocast where it is fast: a GPU, or a CPU with bf16 instructions (device.fast_bf16)
    whiten: bool = False  # initialise the first conv as a patch-whitening filter bank (speedrun)
    whiten_bias_epochs: int | None = None  # its bias trains this many epochs, then freezes (airbench: 3); None = all
    tta: bool = False  # evaluate the test set with flipped and shifted views too
    normalisation: str = "dataset"  # from NORMALISATIONS: dataset | course (0.5, 0.5) | imagenet | none
    backbone_lr_factor: float = 1.0  # discriminative learning rates: the backbone's lr is lr times this
    bias_lr_factor: float = 1.0  # biases and batch-norm shifts learn this many times faster (airbench's scaled biases)
    lookahead: bool = False  # every 5 steps, pull the weights to their running average (airbench's lookahead)
    # Progressive resizing: the first `small_epochs` epochs train on a random small_size x small_size window of each
    # batch, whose steps cost less; the later epochs, and every evaluation, see the whole images. 0 = off.
    small_epochs: int = 0
    small_size: int = 24

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str | dict) -> "TrainConfig":
        values = json.loads(text) if isinstance(text, str) else dict(text)
        values["model"] = ModelSpec.from_dict(values.get("model", {}))
        return cls(**values)

    def validate(self) -> None:
        """Raise TrainingError (or the model's ModelError) with one sentence for a setting that cannot run."""
        self.model.check()
        if self.epochs < 1:
            raise TrainingError(f"Set at least 1 epoch, not {self.epochs}: with fewer there is nothing to train.")
        if self.batch_size < 1:
            raise TrainingError("The batch size must be at least 1.")
        self._check_memory()
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError("The learning rate must be a positive number.")
        for what, value, known in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
                                   ("normalisation", self.normalisation, NORMALISATIONS)):
            if value not in known:
                raise TrainingError(f"Unknown {what} {value!r}; choose one of {', '.join(known)}.")
        unknown = [name for name in self.augment if name not in BATCHED_AUGMENTS]
        if unknown:
            raise TrainingError(f"Unknown augmentation {unknown[0]!r}; choose from {', '.join(BATCHED_AUGMENTS)}.")
        if self.whiten_bias_epochs is not None and not (isinstance(self.whiten_bias_epochs, int)
                                                        and self.whiten_bias_epochs >= 0):
            raise TrainingError("whiten_bias_epochs takes a whole number of epochs (0 or more), or null for all of "
                                f"them, not {self.whiten_bias_epochs!r}.")
        if not (isinstance(self.small_epochs, int) and self.small_epochs >= 0):
            raise TrainingError(f"small_epochs takes a whole number of epochs (0 or more), not {self.small_epochs!r}.")
        if self.small_epochs:
            self._check_small_windows()

    def _check_memory(self) -> None:
        """The model sized on the meta device, before anything is built or loaded: its parameters and one batch's
        activations must fit one job's memory budget (a typo such as hidden sizes 100000,100000 would ask 40 GB)."""
        shape = datasets.image_shape(self.dataset)
        cost = _sized(json.dumps(asdict(self.model)), shape, datasets.class_count(self.dataset))
        if cost is None:
            return  # not buildable for these images: the build says why, in its own sentence
        try:
            check_training_memory(cost.parameters, cost.activations_per_image, self.batch_size)
        except LimitError as error:
            raise TrainingError(str(error)) from None

    def _check_small_windows(self) -> None:
        """Progressive resizing needs windows smaller than the images, and a model that takes them: one that ends
        in a global pool (the speedrun net, the small ResNet), large enough for its pooling. Checked on one image of
        zeros, since the dataset's image size is known before it loads."""
        channels, height, width = datasets.image_shape(self.dataset)
        if not (isinstance(self.small_size, int) and 1 <= self.small_size < min(height, width)):
            raise TrainingError(f"The small windows must be smaller than the images ({height}x{width} pixels): "
                                f"choose a size from 1 to {min(height, width) - 1}, not {self.small_size!r}.")
        if not _takes_windows(json.dumps(asdict(self.model)), (channels, height, width), self.small_size):
            raise TrainingError(f"The model \"{MODELS[self.model.name].title}\" cannot take {self.small_size}x"
                                f"{self.small_size} windows: choose a larger window, or no epochs on small windows "
                                "(small_epochs 0); a model that ends in a global pool, such as the speedrun net, takes "
                                "any size.")


@functools.lru_cache(maxsize=64)
def _sized(spec_json: str, shape: tuple[int, int, int], classes: int) -> ModelCost | None:
    """model_cost, cached like _takes_windows: validate runs at every rerun of the train page. None when the model
    cannot be built for this shape (its own check says so later, in a sentence of its own)."""
    try:
        return model_cost(ModelSpec.from_dict(json.loads(spec_json)), shape, classes)
    except RuntimeError:
        return None


@functools.lru_cache(maxsize=64)
def _takes_windows(spec_json: str, shape: tuple[int, int, int], size: int) -> bool:
    """Whether the model, built for images of `shape`, runs on one size x size image of zeros. Cached: the train
    page checks its settings at every rerun, and building a large net each time would slow every move (commit
    8ebdf3a has the times)."""
    model = build_model(ModelSpec.from_dict(json.loads(spec_json)), shape, 2)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, shape[0], size, size))
    except RuntimeError:
        return False
    return True
