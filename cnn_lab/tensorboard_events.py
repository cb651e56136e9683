"""TensorBoard event files in each run folder, so that `tensorboard --logdir <runs folder>` shows every run:
the step loss and learning rate, each epoch's losses, accuracies and speed, and the run's hyperparameters beside
its test accuracy. The run's JSON files stay the source of truth; these are a copy for TensorBoard, and the one
place a run's step curve is kept (a resumed run reads it back)."""
from __future__ import annotations

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from cnn_lab.metrics import EpochRecord, MetricLog

EPOCH_SCALARS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s")


def _flat(config: dict, prefix: str = "") -> dict[str, float | int | str | bool]:
    """A nested config as TensorBoard's hparams want it: one level, numbers, strings and booleans."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    return flat


class RunEvents:
    """Writes what a run's MetricLog holds, as it grows: call `update` after each epoch and `finish` at the end."""

    def __init__(self, folder: Path, epochs_written: int = 0):
        """`epochs_written`: a resumed run's epochs before this process, already in the folder's event files."""
        self.folder = folder
        self.writer: SummaryWriter | None = None  # opened on the first write: a run that never trains leaves none
        self.last_step = 0
        self.epochs_written = epochs_written

    def update(self, log: MetricLog) -> None:
        seen = log.snapshot()
        steps, epochs = seen.steps, seen.epochs
        new_steps = [row for row in steps if row[0] > self.last_step]
        new_epochs: list[EpochRecord] = epochs[self.epochs_written:]
        if not new_steps and not new_epochs:
            return
        self.writer = self.writer or SummaryWriter(log_dir=str(self.folder))
        for step, loss, lr in new_steps:
            self.writer.add_scalar("step/train_loss", loss, step)
            self.writer.add_scalar("step/lr", lr, step)
        for record in new_epochs:
            for name in EPOCH_SCALARS:
                value = getattr(record, name)
                if value is not None:
                    self.writer.add_scalar(f"epoch/{name}", value, record.epoch)
        self.last_step = new_steps[-1][0] if new_steps else self.last_step
        self.epochs_written = len(epochs)
        self.writer.flush()

    def finish(self, config: dict, test_acc: float | None) -> None:
        """The hyperparameters with the final test accuracy (TensorBoard's HPARAMS tab), then close the file;
        without a test accuracy (a run that failed) it only closes it. A second call does nothing."""
        if self.writer is None:
            return
        if test_acc is not None:
            self.writer.add_hparams(_flat(config), {"hparam/test_acc": test_acc}, run_name=".")
        self.writer.close()
        self.writer = None


def read_steps(folder: Path, until: int) -> list[tuple[int, float, float]]:
    """The (step, train loss, learning rate) rows that a run's event files hold up to step `until`, in order: a
    resumed run's step curve from before its restart. TensorBoard's own reader drops what a session wrote past the
    step where the next session began again, and skips a damaged or cut-off record (a kill mid-write). A folder it
    cannot read gives no rows: the curve starts afresh, nothing else is lost."""
    from tensorboard.backend.event_processing.directory_watcher import DirectoryDeletedError
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: every step, not a sample
    try:
        events.Reload()
    except (OSError, DirectoryDeletedError):  # unreadable, or gone
        return []
    tags = events.Tags()["scalars"]
    if "step/train_loss" not in tags or "step/lr" not in tags:
        return []
    rates = {e.step: e.value for e in events.Scalars("step/lr")}
    kept = {e.step: e.value for e in events.Scalars("step/train_loss") if e.step <= until and e.step in rates}
    return [(step, loss, rates[step]) for step, loss in sorted(kept.items())]
