"""Resumable runs: what a run keeps at the end of each epoch so that it can go on exactly where it stopped, after
a restart of the app, a stop by its owner or a time limit.

Continuing exactly needs more than the weights: the optimizer's momentum, where the learning-rate schedule stands
(the step), lookahead's running average, early stopping's best epoch, and the random number generators that
shuffle the images and draw the augmentations. A resumed run rebuilds everything else from its config (the data,
its split and the model's shape are all seeded), then loads this, and its next epoch is the one the uninterrupted
run would have had: on a CPU bit for bit (tests/test_resume.py)."""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from cnn_lab.metrics import EpochRecord
from cnn_lab.paths import written_whole
from cnn_lab.runs import CHECKPOINT_FILE
from cnn_lab.train.config import TrainingError
from cnn_lab.train.state import EarlyStopping, Training


@dataclass
class Checkpoint:
    """A run's whole state after its epochs so far."""
    epochs: list[dict]  # their records (EpochRecord's fields): a resumed run's curves are these, never more or less
    step: int  # optimizer steps taken: where the learning-rate schedule and lookahead stand
    seconds: float  # training time so far, so that the finished run reports its whole time
    model: dict[str, torch.Tensor]
    optimizer: dict
    lookahead: list[torch.Tensor] | None  # lookahead's running average of the weights, when on
    early: dict  # early stopping: best loss, best epoch, epochs without improvement, the best weights
    rng: dict[str, torch.Tensor]  # the generators' states: "cpu", and "cuda" when the run is on a GPU

    @property
    def epoch(self) -> int:
        """The epochs done: the next one is epoch + 1."""
        return len(self.epochs)

    def records(self) -> list[EpochRecord]:
        return [EpochRecord(**record) for record in self.epochs]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(asdict(self), buffer)
        return buffer.getvalue()

    def save(self, folder: Path) -> None:
        """Written whole or not at all: a killed process never leaves half a checkpoint."""
        with written_whole(folder / CHECKPOINT_FILE) as tmp:
            tmp.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, folder: Path) -> Checkpoint:
        """weights_only=True: a checkpoint is data, and a tampered one cannot run code."""
        try:
            return cls(**torch.load(folder / CHECKPOINT_FILE, map_location="cpu", weights_only=True))
        except FileNotFoundError:
            raise TrainingError("This run kept no state to resume from (it stopped before its first epoch ended, "
                                "or it was made before runs could be resumed): start it again.") from None
        except Exception as error:  # noqa: BLE001 - a damaged or tampered file fails in many ways; each is this
            # sentence (torch's safe unpickler raises UnpicklingError, RuntimeError, EOFError, IndexError...)
            raise TrainingError(f"This run's saved state cannot be read ({type(error).__name__}), so it cannot be "
                                "resumed: start it again.") from None


# on_epoch(model, epochs so far, the run's state): what the trainer calls after each epoch
OnEpoch = Callable[[nn.Module, list[EpochRecord], Checkpoint], None]


@dataclass
class Saving:
    """What a run does after each epoch (`on_epoch`: the job manager writes the run's folder), and the checkpoint
    it starts from when it is resumed."""
    on_epoch: OnEpoch
    resume_from: Checkpoint | None = None


def _cpu(state):
    """A state dict's tensors on the CPU, copied (the training goes on changing the originals)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu(v) for v in state)
    return state


def capture(training: Training, early: EarlyStopping, epochs: list[EpochRecord]) -> Checkpoint:
    device = training.data.train.images.device
    rng = {"cpu": torch.get_rng_state()} | ({"cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {})
    return Checkpoint(
        epochs=[asdict(record) for record in epochs], step=training.step, seconds=time.perf_counter() - training.start,
        model=_cpu(training.model.state_dict()), optimizer=_cpu(training.optimizer.state_dict()),
        lookahead=_cpu(training.lookahead.average) if training.lookahead else None,
        early={"best_loss": early.best_loss, "best_epoch": early.best_epoch, "bad_epochs": early.bad_epochs,
               "best_state": _cpu(early.best_state)},
        rng=rng)


def restore(checkpoint: Checkpoint, training: Training, early: EarlyStopping) -> int:
    """Put a freshly prepared run back in the checkpoint's state; returns the epochs it had done."""
    device = training.data.train.images.device
    training.model.load_state_dict(checkpoint.model)
    training.optimizer.load_state_dict(checkpoint.optimizer)
    if training.lookahead is not None and checkpoint.lookahead is not None:
        for average, saved in zip(training.lookahead.average, checkpoint.lookahead):
            average.copy_(saved)
    early.best_loss, early.best_epoch, early.bad_epochs = (checkpoint.early[k] for k in
                                                           ("best_loss", "best_epoch", "bad_epochs"))
    early.best_state = checkpoint.early["best_state"]
    training.step = checkpoint.step
    training.start = time.perf_counter() - checkpoint.seconds
    torch.set_rng_state(checkpoint.rng["cpu"])
    if device.type == "cuda" and "cuda" in checkpoint.rng:
        torch.cuda.set_rng_state(checkpoint.rng["cuda"], device)
    return checkpoint.epoch
